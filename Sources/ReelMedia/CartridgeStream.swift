import Foundation
import ReelCodec
import ReelCore

/// One tape file of a data cartridge's stream, as a parity cartridge's map records it:
/// enough to write the file again record for record (docs/tape-format.md, "Parity cartridges").
package struct StreamFile: Codable, Sendable, Equatable {
  package var file: Int
  /// `label`, `set-catalogs`, `archive`, `catalog` or `foreign`, as the cartridge's catalog says.
  package var kind: String
  /// Every record of the file has this size; 0 for an empty file.
  package var blockSize: Int
  package var length: UInt64
  /// Where the file starts in the cartridge's stream.
  package var offset: UInt64
  package var sha256: String
  /// Base64 of the file's bytes, for labels and catalogs (small files) only.
  package var content: String?

  /// Small files are copied whole into the map, so what a lost cartridge held is known
  /// without rebuilding it.
  static let contentLimit: UInt64 = 1 << 20

  /// Checks a map read from a parity cartridge before it steers a drive or sizes a buffer.
  static func validate(_ files: [StreamFile], length: UInt64, describing what: String) throws {
    var offset: UInt64 = 0
    for (index, entry) in files.enumerated() {
      let blockOK =
        entry.blockSize == 0
        ? entry.length == 0
        : entry.blockSize >= 512 && entry.blockSize % 512 == 0 && entry.blockSize < 1 << 24
          && entry.length % UInt64(entry.blockSize) == 0
      guard entry.file == index, entry.offset == offset, blockOK, entry.length <= length - offset,
        entry.sha256.count == 64
      else {
        throw ReelError(
          .corrupt, "\(what): the map entry for tape file \(entry.file) is inconsistent",
          remedy: "the parity cartridge is damaged; rebuild from its second map copy or write it again with reel export"
        )
      }
      offset += entry.length
    }
    guard offset == length else {
      throw ReelError(.corrupt, "\(what): the map's files do not add up to the stream's length")
    }
  }
}

/// A whole cartridge read as one stream of bytes, every tape file after the other, with a
/// map of where each file starts; reads past the end (or past `limit`) give zeros, as a
/// shorter stream of a parity group is zero-padded to the longest.
final class CartridgeStreamReader {
  private let drive: TapeDrive
  private let name: String
  private let kinds: [Int: String]
  private let record: UnsafeMutableRawBufferPointer
  private var available: Range<Int> = 0..<0
  private let limit: UInt64
  private(set) var files: [StreamFile] = []
  private(set) var length: UInt64 = 0
  private(set) var finished = false
  private var open: (blockSize: Int, start: UInt64, hasher: SHA256Hasher, content: [UInt8]?)?
  private let whole = SHA256Hasher()

  /// `kinds` names each file as the cartridge's catalog does; `limit` cuts the stream at
  /// the length a parity map recorded (anything written after it is not in the parity).
  init(cartridge: TapeCartridge, label: MediaLabel, kinds: [Int: String], limit: UInt64? = nil) throws {
    drive = cartridge.drive
    name = "\(label.name) (\(cartridge.address))"
    self.kinds = kinds
    self.limit = limit ?? .max
    record = .allocate(byteCount: max(label.dataBlockSize, MediaLabel.blockSize), alignment: 4096)
    try drive.rewind()
    try drive.setBlockSize(0)
  }

  deinit { record.deallocate() }

  /// The SHA-256 of the stream read so far (the whole stream once `finished`).
  func sha256() -> String { whole.finish().hex }

  /// Fills `buffer`: stream bytes, then zeros once the stream has ended.
  func read(into buffer: UnsafeMutableRawBufferPointer) throws {
    var done = 0
    while done < buffer.count {
      if available.isEmpty {
        guard !finished, length < limit, try fill() else { break }
        continue
      }
      let count = min(buffer.count - done, available.count, Int(clamping: limit - length))
      let bytes = UnsafeRawBufferPointer(start: record.baseAddress! + available.lowerBound, count: count)
      (buffer.baseAddress! + done).copyMemory(from: bytes.baseAddress!, byteCount: count)
      whole.update(bytes)
      open?.hasher.update(bytes)
      open?.content?.append(contentsOf: bytes)
      available = (available.lowerBound + count)..<available.upperBound
      length += UInt64(count)
      done += count
    }
    if done < buffer.count {
      (buffer.baseAddress! + done).initializeMemory(as: UInt8.self, repeating: 0, count: buffer.count - done)
    }
  }

