import Foundation
import ReelCodec
import ReelCore
import ReelIO

/// One segment file opened for reading: its header, and its footer if it was closed.
package struct SegmentFile: Sendable {
  package let path: String
  package let header: SegmentHeader
  /// Present when the segment was closed cleanly; nil for the segment being written
  /// (or left open by a crash).
  package let summary: SegmentSummary?
  package let size: UInt64
  let file: PosixFile

  package var number: UInt64 { header.segmentNumber }

  /// Opens `path` and checks its header against what the journal folder expects.
  init(path: String, volume: VolumeID, number: UInt64) throws {
    let file = try PosixFile.openForReading(path)
    let size = try file.size()
    let header = try SegmentHeader.decode(file.read(at: 0, count: SegmentFormat.headerSize), path: path)
    guard header.volume == volume else {
      throw ReelError(
        .incompatible,
        "\(path): this segment belongs to volume \(header.volume), not \(volume)",
        remedy: "move the file back to the journal folder of volume \(header.volume)")
    }
    guard header.segmentNumber == number else {
      throw ReelError(
        .corrupt,
        "\(path): header says segment \(header.segmentNumber) but the file name says \(number)",
        remedy:
          "a segment file was renamed; give it back its name \(SegmentFormat.fileName(segment: header.segmentNumber))")
    }
    self.path = path
    self.file = file
    self.header = header
    self.size = size
    self.summary = Self.readFooter(file: file, size: size, header: header)
  }

  private static func readFooter(file: PosixFile, size: UInt64, header: SegmentHeader) -> SegmentSummary? {
    guard size >= UInt64(SegmentFormat.headerSize + SegmentFormat.footerSize),
      let bytes = try? file.read(at: size - UInt64(SegmentFormat.footerSize), count: SegmentFormat.footerSize),
      bytes.count == SegmentFormat.footerSize,
      case .record(let decoded) = RecordParser.parse(bytes, at: 0, available: bytes.count),
      decoded.kind == JournalRecord.Kind.segmentEnd
    else { return nil }
    let summary = SegmentSummary.decode(payload: decoded.payload)
    guard summary.firstSeq == header.firstSeq else { return nil }
    return summary
  }

  /// How a scan of the segment ended.
  package enum End: Equatable, Sendable {
    /// The footer at `offset` closed the segment.
    case footer(offset: UInt64, summary: SegmentSummary)
    /// The open segment ends cleanly at `offset` after its last whole record.
    case open(offset: UInt64)
    /// The open segment's last bytes from `offset` on are a record cut short or never
    /// completed; nothing valid follows them.
    case tornTail(offset: UInt64, reason: String)
  }

  /// Reads records in order, checking each against `expectedSeq` and the time before it.
  /// `body` returns false to stop early (the result is then nil). Damage anywhere but
  /// the tail of an open segment throws, naming the file and offset.
  func scan(
    expectedFirstSeq: Seq, lastTime: Timestamp?, body: (JournalRecord, UInt64) throws -> Bool
  ) throws -> (end: End, lastSeq: Seq, lastTime: Timestamp?, digest: UInt32)? {
    var position = UInt64(SegmentFormat.headerSize)
    var expected = expectedFirstSeq
    var previousTime = lastTime
    var digest = CRC32C()
    digest.update(header.encoded())
    var window = ReadWindow(file: file, size: size, direct: summary != nil)
    while true {
      if position == size {
        if summary != nil {
          throw damage(at: position, "the footer is missing although the segment was closed")
        }
        return (.open(offset: position), expected - 1, previousTime, digest.value)
      }
      let parsed = try window.parse(at: position)
      switch parsed {
      case .record(let raw):
        let recordEnd = position + UInt64(raw.totalSize)
        if raw.kind == JournalRecord.Kind.segmentEnd {
          let footer = SegmentSummary.decode(payload: raw.payload)
          guard recordEnd == size else {
            throw damage(at: recordEnd, "\(size - recordEnd) bytes follow the segment footer")
          }
          guard footer.lastSeq == expected - 1, footer.firstSeq == expectedFirstSeq,
            footer.recordCount == expected - expectedFirstSeq, footer.digest == digest.value
          else {
            throw damage(at: position, "the footer does not match the records before it")
          }
          return (.footer(offset: position, summary: footer), expected - 1, previousTime, digest.value)
        }
        guard let kind = JournalRecord.Kind(rawValue: raw.kind) else {
          throw damage(at: position, "unknown record kind \(raw.kind)")
        }
        guard raw.seq == expected else {
          throw damage(at: position, "record has seq \(raw.seq), expected \(expected)")
        }
        if let previousTime, raw.time <= previousTime {
          throw damage(at: position, "record time \(raw.time) is not after \(previousTime)")
        }
        if kind == .write && raw.length != UInt64(raw.payload.count) {
          throw damage(at: position, "write record length \(raw.length) differs from its payload")
        }
        if kind == .rollback {
          guard raw.offset == 0, raw.length == 0 else {
            throw damage(at: position, "rollback record has offset \(raw.offset) and length \(raw.length), expected 0")
          }
          do {
            _ = try RollbackPayload.decode(raw.payload)
          } catch {
            throw damage(at: position, error.reason)
          }
        }
        digest.update(withUnsafeBytes(of: raw.checksum.littleEndian) { Array($0) })
        let record = JournalRecord(
          seq: raw.seq, time: raw.time, kind: kind, flags: .init(rawValue: raw.flags),
          offset: raw.offset, length: raw.length, payload: raw.payload)
        expected += 1
        previousTime = raw.time
        if try !body(record, position) { return nil }
        position = recordEnd
      case .incomplete(let reason), .invalid(let reason):
        if summary != nil { throw damage(at: position, reason) }
        if let later = try window.findValidRecord(after: position, minimumSeq: expected) {
          throw damage(
            at: position, "\(reason); a valid record (seq \(later.seq)) follows at offset \(later.offset)")
        }
        if try window.looksLikeDamagedFooter(at: position) {
          throw damage(at: position, "the segment footer is damaged (\(reason))")
        }
        return (.tornTail(offset: position, reason: reason), expected - 1, previousTime, digest.value)
      }
    }
  }

  func damage(at offset: UInt64, _ reason: String) -> ReelError {
    ReelError(
      .corrupt, "\(path): damaged journal at offset \(offset): \(reason)",
      remedy:
        "nothing was changed; copy the journal folder aside, then restore this segment from a sealed archive or run `reel journal repair` to cut the volume's history at this point"
    )
  }
}

