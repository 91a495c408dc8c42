import ReelCore
import ReelIO

/// The records of a vtape cartridge file as a drive would find them: blocks, filemarks,
/// and stretches it cannot read. A tape drive never hands out a block whose framing is
/// broken: it reports a media error and moves on to the next block or filemark it can
/// read. The map gives the emulation that behaviour: a stretch whose SIMH framing does not
/// hold (a length word that is not echoed after its data, zeros where a block should
/// start) is one `unreadable` entry, and reading resumes at the next position where the
/// framing holds again (docs/tape-format.md, "Damage").
///
/// Damage never shifts bytes (a cartridge file is altered in place or cut short), so every
/// record still starts at the offset it was written at; the search for the next intact
/// record steps 4 bytes at a time from the damaged one.
struct TapeRecordMap {
  enum Entry: Equatable {
    case block(offset: UInt64, length: Int)
    case filemark(offset: UInt64)
    /// Framing that does not hold from `offset` for `span` bytes; `lostBytes` is what the
    /// records there held, as far as their file's block size tells.
    case unreadable(offset: UInt64, span: UInt64, lostBytes: Int)

    var offset: UInt64 {
      switch self {
      case .block(let offset, _), .filemark(let offset), .unreadable(let offset, _, _): offset
      }
    }

    var end: UInt64 {
      switch self {
      case .block(let offset, let length): offset + 8 + UInt64(length)
      case .filemark(let offset): offset + 4
      case .unreadable(let offset, let span, _): offset + span
      }
    }
  }

  /// Blocks are below 16 MiB (the largest block size a drive is set to).
  static let largestBlock: UInt32 = 1 << 24
  /// Filemarks in a row that a zero word may belong to (an empty tape file makes two).
  static let filemarksInARow = 3

  private(set) var entries: [Entry] = []
  /// Where the recorded data ends: after the last entry.
  var end: UInt64 { entries.last?.end ?? start }
  let start: UInt64

  init(start: UInt64) { self.start = start }

  /// Reads the framing of `file` from `start` to `fileSize`. A last record cut short (a
  /// crash while writing, a cartridge file cut off) ends the recorded data.
  static func read(_ file: PosixFile, start: UInt64, fileSize: UInt64) throws -> TapeRecordMap {
    var reader = FramingReader(file: file, size: fileSize)
    var map = TapeRecordMap(start: start)
    var position = start
    var lastLength: Int?
    while position + 4 <= fileSize {
      let word = try reader.word(at: position)
      if word == 0xFFFF_FFFF { break }
      if word == 0, try reader.filemarkHolds(at: position) {
        map.entries.append(.filemark(offset: position))
        position += 4
        lastLength = nil
        continue
      }
      if try reader.blockHolds(at: position) {
        map.entries.append(.block(offset: position, length: Int(word)))
        position += 8 + UInt64(word)
        lastLength = Int(word)
        continue
      }
      if word > 0, word < largestBlock, position + 8 + UInt64(word) > fileSize, !(try reader.anyBlockAfter(position)) {
        break  // the last record, cut short: the end of recorded data
      }
      guard let next = try reader.nextIntactRecord(after: position) else {
        let span = fileSize - position
        map.entries.append(
          .unreadable(offset: position, span: span, lostBytes: lost(span: span, filemarks: 0, length: lastLength)))
        break
      }
      map.entries.append(
        .unreadable(
          offset: position, span: next.offset - 4 * UInt64(next.filemarks) - position,
          lostBytes: lost(
            span: next.offset - position, filemarks: next.filemarks, length: lastLength ?? next.length)))
      for index in 0..<next.filemarks {
        map.entries.append(.filemark(offset: next.offset - 4 * UInt64(next.filemarks - index)))
      }
      position = next.offset
    }
    return map
  }

  /// The data bytes a damaged stretch of `span` bytes held: whole records of the file's
  /// block size (`length`) with their 8 framing bytes, less the filemarks found in it.
  static func lost(span: UInt64, filemarks: Int, length: Int?) -> Int {
    let framed = Int(span) - 4 * filemarks
    guard let length, length > 0 else { return max(framed - 8, 0) }
    let records = max(1, Int((Double(framed) / Double(length + 8)).rounded()))
    return records * length
  }

  /// Forgets everything from entry `index` on (a write there erases it) and returns the
  /// offset the next record starts at.
  mutating func truncate(at index: Int) -> UInt64 {
    entries.removeSubrange(index...)
    return end
  }

  mutating func append(_ entry: Entry) { entries.append(entry) }
}

