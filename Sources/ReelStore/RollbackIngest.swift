import ReelCore
import ReelJournal

extension IngestBatch {
  /// A rollback record becomes one full version per touched block at the record's seq,
  /// equal to the block's state at the target seq (docs/journal-format.md, kind 6).
  mutating func addRollback(_ record: JournalRecord) throws {
    throw ReelError(
      .incompatible, "volume \(descriptor.name): ingest of rollback records (seq \(record.seq)) is not built yet")
  }
}