/// A record as it sits in the file, before its kind is interpreted.
struct RawRecord {
  var kind: UInt8
  var flags: UInt8
  var seq: Seq
  var time: Timestamp
  var offset: UInt64
  var length: UInt64
  var payload: [UInt8]
  var checksum: UInt32
  var totalSize: Int { SegmentFormat.recordHeaderSize + payload.count }
}

enum ParseResult {
  case record(RawRecord)
  case incomplete(String)
  case invalid(String)
}

enum RecordParser {
  /// The payload length a header declares, or nil when the header is not a record header.
  static func declaredPayload(_ raw: UnsafeRawBufferPointer) -> Int? {
    guard raw.count >= SegmentFormat.recordHeaderSize,
      UInt32(littleEndian: raw.loadUnaligned(as: UInt32.self)) == SegmentFormat.recordMarker
    else { return nil }
    let count = Int(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 40, as: UInt32.self)))
    return count <= SegmentFormat.maxPayload ? count : nil
  }

  /// Parses the record whose header starts at `start` in `bytes`, where `available`
  /// bytes from `start` on exist in the file (the buffer may hold fewer).
  static func parse(_ bytes: [UInt8], at start: Int, available: Int) -> ParseResult {
    bytes.withUnsafeBytes { whole in
      let raw = UnsafeRawBufferPointer(rebasing: whole[start...])
      if available < SegmentFormat.recordHeaderSize {
        return .incomplete("\(available) bytes left, less than a record header")
      }
      guard UInt32(littleEndian: raw.loadUnaligned(as: UInt32.self)) == SegmentFormat.recordMarker else {
        return .invalid("no record marker")
      }
      guard let payloadCount = declaredPayload(raw) else {
        return .invalid("declared payload exceeds \(SegmentFormat.maxPayload) bytes")
      }
      if available < SegmentFormat.recordHeaderSize + payloadCount {
        return .incomplete(
          "record needs \(SegmentFormat.recordHeaderSize + payloadCount) bytes, \(available) left")
      }
      var crc = CRC32C()
      crc.update(
        UnsafeRawBufferPointer(
          rebasing: raw[SegmentFormat.recordHeaderSize..<(SegmentFormat.recordHeaderSize + payloadCount)]))
      crc.update(UnsafeRawBufferPointer(rebasing: raw[0..<44]))
      let stored = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 44, as: UInt32.self))
      guard crc.value == stored else { return .invalid("record checksum mismatch") }
      var reader = ByteReader(raw)
      reader.skip(4)
      let kind = reader.u8()
      let flags = reader.u8()
      reader.skip(2)
      let seq = reader.u64()
      let time = Timestamp(nanoseconds: reader.i64())
      let offset = reader.u64()
      let length = reader.u64()
      reader.skip(8)
      return .record(
        RawRecord(
          kind: kind, flags: flags, seq: seq, time: time, offset: offset, length: length,
          payload: reader.raw(payloadCount), checksum: stored))
    }
  }
}

