import ReelCore

/// What a `rollback` record (kind 6) says: every byte inside `extents` becomes what it was
/// at `targetSeq`; bytes outside are unchanged. docs/journal-format.md is normative.
package struct RollbackPayload: Equatable, Sendable {
  /// A byte range of the volume.
  package struct Extent: Equatable, Hashable, Sendable {
    package var offset: UInt64
    package var length: UInt64
    package init(offset: UInt64, length: UInt64) {
      self.offset = offset
      self.length = length
    }
    package var end: UInt64 { offset + length }
  }

  /// Payload bytes before the first extent: target seq, extent count, reserved.
  static let fixedSize = 16
  static let extentSize = 16
  /// Most extents one record can carry within the journal's payload limit.
  package static let maxExtents = (SegmentFormat.maxPayload - fixedSize) / extentSize

  package var targetSeq: Seq
  /// Sorted by offset, non-overlapping, none empty.
  package var extents: [Extent]

  package init(targetSeq: Seq, extents: [Extent]) {
    self.targetSeq = targetSeq
    self.extents = extents
  }

  /// Bytes covered by the extents.
  package var coveredBytes: UInt64 { extents.reduce(0) { $0 + $1.length } }

  package func encoded() -> [UInt8] {
    var writer = ByteWriter(capacity: Self.fixedSize + extents.count * Self.extentSize)
    writer.put(targetSeq)
    writer.put(UInt32(extents.count))
    writer.put(UInt32(0))
    for extent in extents {
      writer.put(extent.offset)
      writer.put(extent.length)
    }
    return writer.bytes
  }

  /// Decodes and checks a payload; the error says what is wrong (the caller names the
  /// record).
  package static func decode(_ payload: [UInt8]) throws(RollbackPayloadError) -> RollbackPayload {
    guard payload.count >= fixedSize else {
      throw RollbackPayloadError("rollback payload of \(payload.count) bytes is shorter than \(fixedSize)")
    }
    let decoded: (Seq, [Extent])? = payload.withUnsafeBytes { raw in
      var reader = ByteReader(raw)
      let target = reader.u64()
      let count = Int(reader.u32())
      _ = reader.u32()
      guard payload.count == fixedSize + count * extentSize else { return nil }
      var extents: [Extent] = []
      extents.reserveCapacity(count)
      for _ in 0..<count { extents.append(Extent(offset: reader.u64(), length: reader.u64())) }
      return (target, extents)
    }
    guard let (target, extents) = decoded else {
      throw RollbackPayloadError("rollback payload size \(payload.count) does not match its extent count")
    }
    var previousEnd: UInt64 = 0
    for (index, extent) in extents.enumerated() {
      let (end, overflow) = extent.offset.addingReportingOverflow(extent.length)
      guard extent.length > 0, !overflow else {
        throw RollbackPayloadError(
          "rollback extent \(index) (offset \(extent.offset), length \(extent.length)) is empty or overflows")
      }
      guard index == 0 || extent.offset >= previousEnd else {
        throw RollbackPayloadError(
          "rollback extent \(index) at offset \(extent.offset) overlaps or precedes the one before it")
      }
      previousEnd = end
    }
    return RollbackPayload(targetSeq: target, extents: extents)
  }

  /// Checks the extents against the volume a record belongs to: inside it, and aligned to
  /// its store block (the end may be the volume's end).
  package func check(volumeSize: UInt64, storeBlockSize: UInt64, recordSeq: Seq) throws(RollbackPayloadError) {
    guard targetSeq < recordSeq else {
      throw RollbackPayloadError("rollback target seq \(targetSeq) is not before the record's own seq \(recordSeq)")
    }
    let block = storeBlockSize
    for extent in extents {
      guard extent.end <= volumeSize else {
        throw RollbackPayloadError(
          "rollback extent \(extent.offset)+\(extent.length) reaches past the volume's \(volumeSize) bytes")
      }
      guard extent.offset % block == 0, extent.end % block == 0 || extent.end == volumeSize else {
        throw RollbackPayloadError(
          "rollback extent \(extent.offset)+\(extent.length) is not aligned to the store block of \(storeBlockSize) bytes"
        )
      }
    }
  }
}

/// A rollback payload that does not follow docs/journal-format.md.
package struct RollbackPayloadError: Error, Sendable {
  package var reason: String
  init(_ reason: String) { self.reason = reason }
}

extension JournalRecord {
  /// The decoded payload of a rollback record; nil for other kinds or a payload that does
  /// not decode (readers reject those, so a record read from a journal always decodes).
  package var rollback: RollbackPayload? {
    kind == .rollback ? try? RollbackPayload.decode(payload) : nil
  }
}

extension JournalEntry {
  package static func rollback(_ payload: RollbackPayload) -> JournalEntry {
    JournalEntry(kind: .rollback, flags: [], offset: 0, length: 0, payload: payload.encoded())
  }
}

/// A rollback worked out against the live store, ready to be journaled.
package struct RollbackPlan: Sendable, Equatable {
  package var payload: RollbackPayload
  /// The time of the target seq's record.
  package var targetTime: Timestamp
  /// How the user's point was read, e.g. `bookmark "before upgrade"`.
  package var target: String

  package init(payload: RollbackPayload, targetTime: Timestamp, target: String) {
    self.payload = payload
    self.targetTime = targetTime
    self.target = target
  }
}
