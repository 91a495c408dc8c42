import Foundation
import GRDB
import ReelCore

extension LiveStore {
  /// The volume's rollbacks in `after <.. through`, oldest first: what a sealed archive of
  /// that window carries (docs/archive-format.md, version 3).
  package func rollbacks(of descriptor: VolumeDescriptor, after: Seq, through: Seq) throws -> [RollbackEvent] {
    try catalog.database.read { db in
      try Row.fetchAll(
        db,
        sql: """
          SELECT seq, target_seq, time_ns FROM volume_rollback WHERE volume_id = ? AND seq > ? AND seq <= ?
          ORDER BY seq
          """,
        arguments: [descriptor.id.description, Int64(after), Int64(through)]
      ).map {
        RollbackEvent(
          seq: Seq($0["seq"] as Int64), targetSeq: Seq($0["target_seq"] as Int64),
          time: Timestamp(nanoseconds: $0["time_ns"]))
      }
    }
  }
}