/// Sequential reads of one segment file, a window of at least 4 MiB at a time.
struct ReadWindow {
  let file: PosixFile
  let size: UInt64
  /// A direct-I/O descriptor of the file, for segments read once from the disk: through
  /// the page cache, copying each byte out of it cost ingest more CPU than its SHA-256
  /// (`copy_to_iter`, 9% of a cold `reel ingest`), and a cold `cat` of the journal ran
  /// at half the speed of direct 4 MiB reads. Nil where the file system refuses it.
  private let direct: PosixFile?
  private var buffer: [UInt8] = []
  /// `buffer[from..<to]` holds the file's bytes from `bufferStart` on; direct reads start
  /// `from` at an aligned address inside the buffer.
  private var from = 0
  private var to = 0
  private var bufferStart: UInt64 = 0
  private static let chunk = 4 << 20

  /// `direct`: read around the page cache where the file system allows it (closed
  /// segments, which nothing writes any more and which are seldom still cached).
  init(file: PosixFile, size: UInt64, direct: Bool = false) {
    self.file = file
    self.size = size
    self.direct = direct ? DirectIO.direct(file, writing: false) : nil
  }

  /// Makes `count` bytes from `offset` (or up to end of file) resident; returns the index
  /// of `offset` in `buffer`.
  private mutating func load(_ offset: UInt64, _ count: Int) throws -> Int {
    let wanted = min(UInt64(count), size - offset)
    if offset >= bufferStart && offset + wanted <= bufferStart + UInt64(to - from) {
      return from + Int(offset - bufferStart)
    }
    let amount = Int(min(UInt64(max(count, Self.chunk)), size - offset))
    if let direct, let index = loadDirect(direct, offset, amount) { return index }
    // Refilled in place: a fresh 4 MiB array per window went back to the kernel when freed
    // and was faulted in and zeroed again each time (12% of ingest's CPU in clear_page).
    if buffer.count != amount {
      buffer.removeAll(keepingCapacity: true)
      buffer.append(contentsOf: repeatElement(0, count: amount))
    }
    let got = try buffer.withUnsafeMutableBytes { try file.read(into: $0, at: offset) }
    bufferStart = offset
    from = 0
    to = got
    return 0
  }

