import Foundation
import ReelCore
import ReelIO
import ReelJournal
import ReelStore

/// What `reel clone` made.
package struct CloneReport: Sendable, Equatable, Encodable {
  package var volume: String
  package var volumeID: String
  package var origin: String
  package var originID: String
  /// The clone reads the origin as of this seq; its own history continues after it.
  package var originSeq: Seq
  /// The time of the origin's record `originSeq` (its creation for seq 0).
  package var originTime: Timestamp
  package var created: Timestamp
  /// Something the user should know about how the point was read (for standard error).
  package var warning: String?
}

/// Writable clones of any retained point (docs/clones.md).
package enum Clones {
  /// Makes volume `newName` read as `origin` at `point`, in time independent of the
  /// volume's size: nothing is copied. Its journal is one empty closed segment whose first
  /// seq follows the clone point, its catalog rows say it is ingested up to that point and
  /// reads through to the origin there. Killed at any moment, there is either no volume
  /// `newName` or a whole one (the pending mark in VolumeRows.swift, ReelStore).
  package static func create(
    live: LiveStore, origin originName: String, at point: Point, as newName: String, now: Timestamp = .now()
  ) throws -> CloneReport {
    let layout = live.store.layout
    try VolumeDescriptor.validate(name: newName)
    let origin = try layout.descriptor(of: originName)
    try refuseExisting(newName, layout: layout)
    // Points resolve against ingested history: catch up first, so `latest` is the newest write.
    try live.ingest(volume: originName)
    return try live.withStoreLock {
      try live.sweepAbandonedVolumes()
      try refuseExisting(newName, layout: layout)
      let resolved = try VolumeView(live: live, volume: originName, at: point).resolved
      let created = max(now, resolved.time)
      let clone = VolumeDescriptor(
        name: newName, size: origin.size, blockSize: origin.blockSize, created: created, hasBase: false,
        storeBlockSize: origin.storeBlockSize)
      let link = VolumeOrigin(
        volumeID: clone.id.description, originVolumeID: origin.id.description, originSeq: resolved.seq,
        created: created)
      let staging = layout.volumesDirectory + "/.\(newName).creating-\(getpid())"
      try? FileManager.default.removeItem(atPath: staging)
      do {
        try Durable.makeDirectory(staging)
        try JournalWriter.continueAfter(
          directory: staging + "/journal", volume: clone.id, seq: resolved.seq, time: created)
        try StoreLayout.writeDescriptor(clone, inFolder: staging)
        try Durable.syncDirectory(staging)
        try live.commitClone(clone, origin: link)
      } catch {
        try? FileManager.default.removeItem(atPath: staging)
        throw error
      }
      // The catalog rows are committed: from here the clone is finished by the rename, and
      // a crash before it leaves rows that the next sweep removes.
      try Durable.rename(staging, to: layout.volumeDirectory(newName))
      try live.finishPending(clone.id.description)
      return CloneReport(
        volume: newName, volumeID: clone.id.description, origin: origin.name, originID: origin.id.description,
        originSeq: resolved.seq, originTime: resolved.time, created: created, warning: resolved.warning)
    }
  }

  static func refuseExisting(_ name: String, layout: StoreLayout) throws {
    guard !FileManager.default.fileExists(atPath: layout.volumeDirectory(name)) else {
      throw ReelError(
        .alreadyExists, "a volume named \"\(name)\" already exists in \(layout.root)",
        remedy: "choose another name for the clone; `reel volume list` shows the existing ones")
    }
  }
}
