import Foundation
import GRDB
import ReelCore

/// History of a volume known to be lost to damage: an archive beyond repair gave back its
/// window only up to `fromSeq − 1` (docs/rehydrate.md, "What a damaged archive still
/// gives"). Points in it are refused, never read as the state before it (migration
/// v7-history-loss).
package struct HistoryLoss: Sendable, Equatable {
  package var archiveID: String
  package var fromSeq: Seq
  package var untilSeq: Seq
  /// The time of record `fromSeq`, when known.
  package var fromTime: Timestamp?
  /// One sentence: what was lost, where the damage is.
  package var description: String

  package init(archiveID: String, fromSeq: Seq, untilSeq: Seq, fromTime: Timestamp?, description: String) {
    self.archiveID = archiveID
    self.fromSeq = fromSeq
    self.untilSeq = untilSeq
    self.fromTime = fromTime
    self.description = description
  }

  /// The error for a point in the lost history.
  func refusal(_ what: String, volume: String) -> ReelError {
    ReelError(
      .notFound, "\(what) of volume \(volume) lies in history lost to damage: \(description)",
      remedy:
        "pick a point up to seq \(fromSeq - 1), or rehydrate into a new store from another copy of archive \(archiveID)"
    )
  }
}

extension LiveStore {
  /// The volume's history known to be lost to damage, oldest first.
  package func losses(of descriptor: VolumeDescriptor) throws -> [HistoryLoss] {
    try catalog.database.read { db in try Catalog.losses(db, of: descriptor.id.description) }
  }

  /// Notes that the volume's history from `loss.fromSeq` on was lost (one row per archive).
  package func recordLoss(_ loss: HistoryLoss, of descriptor: VolumeDescriptor) throws {
    try catalog.database.write { db in
      try db.execute(
        sql: """
          INSERT OR REPLACE INTO history_loss (volume_id, archive_id, from_seq, until_seq, from_time_ns, description)
          VALUES (?, ?, ?, ?, ?, ?)
          """,
        arguments: [
          descriptor.id.description, loss.archiveID, Int64(loss.fromSeq), Int64(loss.untilSeq),
          loss.fromTime?.nanoseconds, loss.description,
        ])
    }
  }
}

extension Catalog {
  static func losses(_ db: Database, of volumeID: String) throws -> [HistoryLoss] {
    try Row.fetchAll(
      db, sql: "SELECT * FROM history_loss WHERE volume_id = ? ORDER BY from_seq", arguments: [volumeID]
    ).map {
      HistoryLoss(
        archiveID: $0["archive_id"], fromSeq: Seq($0["from_seq"] as Int64), untilSeq: Seq($0["until_seq"] as Int64),
        fromTime: ($0["from_time_ns"] as Int64?).map { Timestamp(nanoseconds: $0) }, description: $0["description"])
    }
  }
}
