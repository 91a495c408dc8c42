import Foundation
import ReelCore
import ReelIO
import ReelStore

/// The part of a volume's history that no verified archive with a verified copy on media
/// holds, as a sentence naming seqs and times ("seq 1…5000 (…)"), or nil when all of it is
/// held. ReelMedia answers it (from sealed archives and copies on media); the CLI passes it
/// in, so this module does not depend on the archive layers.
package typealias UnexportedHistory = @Sendable (VolumeDescriptor) throws -> String?

/// What `reel volume delete` did.
package struct DeleteReport: Sendable, Equatable {
  package var volume: String
  package var volumeID: String
  /// History deleted although it was never sealed and exported (with `--force`).
  package var lostHistory: String?
  package var chunksDeleted = 0
  package var bytesFreed: UInt64 = 0
}

extension Clones {
  /// Deletes a volume: its folder (journal, images) and its history in the store; chunks
  /// nothing else uses are swept. Refused while it is served, while clones read from it,
  /// and (unless `force`) while part of its history was never sealed and exported.
  /// Killed at any moment, the volume is either whole or gone (the pending mark in
  /// VolumeRows.swift, ReelStore).
  package static func delete(
    live: LiveStore, volume name: String, force: Bool, unexported: UnexportedHistory,
    safetyMargin: Duration = .seconds(3600)
  ) throws -> DeleteReport {
    let layout = live.store.layout
    let descriptor = try layout.descriptor(of: name)
    return try VolumeGuards.withVolumeIdle(layout, name, doing: "delete") {
      try VolumeGuards.refuseDependants(live, descriptor, doing: "delete")
      // Whatever the journal holds beyond the store is history too.
      try live.ingest(volume: name)
      let lost = try unexported(descriptor)
      if let lost, !force {
        throw ReelError(
          .usage, "volume \(name) has history that was never sealed and exported: \(lost)",
          remedy: "seal and export it first (`reel seal \(name)`, `reel export`), or delete with --force to lose it")
      }
      var report = DeleteReport(volume: name, volumeID: descriptor.id.description, lostHistory: lost)
      try live.withStoreLock {
        try live.sweepAbandonedVolumes()
        // Checked again under the store lock, which clone creation takes.
        try VolumeGuards.refuseDependants(live, descriptor, doing: "delete")
        let id = descriptor.id.description
        try live.store.catalog.database.write { db in try Catalog.markPending(db, volumeID: id, operation: "delete") }
        let away = layout.volumesDirectory + "/.\(name).deleting-\(getpid())"
        try Durable.rename(layout.volumeDirectory(name), to: away)
        // The volume is gone from here on; a crash now leaves rows the next sweep deletes.
        try live.store.catalog.database.write { db in
          try Catalog.deleteVolumeRows(db, volumeID: id)
          try Catalog.clearPending(db, volumeID: id)
        }
        try FileManager.default.removeItem(atPath: away)
        let swept = try live.sweepChunks(safetyMargin: safetyMargin, now: .now())
        report.chunksDeleted = swept.count
        report.bytesFreed = swept.bytes
      }
      return report
    }
  }
}
