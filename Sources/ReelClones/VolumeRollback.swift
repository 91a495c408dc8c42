import Foundation
import ReelCore
import ReelIO
import ReelJournal
import ReelStore

/// What `reel rollback` did.
package struct RollbackReport: Sendable, Equatable {
  package var volume: String
  /// The rollback record's seq and time.
  package var seq: Seq
  package var time: Timestamp
  package var targetSeq: Seq
  package var targetTime: Timestamp
  /// How the point was read, e.g. `bookmark "before upgrade"`.
  package var target: String
  package var extents: Int
  package var bytes: UInt64
  /// True when the running `reel serve` did it.
  package var throughServer: Bool
  package var disconnected: Int

  package init(
    volume: String, seq: Seq, time: Timestamp, targetSeq: Seq, targetTime: Timestamp, target: String, extents: Int,
    bytes: UInt64, throughServer: Bool, disconnected: Int
  ) {
    self.volume = volume
    self.seq = seq
    self.time = time
    self.targetSeq = targetSeq
    self.targetTime = targetTime
    self.target = target
    self.extents = extents
    self.bytes = bytes
    self.throughServer = throughServer
    self.disconnected = disconnected
  }
}

/// Rolling back a volume that no server has: the journal's writer lock is taken (as an
/// offline bookmark does), the store caught up, the rollback planned and journaled as one
/// durable record, then ingested. The live image catches up when the volume is next
/// served (it replays the record from the store). A crash before the record is durable
/// leaves nothing (a torn tail is cut on the next open); after, the rollback is done.
package enum VolumeRollback {
  package static func offline(store: Store, volume name: String, to point: String) throws -> RollbackReport {
    let descriptor = try store.layout.descriptor(of: name)
    let directory = store.layout.journalDirectory(name)
    let journal = try JournalWriter.openWithoutServer(
      directory: directory, volume: descriptor.id, name: name, controlSocket: "its control socket")
    let live = LiveStore(store: store)
    let planned: RollbackPlan
    let appended: AppendedRecord
    do {
      planned = try RollbackPlanner.plan(live: live, volume: name, to: point, through: journal.lastAppendedSeq)
      appended = try journal.appendDurably(.rollback(planned.payload))
    } catch {
      try? journal.close()
      throw error
    }
    try journal.close()
    try live.ingest(volume: name)
    return RollbackReport(
      volume: name, seq: appended.seq, time: appended.time, targetSeq: planned.payload.targetSeq,
      targetTime: planned.targetTime, target: planned.target, extents: planned.payload.extents.count,
      bytes: planned.payload.coveredBytes, throughServer: false, disconnected: 0)
  }
}