  /// Reads whole aligned blocks around `offset..<offset+amount` with direct I/O; nil when
  /// the file system refuses the read (the caller reads through the cache instead).
  private mutating func loadDirect(_ direct: PosixFile, _ offset: UInt64, _ amount: Int) -> Int? {
    let alignment = DirectIO.alignment
    let alignedStart = offset / UInt64(alignment) * UInt64(alignment)
    let skew = Int(offset - alignedStart)
    let length = (skew + amount + alignment - 1) / alignment * alignment
    // Only grows, so the buffer's address, and with it the aligned start, rarely changes.
    if buffer.count < length + alignment {
      buffer = [UInt8](repeating: 0, count: length + alignment)
    }
    let result = buffer.withUnsafeMutableBytes { whole -> (start: Int, got: Int)? in
      let base = UInt(bitPattern: whole.baseAddress!)
      let start = Int((UInt(alignment) - base % UInt(alignment)) % UInt(alignment))
      var got = 0
      while got < length {
        let n = pread(
          direct.descriptor, whole.baseAddress! + start + got, length - got, off_t(alignedStart) + off_t(got))
        if n < 0 && errno == EINTR { continue }
        if n < 0 { return nil }
        got += n
        // Short of a whole block: the end of the file (another read from there would be
        // refused, being unaligned).
        if n == 0 || n % alignment != 0 { break }
      }
      return (start, got)
    }
    guard let result else { return nil }
    // As a read through the cache would: no bytes past `amount`, fewer if the file is short.
    bufferStart = offset
    from = result.start + skew
    to = max(from, min(result.start + result.got, from + amount))
    return from
  }

  mutating func parse(at offset: UInt64) throws -> ParseResult {
    let available = Int(min(size - offset, UInt64(Int.max)))
    var index = try load(offset, SegmentFormat.recordHeaderSize)
    let headerAvailable = to - index
    if headerAvailable >= SegmentFormat.recordHeaderSize {
      let declared = buffer.withUnsafeBytes {
        RecordParser.declaredPayload(UnsafeRawBufferPointer(rebasing: $0[index..<to])) ?? 0
      }
      index = try load(offset, SegmentFormat.recordHeaderSize + declared)
    }
    let resident = to - index
    return RecordParser.parse(buffer, at: index, available: min(available, max(resident, 0)))
  }

  /// A closed segment whose footer is damaged must not pass for an open segment with a
  /// torn last record: the tail is exactly one footer long and at least two of its three
  /// identifying fields (marker, kind, payload length) still say "footer".
  mutating func looksLikeDamagedFooter(at offset: UInt64) throws -> Bool {
    guard size - offset == UInt64(SegmentFormat.footerSize) else { return false }
    let index = try load(offset, SegmentFormat.footerSize)
    return buffer.withUnsafeBytes { whole in
      let raw = UnsafeRawBufferPointer(rebasing: whole[index...])
      let marker = UInt32(littleEndian: raw.loadUnaligned(as: UInt32.self)) == SegmentFormat.recordMarker
      let kind = raw[4] == JournalRecord.Kind.segmentEnd
      let length =
        UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 40, as: UInt32.self))
        == UInt32(SegmentFormat.footerPayloadSize)
      return [marker, kind, length].filter { $0 }.count >= 2
    }
  }

  /// Looks past damage for any intact record with seq ≥ `minimumSeq`: if one exists the
  /// damage is not a torn tail but corruption in the middle of history.
  mutating func findValidRecord(after offset: UInt64, minimumSeq: Seq) throws -> (offset: UInt64, seq: Seq)? {
    var candidate = offset + 1
    let marker = withUnsafeBytes(of: SegmentFormat.recordMarker.littleEndian) { Array($0) }
    while candidate + UInt64(SegmentFormat.recordHeaderSize) <= size {
      let index = try load(candidate, SegmentFormat.recordHeaderSize)
      guard to - index >= 4 else { return nil }
      if buffer[index] == marker[0] && buffer[index + 1] == marker[1] && buffer[index + 2] == marker[2]
        && buffer[index + 3] == marker[3]
      {
        if case .record(let raw) = try parse(at: candidate),
          raw.seq >= minimumSeq || raw.kind == JournalRecord.Kind.segmentEnd
        {
          return (candidate, raw.seq)
        }
      }
      candidate += 1
    }
    return nil
  }
}
