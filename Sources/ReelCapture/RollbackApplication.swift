import ReelCore
import ReelIO
import ReelJournal

/// Applies a rollback record to a live image: the record's extents are copied from the
/// live store as of its target seq. Capture does not know the store; `reel serve` hands in
/// the same closure it uses to rebuild an image (`CaptureConfiguration.rebuildBase`).
package enum RollbackApplication {
  /// The volume as of a seq, from the live store.
  package typealias StoreSource = (Seq) throws -> any VolumeSource

  static let copyPiece = 4 << 20

  static func storeSource(
    _ descriptor: VolumeDescriptor, _ base: (@Sendable (VolumeDescriptor, Seq) throws -> any VolumeSource)?
  ) -> StoreSource? {
    guard let base else { return nil }
    return { seq in try base(descriptor, seq) }
  }

  static func apply(_ record: JournalRecord, to file: PosixFile, size: UInt64, storeSource: StoreSource?) throws {
    guard let payload = record.rollback else {
      throw ReelError(.corrupt, "journal record seq \(record.seq) is a rollback whose payload does not decode")
    }
    guard let storeSource else {
      throw ReelError(
        .notFound,
        "journal record seq \(record.seq) rolls the volume back to seq \(payload.targetSeq); the live image needs the live store to apply it",
        remedy: "serve the volume with `reel serve`, which reads the rolled-back extents from the live store")
    }
    guard payload.extents.last.map({ $0.end <= size }) ?? true else {
      throw ReelError(
        .corrupt, "journal record seq \(record.seq) rolls back bytes past the volume's \(size) bytes",
        remedy: "check the journal with `reel journal verify`; the volume descriptor may not belong to it")
    }
    guard !payload.extents.isEmpty else { return }
    let source = try storeSource(payload.targetSeq)
    try copy(payload.extents, from: source, to: file)
  }

  /// Writes the extents' bytes from `source` into `file`; all-zero pieces become holes.
  static func copy(_ extents: [RollbackPayload.Extent], from source: any VolumeSource, to file: PosixFile) throws {
    for extent in extents {
      var offset = extent.offset
      while offset < extent.end {
        let length = Int(min(UInt64(copyPiece), extent.end - offset))
        let bytes = try source.read(offset: offset, length: length)
        if bytes.allSatisfy({ $0 == 0 }) {
          try file.punchHole(offset: offset, length: UInt64(length))
        } else {
          try file.write(bytes, at: offset)
        }
        offset += UInt64(length)
      }
    }
  }
}
