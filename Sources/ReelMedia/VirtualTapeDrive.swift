import Foundation
import ReelCore
import ReelIO

#if canImport(Glibc)
  import Glibc
#endif

/// A tape cartridge emulated in one file, behaving the way the Linux st driver does
/// (docs/tape-format.md, "vtape cartridge file"): a plain-text header of 4092 bytes, then
/// the tape's records in SIMH `.tap` framing — a block is a 4-byte little-endian length,
/// the data and the length again; a filemark is a zero length word; the end of the file
/// is the end of recorded data. The 4-byte offset puts the first data block (the label)
/// at byte 4096, so `dd bs=4096 skip=1 count=1` shows it.
///
/// Capacity counts every byte after the header. A write that ends past the early-warning
/// point succeeds and reports `.earlyWarning`; a write that would pass the capacity fails
/// with `.mediaFull` and writes nothing.
package final class VirtualTapeDrive: TapeDrive {
  package static let headerSize: UInt64 = 4092
  static let magic = "REEL-VTAPE 1"
  /// The smallest cartridge: room for a label, a catalog and one 1 MiB data block.
  static let minimumCapacity: UInt64 = 4 << 20

  package let path: String
  package let capacity: UInt64
  package let earlyWarning: UInt64
  package let writeProtected: Bool
  package var name: String { "vtape:\(path)" }

  private let file: PosixFile
  /// The records as the drive finds them, and the one the drive stands before.
  private var map: TapeRecordMap
  private var index = 0
  private var fileSize: UInt64
  private var fileNumber = 0
  private var blockNumber = 0
  private var blockSize = 0
  private var unsynced = false

  /// Creates a blank cartridge file (no label). Refuses to replace an existing file.
  package static func create(path: String, capacity: UInt64) throws {
    guard capacity >= minimumCapacity else {
      throw ReelError(
        .usage, "a vtape cartridge of \(ByteSize.describe(capacity)) is too small",
        remedy: "give --capacity of at least \(ByteSize.describe(minimumCapacity))")
    }
    let header = headerText(capacity: capacity, earlyWarning: defaultEarlyWarning(capacity), writeProtected: false)
    let temporary = path + ".tmp-\(getpid())"
    do {
      let file = try PosixFile.createNew(temporary)
      try file.write(header, at: 0)
      try file.sync()
      guard link(temporary, path) == 0 else {
        let code = errno
        throw code == EEXIST
          ? ReelError(.alreadyExists, "\(path) already exists", remedy: "label the existing cartridge instead")
          : PosixFile.error(code, "create", path)
      }
      unlink(temporary)
      try Durable.syncDirectory(parentFolder(of: path))
    } catch {
      unlink(temporary)
      throw error
    }
  }

  /// Sets or clears the write-protect tab recorded in the cartridge header.
  package static func setWriteProtected(path: String, _ protected: Bool) throws {
    let drive = try VirtualTapeDrive(path: path)
    let header = headerText(capacity: drive.capacity, earlyWarning: drive.earlyWarning, writeProtected: protected)
    let file = try PosixFile(path: path, flags: O_WRONLY)
    try file.write(header, at: 0)
    try file.sync()
  }

  /// Early warning leaves a sixteenth of the cartridge, at least 2 MiB: room for the
  /// block that crosses it, a filemark and a catalog.
  static func defaultEarlyWarning(_ capacity: UInt64) -> UInt64 {
    capacity - max(capacity / 16, 2 << 20)
  }

  static func headerText(capacity: UInt64, earlyWarning: UInt64, writeProtected: Bool) -> [UInt8] {
    let text = """
      \(magic)
      capacity: \(capacity)
      early-warning: \(earlyWarning)
      write-protected: \(writeProtected ? "yes" : "no")

      A Reel virtual tape cartridge (docs/tape-format.md in the Reel sources).
      From byte 4092 on, this file holds tape records in SIMH .tap framing: each block
      is a 4-byte little-endian length, the data, and the length again; a filemark is
      a zero length word; the end of the file is the end of recorded data.
      Tape file 0, the cartridge label, is one 4096-byte block at byte 4096:
        dd if=THIS-FILE bs=4096 skip=1 count=1 status=none

      """
    var bytes = Array(text.utf8)
    precondition(bytes.count < Int(headerSize))
    bytes += [UInt8](repeating: 0x20, count: Int(headerSize) - 1 - bytes.count) + [0x0A]
    return bytes
  }

  /// Opens a cartridge file for exclusive use, read-only when the file cannot be written.
  package init(path: String) throws {
    self.path = path
    var info = stat()
    guard stat(path, &info) == 0 else {
      throw ReelError(
        .notFound, "no vtape cartridge at \(path)",
        remedy: "create and label one with `reel media label vtape:\(path) --name LABEL --capacity SIZE`")
    }
    guard (info.st_mode & S_IFMT) == S_IFREG else {
      throw ReelError(.usage, "vtape:\(path) is not a cartridge file", remedy: "name a .vtape file")
    }
    var readOnly = false
    do {
      file = try PosixFile(path: path, flags: O_RDWR)
    } catch {
      file = try PosixFile(path: path, flags: O_RDONLY)
      readOnly = true
    }
    guard file.tryLockExclusive() else {
      throw ReelError(
        .io, "vtape:\(path) is in use by another process", remedy: "wait for the other Reel command to finish")
    }
    let header = try file.read(at: 0, count: Int(Self.headerSize))
    guard header.count == Int(Self.headerSize), let fields = Self.parseHeader(header) else {
      throw ReelError(
        .corrupt, "\(path) is not a Reel vtape cartridge (no `\(Self.magic)` header)",
        remedy: "check the path; new cartridges are made by `reel media label vtape:PATH --name LABEL --capacity SIZE`")
    }
    capacity = fields.capacity
    earlyWarning = fields.earlyWarning
    writeProtected = fields.writeProtected || readOnly
    fileSize = max(try file.size(), Self.headerSize)
    map = try TapeRecordMap.read(file, start: Self.headerSize, fileSize: fileSize)
  }

  /// Byte offset in the cartridge file where the current record starts.
  private var position: UInt64 {
    index < map.entries.count ? map.entries[index].offset : map.end
  }

  private static func parseHeader(_ bytes: [UInt8]) -> (capacity: UInt64, earlyWarning: UInt64, writeProtected: Bool)? {
    let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
    guard lines.first == Substring(magic) else { return nil }
    var values: [String: String] = [:]
    for line in lines.dropFirst() {
      guard let colon = line.firstIndex(of: ":") else { continue }
      values[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    guard let capacity = values["capacity"].flatMap(UInt64.init),
      let earlyWarning = values["early-warning"].flatMap(UInt64.init), earlyWarning <= capacity
    else { return nil }
    return (capacity, earlyWarning, values["write-protected"] == "yes")
  }

  package func status() throws -> DriveStatus {
    DriveStatus(
      fileNumber: fileNumber, blockNumber: blockNumber, blockSize: blockSize, writeProtected: writeProtected,
      atBeginning: index == 0, atEndOfData: index >= map.entries.count)
  }

  package func setBlockSize(_ bytes: Int) throws {
    guard bytes >= 0, bytes % 512 == 0, bytes < 1 << 24 else {
      throw ReelError(.usage, "\(name): block size \(bytes) is not a multiple of 512 below 16 MiB")
    }
    blockSize = bytes
  }

  package func rewind() throws {
    try flush()
    index = 0
    fileNumber = 0
    blockNumber = 0
  }

  /// Moves over the current record, whatever it is; false at the end of data.
  private func step() -> TapeRecordMap.Entry? {
    guard index < map.entries.count else { return nil }
    let entry = map.entries[index]
    index += 1
    if case .filemark = entry {
      fileNumber += 1
      blockNumber = 0
    } else {
      blockNumber += 1
    }
    return entry
  }

  package func spaceForward(files count: Int) throws {
    var crossed = 0
    while crossed < count {
      guard let entry = step() else {
        throw ReelError(.io, "\(name): end of data after \(crossed) of \(count) files spaced forward")
      }
      if case .filemark = entry { crossed += 1 }
    }
  }

  package func spaceBack(files count: Int) throws {
    var crossed = 0
    while crossed < count {
      guard index > 0 else {
        fileNumber = 0
        blockNumber = 0
        throw ReelError(.io, "\(name): beginning of tape after \(crossed) of \(count) files spaced back")
      }
      index -= 1
      if case .filemark = map.entries[index] {
        fileNumber -= 1
        crossed += 1
      }
    }
    blockNumber = -1
  }

  package func seekEndOfData() throws {
    while step() != nil {}
  }

  package func writeFilemark() throws {
    let offset = try prepareWrite(adding: 4)
    try file.write([0, 0, 0, 0], at: offset)
    map.append(.filemark(offset: offset))
    fileSize = map.end
    index = map.entries.count
    fileNumber += 1
    blockNumber = 0
    unsynced = true
    try flush()
  }

  package func write(_ bytes: UnsafeRawBufferPointer) throws -> WriteOutcome {
    let recordSize = blockSize == 0 ? bytes.count : blockSize
    guard recordSize > 0, bytes.count % recordSize == 0 else {
      throw ReelError(.usage, "\(name): a write of \(bytes.count) bytes is not whole \(blockSize)-byte blocks")
    }
    let records = bytes.count / recordSize
    let framed = UInt64(bytes.count + 8 * records)
    let offset = try prepareWrite(adding: framed)
    var word = UInt32(recordSize).littleEndian
    try withUnsafeBytes(of: &word) { lengthBytes in
      var buffers: [UnsafeRawBufferPointer] = []
      buffers.reserveCapacity(records * 3)
      for index in 0..<records {
        buffers.append(lengthBytes)
        buffers.append(UnsafeRawBufferPointer(rebasing: bytes[(index * recordSize)..<((index + 1) * recordSize)]))
        buffers.append(lengthBytes)
      }
      try file.write(buffers, at: offset)
    }
    for record in 0..<records {
      map.append(.block(offset: offset + UInt64(record) * UInt64(recordSize + 8), length: recordSize))
    }
    fileSize = map.end
    index = map.entries.count
    blockNumber += records
    unsynced = true
    return map.end - Self.headerSize > earlyWarning ? .earlyWarning : .written
  }

  package func read(into buffer: UnsafeMutableRawBufferPointer) throws -> TapeRead {
    guard index < map.entries.count else { return .endOfData }
    switch map.entries[index] {
    case .filemark:
      _ = step()
      return .filemark
    case .unreadable(_, _, let lostBytes):
      _ = step()
      return .unreadable(bytes: lostBytes)
    case .block(let offset, let length):
      guard blockSize == 0 || length == blockSize else {
        throw ReelError(
          .io, "\(name): file \(fileNumber) has \(length)-byte blocks but the drive is set to \(blockSize)")
      }
      guard length <= buffer.count else {
        throw ReelError(
          .io, "\(name): a \(length)-byte block in file \(fileNumber) does not fit a \(buffer.count)-byte read")
      }
      let got = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<length]), at: offset + 4)
      guard got == length else { throw corrupt(at: offset) }
      _ = step()
      return .data(length)
    }
  }

  /// Makes buffered writes durable; filemarks do this on their own.
  package func flush() throws {
    guard unsynced else { return }
    try file.syncData()
    unsynced = false
  }

  /// A write erases what follows it; refuses on a protected cartridge or past capacity.
  /// Returns the offset the write goes to.
  private func prepareWrite(adding count: UInt64) throws -> UInt64 {
    guard !writeProtected else { throw writeProtectedError() }
    let offset = position
    guard offset - Self.headerSize + count <= capacity else {
      throw ReelError(
        .mediaFull, "\(name): physical end of tape (\(ByteSize.describe(capacity))) reached",
        remedy: "continue on another cartridge")
    }
    _ = map.truncate(at: index)
    if fileSize > offset {
      try file.truncate(to: offset)
      fileSize = offset
    }
    return offset
  }

  private func corrupt(at offset: UInt64) -> ReelError {
    ReelError(
      .corrupt, "\(name): damaged record framing at byte \(offset)",
      remedy: "the cartridge file was changed outside Reel; read what precedes it with `reel media catalog --scan`")
  }
}

func parentFolder(of path: String) -> String {
  Durable.parent(of: path)
}
