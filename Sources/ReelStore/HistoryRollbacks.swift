import Foundation
import GRDB
import ReelCore

/// A rollback in a volume's history as it leaves the store for a sealed archive or enters
/// it from one (a `volume_rollback` row, migration v6-clones): from `seq` on, the volume
/// read as it did at `targetSeq`.
package struct HistoryRollback: Sendable, Equatable {
  package var seq: Seq
  package var targetSeq: Seq
  package var time: Timestamp

  package init(seq: Seq, targetSeq: Seq, time: Timestamp) {
    self.seq = seq
    self.targetSeq = targetSeq
    self.time = time
  }
}

extension LiveStore {
  /// The volume's rollbacks in `after <.. through`, oldest first.
  package func rollbacks(of descriptor: VolumeDescriptor, after: Seq, through: Seq) throws -> [HistoryRollback] {
    try catalog.database.read { db in
      try Row.fetchAll(
        db,
        sql: """
          SELECT seq, target_seq, time_ns FROM volume_rollback WHERE volume_id = ? AND seq > ? AND seq <= ?
          ORDER BY seq
          """,
        arguments: [descriptor.id.description, Int64(after), Int64(through)]
      ).map {
        HistoryRollback(
          seq: Seq($0["seq"] as Int64), targetSeq: Seq($0["target_seq"] as Int64),
          time: Timestamp(nanoseconds: $0["time_ns"]))
      }
    }
  }
}

extension Catalog {
  static func insertRollbacks(_ db: Database, volume: String, _ rollbacks: [HistoryRollback]) throws {
    let insert = try db.makeStatement(
      sql: "INSERT OR REPLACE INTO volume_rollback (volume_id, seq, target_seq, time_ns) VALUES (?, ?, ?, ?)")
    for rollback in rollbacks {
      try insert.execute(arguments: [volume, Int64(rollback.seq), Int64(rollback.targetSeq), rollback.time.nanoseconds])
    }
  }
}
