import GRDB
import ReelCore
import ReelJournal

/// A record that changed a volume's bytes.
package struct VolumeChange: Sendable, Equatable {
  package var seq: Seq
  package var time: Timestamp

  package init(seq: Seq, time: Timestamp) {
    self.seq = seq
    self.time = time
  }
}

extension LiveStore {
  /// The records in `after <.. through` that changed the volume's bytes (writes, trims,
  /// zeroing, rollbacks; not flushes or bookmarks), in seq order: the only points where anything
  /// stored in the volume can differ from the point before. One range read of the
  /// catalog's `record_time` (kept for the retained, ingested history).
  package func changes(of descriptor: VolumeDescriptor, after: Seq, through: Seq) throws -> [VolumeChange] {
    guard after < through else { return [] }
    return try catalog.database.read { db in
      // A clone's history before its clone point is its origin's (seqs continue across).
      var changes: [VolumeChange] = []
      var upper = through
      for level in try Catalog.lineage(db, of: descriptor.id.description).levels {
        let lower = max(after, level.originSeq ?? 0)
        changes = try Self.ownChanges(db, volume: level.volumeID, after: lower, through: upper) + changes
        guard let originSeq = level.originSeq, after < originSeq else { break }
        upper = min(upper, originSeq)
      }
      return changes
    }
  }

  private static func ownChanges(_ db: Database, volume: String, after: Seq, through: Seq) throws -> [VolumeChange] {
    guard after < through else { return [] }
    return try Row.fetchAll(
      db,
      sql: """
        SELECT seq, time_ns FROM record_time
        WHERE volume = \(Catalog.volumeNumber) AND seq > ? AND seq <= ? AND kind IN (?, ?, ?, ?) ORDER BY seq
        """,
      arguments: [
        volume, Int64(clamping: after), Int64(clamping: through), Int64(JournalRecord.Kind.write.rawValue),
        Int64(JournalRecord.Kind.trim.rawValue), Int64(JournalRecord.Kind.writeZeroes.rawValue),
        Int64(JournalRecord.Kind.rollback.rawValue),
      ]
    ).map { VolumeChange(seq: Seq($0["seq"] as Int64), time: Timestamp(nanoseconds: $0["time_ns"])) }
  }
}