  /// Reads the next record; false at the end of recorded data.
  private func fill() throws -> Bool {
    switch try drive.read(into: record) {
    case .data(let count):
      if open == nil {
        let small = count == MediaLabel.blockSize
        open = (count, length, SHA256Hasher(), small ? [] : nil)
      } else if open!.blockSize != count {
        throw ReelError(
          .io, "\(name): tape file \(files.count) has records of \(open!.blockSize) and \(count) bytes",
          remedy: "a parity cartridge can only stand in for files written in fixed-size records, as Reel writes them")
      }
      if open!.content != nil, length + UInt64(count) - open!.start > StreamFile.contentLimit { open!.content = nil }
      available = 0..<count
      return true
    case .filemark:
      let file = files.count
      let current = open ?? (0, length, SHA256Hasher(), [])
      files.append(
        StreamFile(
          file: file, kind: kinds[file] ?? "foreign", blockSize: current.blockSize, length: length - current.start,
          offset: current.start, sha256: current.hasher.finish().hex,
          content: current.content.map { Data($0).base64EncodedString() }))
      open = nil
      return true
    case .unreadable:
      // Parity over guessed bytes would rebuild wrong ones; a gap in a member is an error.
      throw ReelError(
        .io, "\(name): tape file \(files.count) has records the drive cannot read",
        remedy: "parity cannot be written or used over a damaged cartridge: rebuild it from parity if it is in a "
          + "group, else copy its archives to a new one (reel rehydrate, then export)")
    case .endOfData:
      finished = true
      guard open == nil else {
        throw ReelError(
          .corrupt, "\(name): tape file \(files.count) has no filemark; an export was cut short",
          remedy: "export to the set again (it closes the cartridge properly), then write the parity")
      }
      return false
    }
  }
}

/// Writes a stream back as the tape files its map describes: records of each file's block
/// size, a filemark after each, every file checked against its SHA-256 as it ends.
final class CartridgeStreamWriter {
  private let drive: TapeDrive
  private let files: [StreamFile]
  private let what: String
  private var index = 0
  private var pending: [UInt8] = []
  private var hasher = SHA256Hasher()
  private var written: UInt64 = 0

  init(cartridge: TapeCartridge, files: [StreamFile], describing what: String) throws {
    drive = cartridge.drive
    self.files = files
    self.what = what
    try drive.rewind()
    try closeEmptyFiles()
  }

  var done: Bool { index == files.count }

  /// Takes the next bytes of the stream; bytes past the last file are ignored (padding).
  func write(_ bytes: UnsafeRawBufferPointer) throws {
    var used = 0
    while used < bytes.count && !done {
      let file = files[index]
      if pending.isEmpty && written == 0 { try drive.setBlockSize(file.blockSize) }
      let left = Int(clamping: file.length - written) - pending.count
      let take = min(left, bytes.count - used, file.blockSize - pending.count)
      pending += UnsafeRawBufferPointer(rebasing: bytes[used..<(used + take)])
      used += take
      if pending.count == file.blockSize {
        hasher.update(pending)
        do {
          _ = try pending.withUnsafeBytes { try drive.write($0) }
        } catch let error as ReelError where error.kind == .mediaFull {
          throw ReelError(
            .mediaFull, "\(drive.name) is too small for \(what)", remedy: "rebuild onto a cartridge at least as large")
        }
        written += UInt64(pending.count)
        pending.removeAll(keepingCapacity: true)
        if written == file.length { try endFile() }
      }
    }
  }

  private func endFile() throws {
    let file = files[index]
    guard hasher.finish().hex == file.sha256 else {
      throw ReelError(
        .corrupt,
        "\(what): tape file \(file.file) came out different from the one the parity was written over "
          + "(the parity cartridge or another cartridge of the group is damaged, or changed since)",
        remedy: "nothing rebuilt can be trusted: check the other cartridges with reel media catalog MEDIA --scan")
    }
    try drive.writeFilemark()
    index += 1
    written = 0
    hasher = SHA256Hasher()
    try closeEmptyFiles()
  }

  private func closeEmptyFiles() throws {
    while !done && files[index].length == 0 {
      try drive.writeFilemark()
      index += 1
    }
  }
}
