import CExt2fs
import Foundation
import ReelCore

/// A libext2fs `io_manager` whose reads come from a `BlockDevice` and whose writes fail
/// with EXT2_ET_RO_FILSYS. libext2fs opens a channel by name, so a device is registered
/// under a fresh name just for the `ext2fs_open2` call that opens it.
///
/// Memory follows unix_io.c: the channel and its name are malloc'd (libext2fs frees with
/// ext2fs_free_mem, which is free(3)), and `close` frees them when the last reference
/// goes; `private_data` holds a retained `ChannelState`, released there too.
enum ReadOnlyIOManager {
  /// What a channel reads from, and the last error its device threw (libext2fs only
  /// passes an errcode up, so the caller fetches the real one here). Unchecked: used only
  /// by libext2fs calls, which its owner serializes.
  final class ChannelState: @unchecked Sendable {
    let device: BlockDevice
    var lastError: Error?
    init(device: BlockDevice) { self.device = device }
  }

  private static let waiting = Locked<[String: ChannelState]>([:])
  private static let counter = Locked<UInt64>(0)

  /// Calls `body` with a name, the manager that opens `device` under that name, and the
  /// state the channel will have (whose `lastError` tells why an open failed).
  static func withRegistered<Result>(
    _ device: BlockDevice, _ body: (String, io_manager, ChannelState) throws -> Result
  ) rethrows -> Result {
    let number = counter.withLock { value -> UInt64 in
      value += 1
      return value
    }
    let name = "reel-files-\(number)"
    let state = ChannelState(device: device)
    waiting.withLock { $0[name] = state }
    defer { _ = waiting.withLock { $0.removeValue(forKey: name) } }
    return try body(name, manager, state)
  }

  /// The state behind a channel libext2fs holds.
  static func state(of channel: io_channel) -> ChannelState {
    Unmanaged<ChannelState>.fromOpaque(channel.pointee.private_data).takeUnretainedValue()
  }

  nonisolated(unsafe) private static let manager: io_manager = {
    let manager = UnsafeMutablePointer<struct_io_manager>.allocate(capacity: 1)
    manager.initialize(to: struct_io_manager())
    manager.pointee.magic = EXT2_ET_MAGIC_IO_MANAGER
    manager.pointee.name = UnsafePointer(strdup("Reel read-only I/O manager"))
    manager.pointee.open = openChannel
    manager.pointee.close = closeChannel
    manager.pointee.set_blksize = setBlockSize
    manager.pointee.read_blk = readBlocks32
    manager.pointee.read_blk64 = readBlocks
    manager.pointee.write_blk = writeBlocks32
    manager.pointee.write_blk64 = writeBlocks
    manager.pointee.write_byte = writeBytes
    manager.pointee.flush = flush
    manager.pointee.set_option = setOption
    return manager
  }()

  private static let openChannel:
    @convention(c) (UnsafePointer<CChar>?, Int32, UnsafeMutablePointer<io_channel?>?) -> errcode_t = {
      name, flags, result in
      guard let name, let result else { return EXT2_ET_INVALID_ARGUMENT }
      if flags & IO_FLAG_RW != 0 { return EXT2_ET_RO_FILSYS }
      guard let state = waiting.withLock({ $0[String(cString: name)] }) else { return EXT2_ET_BAD_DEVICE_NAME }
      guard let memory = malloc(MemoryLayout<struct_io_channel>.size) else { return errcode_t(ENOMEM) }
      memset(memory, 0, MemoryLayout<struct_io_channel>.size)
      let channel = memory.bindMemory(to: struct_io_channel.self, capacity: 1)
      channel.pointee.magic = EXT2_ET_MAGIC_IO_CHANNEL
      channel.pointee.manager = ReadOnlyIOManager.manager
      channel.pointee.name = strdup(name)
      channel.pointee.block_size = 1024
      channel.pointee.refcount = 1
      channel.pointee.private_data = Unmanaged.passRetained(state).toOpaque()
      result.pointee = channel
      return 0
    }

  private static let closeChannel: @convention(c) (io_channel?) -> errcode_t = { channel in
    guard let channel, channel.pointee.magic == EXT2_ET_MAGIC_IO_CHANNEL else { return EXT2_ET_MAGIC_IO_CHANNEL }
    channel.pointee.refcount -= 1
    guard channel.pointee.refcount <= 0 else { return 0 }
    Unmanaged<ChannelState>.fromOpaque(channel.pointee.private_data).release()
    free(channel.pointee.name)
    free(channel)
    return 0
  }

  private static let setBlockSize: @convention(c) (io_channel?, Int32) -> errcode_t = { channel, size in
    guard let channel, size > 0 else { return EXT2_ET_INVALID_ARGUMENT }
    channel.pointee.block_size = size
    return 0
  }

  /// `count` blocks from `block`, or -count bytes when negative (as in unix_io.c).
  private static let readBlocks: @convention(c) (io_channel?, UInt64, Int32, UnsafeMutableRawPointer?) -> errcode_t = {
    channel, block, count, data in
    guard let channel, let data else { return EXT2_ET_INVALID_ARGUMENT }
    let blockSize = UInt64(channel.pointee.block_size)
    let length = count < 0 ? Int(-Int64(count)) : Int(count) * Int(blockSize)
    let state = state(of: channel)
    do {
      try state.device.read(at: block * blockSize, into: UnsafeMutableRawBufferPointer(start: data, count: length))
      return 0
    } catch {
      state.lastError = error
      return EXT2_ET_SHORT_READ
    }
  }

  private static let readBlocks32: @convention(c) (io_channel?, UInt, Int32, UnsafeMutableRawPointer?) -> errcode_t = {
    channel, block, count, data in readBlocks(channel, UInt64(block), count, data)
  }

  private static let writeBlocks: @convention(c) (io_channel?, UInt64, Int32, UnsafeRawPointer?) -> errcode_t = {
    _, _, _, _ in
    EXT2_ET_RO_FILSYS
  }

  private static let writeBlocks32: @convention(c) (io_channel?, UInt, Int32, UnsafeRawPointer?) -> errcode_t = {
    _, _, _, _ in
    EXT2_ET_RO_FILSYS
  }

  private static let writeBytes: @convention(c) (io_channel?, UInt, Int32, UnsafeRawPointer?) -> errcode_t = {
    _, _, _, _ in
    EXT2_ET_RO_FILSYS
  }

  private static let flush: @convention(c) (io_channel?) -> errcode_t = { _ in 0 }

  private static let setOption:
    @convention(c) (io_channel?, UnsafePointer<CChar>?, UnsafePointer<CChar>?) -> errcode_t = { _, _, _ in
      EXT2_ET_INVALID_ARGUMENT
    }
}