/// Reads length words, with a window of the file in memory while searching a damaged
/// stretch word by word.
private struct FramingReader {
  let file: PosixFile
  let size: UInt64
  private var window: [UInt8] = []
  private var windowStart: UInt64 = 0
  private static let windowSize = 1 << 20

  init(file: PosixFile, size: UInt64) {
    self.file = file
    self.size = size
  }

  /// A word read alone (the common case: two per record, far apart).
  func word(at offset: UInt64) throws -> UInt32 {
    guard offset + 4 <= size else { return 0xFFFF_FFFF }
    let bytes = try file.read(at: offset, count: 4)
    guard bytes.count == 4 else { return 0xFFFF_FFFF }
    return Self.decode(bytes, 0)
  }

  private static func decode(_ bytes: [UInt8], _ index: Int) -> UInt32 {
    UInt32(bytes[index]) | UInt32(bytes[index + 1]) << 8 | UInt32(bytes[index + 2]) << 16
      | UInt32(bytes[index + 3]) << 24
  }

  /// A word through the window (searching a damaged stretch).
  private mutating func windowed(at offset: UInt64) throws -> UInt32 {
    guard offset + 4 <= size else { return 0xFFFF_FFFF }
    if offset < windowStart || offset + 4 > windowStart + UInt64(window.count) {
      windowStart = offset
      window = try file.read(at: offset, count: Int(min(UInt64(Self.windowSize), size - offset)))
      guard window.count >= 4 else { return 0xFFFF_FFFF }
    }
    return Self.decode(window, Int(offset - windowStart))
  }

  /// A data block starts here: a length word below 16 MiB, echoed after its data.
  func blockHolds(at offset: UInt64) throws -> Bool {
    let length = try word(at: offset)
    guard length > 0, length < TapeRecordMap.largestBlock, offset + 8 + UInt64(length) <= size else { return false }
    return try word(at: offset + 4 + UInt64(length)) == length
  }

  /// A zero word is a filemark when what follows it holds: the end of the data, a block,
  /// or another filemark that does (a few in a row at most). A run of zeros that ends in
  /// data is a zeroed stretch, not thousands of filemarks.
  func filemarkHolds(at offset: UInt64) throws -> Bool {
    var next = offset + 4
    for _ in 0..<TapeRecordMap.filemarksInARow {
      if next + 4 > size { return true }
      let word = try word(at: next)
      if try word == 0xFFFF_FFFF || blockHolds(at: next) { return true }
      guard word == 0 else { return false }
      next += 4
    }
    return false
  }

  /// Whether some intact block follows a record that seems cut short; when none does, the
  /// file simply ends there (a crash while writing).
  mutating func anyBlockAfter(_ offset: UInt64) throws -> Bool {
    try nextIntactRecord(after: offset) != nil
  }

  /// The first position after `offset` where a block's framing holds, with the filemarks
  /// just before it that belong to the damaged stretch: zero words right before the block
  /// count as filemarks only when the stretch is not whole records without them (a zeroed
  /// record's last length word is a zero word too).
  mutating func nextIntactRecord(after offset: UInt64) throws -> (offset: UInt64, filemarks: Int, length: Int)? {
    var candidate = offset + 4
    while candidate + 8 <= size {
      let length = try windowed(at: candidate)
      if length > 0, length < TapeRecordMap.largestBlock, candidate + 8 + UInt64(length) <= size,
        try word(at: candidate + 4 + UInt64(length)) == length
      {
        var zeros = 0
        while zeros < TapeRecordMap.filemarksInARow, candidate - 4 * UInt64(zeros + 1) > offset,
          try windowed(at: candidate - 4 * UInt64(zeros + 1)) == 0
        {
          zeros += 1
        }
        return (candidate, Self.filemarks(span: candidate - offset, zeros: zeros, length: length), Int(length))
      }
      candidate += 4
    }
    return nil
  }

  /// How many filemarks a damaged stretch of `span` bytes held, ending at an intact block
  /// of `length` bytes: none when the stretch is whole records of that size; else as many
  /// as make it so (a filemark is 4 bytes: one destroyed by the damage is still counted,
  /// so later files keep their numbers); else one if zero words lead up to the block.
  private static func filemarks(span: UInt64, zeros: Int, length: UInt32) -> Int {
    let record = UInt64(length) + 8
    guard span % record != 0 else { return 0 }
    let whole = (1...TapeRecordMap.filemarksInARow).first {
      span >= 4 * UInt64($0) && (span - 4 * UInt64($0)) % record == 0
    }
    return whole ?? (zeros > 0 ? 1 : 0)
  }
}
