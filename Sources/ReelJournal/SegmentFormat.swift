import ReelCodec
import ReelCore

/// Byte layout of journal segments, format version 1. `docs/journal-format.md` is the
/// normative description; this file must match it byte for byte.
package enum SegmentFormat {
  package static let version: UInt16 = 1
  static let magic: [UInt8] = Array("REELJRNL".utf8)
  static let headerSize = 64
  static let recordMarker: UInt32 = 0x3143_4552  // "REC1" in file order
  static let recordHeaderSize = 48
  static let footerPayloadSize = 48
  static let footerSize = recordHeaderSize + footerPayloadSize
  /// Largest payload a record may carry; an NBD request is at most 32 MiB.
  package static let maxPayload = 64 << 20
  static let fileExtension = "rjs"

  static func fileName(segment number: UInt64) -> String {
    let digits = String(number)
    return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + "." + fileExtension
  }

  static func segmentNumber(fileName: String) -> UInt64? {
    guard fileName.hasSuffix("." + fileExtension) else { return nil }
    let stem = fileName.dropLast(fileExtension.count + 1)
    guard stem.count == 20, stem.allSatisfy(\.isASCII) else { return nil }
    return UInt64(stem)
  }
}

/// The fixed 64-byte header at offset 0 of every segment.
package struct SegmentHeader: Equatable, Sendable {
  package var volume: VolumeID
  var segmentNumber: UInt64
  /// The seq the first record of this segment has; one past the previous segment's last.
  package var firstSeq: Seq
  package var created: Timestamp

  func encoded() -> [UInt8] {
    var writer = ByteWriter(capacity: SegmentFormat.headerSize)
    writer.put(SegmentFormat.magic)
    writer.put(SegmentFormat.version)
    writer.put(UInt16(SegmentFormat.headerSize))
    writer.put(UInt32(0))
    writer.put(volume.bytes)
    writer.put(segmentNumber)
    writer.put(firstSeq)
    writer.put(created.nanoseconds)
    writer.put(UInt32(0))
    writer.put(CRC32C.checksum(writer.bytes))
    return writer.bytes
  }

  /// Decodes and checks a header; `path` names the file in every error.
  static func decode(_ bytes: [UInt8], path: String) throws -> SegmentHeader {
    guard bytes.count >= 10, Array(bytes[0..<8]) == SegmentFormat.magic else {
      if bytes.count < SegmentFormat.headerSize && SegmentFormat.magic.starts(with: bytes.prefix(8)) {
        throw ReelError(
          .corrupt,
          "\(path): truncated segment header (\(bytes.count) of \(SegmentFormat.headerSize) bytes)",
          remedy: "the file was cut short; restore it from a copy or move it out of the journal folder")
      }
      throw ReelError(
        .corrupt, "\(path): not a Reel journal segment (bad magic)",
        remedy: "move files that do not belong out of the journal folder")
    }
    return try bytes.withUnsafeBytes { raw in
      var reader = ByteReader(raw)
      reader.skip(8)
      let version = reader.u16()
      guard version == SegmentFormat.version else {
        throw ReelError(
          .incompatible,
          "\(path): journal format version \(version) is not supported (this reel reads version \(SegmentFormat.version))",
          remedy: "use the reel release that wrote this journal")
      }
      guard bytes.count >= SegmentFormat.headerSize else {
        throw ReelError(
          .corrupt,
          "\(path): truncated segment header (\(bytes.count) of \(SegmentFormat.headerSize) bytes)",
          remedy: "the file was cut short; restore it from a copy or move it out of the journal folder")
      }
      let stored = UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 60, as: UInt32.self))
      guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<60])) == stored else {
        throw ReelError(
          .corrupt, "\(path): segment header checksum mismatch at offset 0",
          remedy: "the header is damaged; restore the segment from a sealed archive or a copy")
      }
      _ = reader.u16()  // header size, fixed in version 1
      _ = reader.u32()  // flags
      let volume = VolumeID(bytes: reader.raw(16))
      let number = reader.u64()
      let firstSeq = reader.u64()
      let created = Timestamp(nanoseconds: reader.i64())
      return SegmentHeader(volume: volume, segmentNumber: number, firstSeq: firstSeq, created: created)
    }
  }
}

/// What a closed segment's footer records about it.
package struct SegmentSummary: Equatable, Sendable {
  package var recordCount: UInt64
  package var firstSeq: Seq
  /// `firstSeq - 1` when the segment holds no records.
  package var lastSeq: Seq
  var minTime: Timestamp
  var maxTime: Timestamp
  /// CRC-32C over the segment header followed by each record's checksum, in order.
  package var digest: UInt32

  func encodedPayload() -> [UInt8] {
    var writer = ByteWriter(capacity: SegmentFormat.footerPayloadSize)
    writer.put(recordCount)
    writer.put(firstSeq)
    writer.put(lastSeq)
    writer.put(minTime.nanoseconds)
    writer.put(maxTime.nanoseconds)
    writer.put(digest)
    writer.put(UInt32(0))
    return writer.bytes
  }

  /// The whole footer record that closes a segment with this summary.
  func footerRecord(time: Timestamp) -> [UInt8] {
    let payload = encodedPayload()
    var payloadChecksum = CRC32C()
    payloadChecksum.update(payload)
    let (header, _) = RecordEncoder.header(
      kind: JournalRecord.Kind.segmentEnd, flags: 0, seq: lastSeq, time: time, offset: 0, length: 0,
      payloadCount: payload.count, payloadChecksum: payloadChecksum)
    return header + payload
  }

  static func decode(payload: [UInt8]) -> SegmentSummary {
    payload.withUnsafeBytes { raw in
      var reader = ByteReader(raw)
      return SegmentSummary(
        recordCount: reader.u64(), firstSeq: reader.u64(), lastSeq: reader.u64(),
        minTime: Timestamp(nanoseconds: reader.i64()), maxTime: Timestamp(nanoseconds: reader.i64()),
        digest: reader.u32())
    }
  }
}

/// Encodes one record: 48-byte header, then the payload. The checksum covers the payload
/// followed by header bytes 0..<44, so the payload can be summed before a seq is assigned.
struct RecordEncoder {
  static func header(
    kind: UInt8, flags: UInt8, seq: Seq, time: Timestamp, offset: UInt64, length: UInt64,
    payloadCount: Int, payloadChecksum: CRC32C
  ) -> (bytes: [UInt8], checksum: UInt32) {
    var writer = ByteWriter(capacity: SegmentFormat.recordHeaderSize)
    writer.put(SegmentFormat.recordMarker)
    writer.put(kind)
    writer.put(flags)
    writer.put(UInt16(0))
    writer.put(seq)
    writer.put(time.nanoseconds)
    writer.put(offset)
    writer.put(length)
    writer.put(UInt32(payloadCount))
    var crc = payloadChecksum
    crc.update(writer.bytes)
    let checksum = crc.value
    writer.put(checksum)
    return (writer.bytes, checksum)
  }
}
