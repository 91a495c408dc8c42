import ReelCore

/// One entry of a volume's journal.
package struct JournalRecord: Equatable, Sendable {
  package enum Kind: UInt8, Sendable, CaseIterable, CustomStringConvertible {
    /// `payload` holds `length` bytes to write at `offset`.
    case write = 1
    /// The range's contents are discarded; reads may return zeros.
    case trim = 2
    /// The range reads as zeros.
    case writeZeroes = 3
    /// Everything before this record was made durable at the client's request.
    case flush = 4
    /// A named, crash-consistent point; `payload` holds the UTF-8 label.
    case bookmark = 5
    /// Extents of the volume return to their contents at an earlier seq; `payload` is a
    /// `RollbackPayload`.
    case rollback = 6

    /// Closes a segment; never returned to readers.
    static let segmentEnd: UInt8 = 0x7F

    package var description: String {
      switch self {
      case .write: "write"
      case .trim: "trim"
      case .writeZeroes: "zeroes"
      case .flush: "flush"
      case .bookmark: "bookmark"
      case .rollback: "rollback"
      }
    }
  }

  package struct Flags: OptionSet, Sendable, Hashable {
    package let rawValue: UInt8
    package init(rawValue: UInt8) { self.rawValue = rawValue }
    /// The client asked for this write to be durable before the reply (NBD FUA).
    package static let forceUnitAccess = Flags(rawValue: 1)
  }

  package var seq: Seq
  package var time: Timestamp
  package var kind: Kind
  package var flags: Flags
  package var offset: UInt64
  package var length: UInt64
  package var payload: [UInt8]

  package init(
    seq: Seq, time: Timestamp, kind: Kind, flags: Flags = [], offset: UInt64 = 0,
    length: UInt64 = 0, payload: [UInt8] = []
  ) {
    self.seq = seq
    self.time = time
    self.kind = kind
    self.flags = flags
    self.offset = offset
    self.length = length
    self.payload = payload
  }

  /// The label of a bookmark record.
  package var label: String? {
    kind == .bookmark ? String(decoding: payload, as: UTF8.self) : nil
  }
}

/// What a caller hands to the writer; the writer assigns seq and time.
package struct JournalEntry: Sendable {
  package var kind: JournalRecord.Kind
  package var flags: JournalRecord.Flags
  package var offset: UInt64
  package var length: UInt64
  package var payload: [UInt8]

  package static func write(offset: UInt64, data: [UInt8], flags: JournalRecord.Flags = []) -> JournalEntry {
    JournalEntry(kind: .write, flags: flags, offset: offset, length: UInt64(data.count), payload: data)
  }
  package static func trim(offset: UInt64, length: UInt64) -> JournalEntry {
    JournalEntry(kind: .trim, flags: [], offset: offset, length: length, payload: [])
  }
  package static func writeZeroes(offset: UInt64, length: UInt64, flags: JournalRecord.Flags = []) -> JournalEntry {
    JournalEntry(kind: .writeZeroes, flags: flags, offset: offset, length: length, payload: [])
  }
  package static let flush = JournalEntry(kind: .flush, flags: [], offset: 0, length: 0, payload: [])
  package static func bookmark(_ label: String) -> JournalEntry {
    JournalEntry(kind: .bookmark, flags: [], offset: 0, length: 0, payload: Array(label.utf8))
  }
}
