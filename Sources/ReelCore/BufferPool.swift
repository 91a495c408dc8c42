import Foundation

/// A reusable buffer owned by one thread at a time: filled, handed on, given back to its
/// pool (an NBD request's payload, a span of pack bytes being decoded).
public final class PooledBuffer: @unchecked Sendable {
  public let storage: UnsafeMutableRawBufferPointer
  public var count: Int

  public init(capacity: Int) {
    storage = .allocate(byteCount: max(capacity, 1), alignment: 4096)
    count = 0
  }

  deinit { storage.deallocate() }

  public var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(rebasing: storage[0..<count]) }
}

/// Reuses buffers. Fresh memory for every request costs page faults, zeroing by the
/// kernel and the allocator returning it to the kernel again, every time; a client
/// streaming writes, or a restore reading spans, needs the same few buffers over and over.
public final class BufferPool: @unchecked Sendable {
  /// Buffers come in multiples of this, so requests of similar sizes share them.
  private static let granule = 64 << 10
  private let lock = NSLock()
  private var free: [PooledBuffer] = []
  private var freeBytes = 0
  private let retainedBytes: Int

  /// Keeps at most `retainedBytes` of idle buffers.
  public init(retainedBytes: Int) {
    self.retainedBytes = retainedBytes
  }

  /// A buffer of `count` bytes (contents undefined).
  public func take(_ count: Int) -> PooledBuffer {
    let payload =
      lock.withLock { () -> PooledBuffer? in
        guard let index = free.lastIndex(where: { $0.storage.count >= count }) else { return nil }
        freeBytes -= free[index].storage.count
        return free.remove(at: index)
      } ?? PooledBuffer(capacity: (count + Self.granule - 1) / Self.granule * Self.granule)
    payload.count = count
    return payload
  }

  public func recycle(_ payload: PooledBuffer) {
    lock.withLock {
      guard freeBytes + payload.storage.count <= retainedBytes else { return }
      freeBytes += payload.storage.count
      free.append(payload)
    }
  }
}
