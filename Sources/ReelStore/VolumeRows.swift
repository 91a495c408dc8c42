import Foundation
import GRDB
import ReelCore
import ReelIO

/// A volume exists when its folder holds its descriptor. Creating or removing one commits
/// catalog rows and moves its folder as two steps, so each marks the volume pending in
/// `store_info` (`pending_volume:<id>` = `clone` or `delete`) in the same transaction as
/// its first step: a clone commits its rows and the mark, then renames its folder into
/// place; a delete commits the mark, renames the folder away, then deletes the rows and
/// the mark. Killed in between, the next clone, delete or prune settles the mark under the
/// store lock: a pending volume with no folder never finished (clone) or did (delete), and
/// its rows go; one with a folder is whole (clone) or untouched (delete), and the mark goes.
extension LiveStore {
  /// Volumes marked pending by a clone or delete that did not finish, with the step.
  package func pendingVolumes() throws -> [(volumeID: String, operation: String)] {
    try catalog.database.read { db in
      try Row.fetchAll(db, sql: "SELECT key, value FROM store_info WHERE key LIKE 'pending_volume:%' ORDER BY key")
        .map { (String(($0["key"] as String).dropFirst("pending_volume:".count)), $0["value"] as String) }
    }
  }

  /// Settles the pending marks of interrupted clones and deletes (above) and removes the
  /// staging folders of those whose process is gone. Call with the store lock held.
  /// Chunks the deleted rows referenced are left to the chunk sweep.
  package func sweepAbandonedVolumes() throws {
    let pending = try pendingVolumes()
    if !pending.isEmpty {
      let present = Set(store.volumesByID().keys)
      try catalog.database.write { db in
        for (id, _) in pending {
          if !present.contains(id) { try Catalog.deleteVolumeRows(db, volumeID: id) }
          try Catalog.clearPending(db, volumeID: id)
        }
      }
    }
    // A rename killed after moving the folder leaves the catalog row with the old name.
    for (id, descriptor) in store.volumesByID() {
      try? catalog.database.write { db in
        try db.execute(
          sql: "UPDATE volume SET name = ? WHERE id = ? AND name != ?",
          arguments: [descriptor.name, id, descriptor.name])
      }
    }
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: store.layout.volumesDirectory)) ?? []
    for entry in entries where entry.hasPrefix(".") {
      guard let pid = Self.stagingOwner(entry), kill(pid, 0) != 0, errno == ESRCH else { continue }
      try? FileManager.default.removeItem(atPath: store.layout.volumesDirectory + "/" + entry)
    }
  }

  /// The process that made a staging folder `.<name>.<creating|deleting>-<pid>`.
  static func stagingOwner(_ entry: String) -> pid_t? {
    for marker in [".creating-", ".deleting-"] {
      if let range = entry.range(of: marker, options: .backwards), let pid = pid_t(entry[range.upperBound...]) {
        return pid
      }
    }
    return nil
  }
}

extension Catalog {
  package static func markPending(_ db: Database, volumeID: String, operation: String) throws {
    try db.execute(
      sql: "INSERT OR REPLACE INTO store_info (key, value) VALUES (?, ?)",
      arguments: ["pending_volume:" + volumeID, operation])
  }

  package static func clearPending(_ db: Database, volumeID: String) throws {
    try db.execute(sql: "DELETE FROM store_info WHERE key = ?", arguments: ["pending_volume:" + volumeID])
  }

  /// Every row that belongs to one volume: its history, its points, its clone link. Its
  /// clones' links to it are not touched (callers refuse to delete a volume with clones).
  package static func deleteVolumeRows(_ db: Database, volumeID: String) throws {
    for table in ["block_version", "record_time"] {
      try db.execute(sql: "DELETE FROM \(table) WHERE volume = \(volumeNumber)", arguments: [volumeID])
    }
    for table in ["bookmark", "ingest_state", "volume_origin", "volume_rollback", "volume_number"] {
      try db.execute(sql: "DELETE FROM \(table) WHERE volume_id = ?", arguments: [volumeID])
    }
    try db.execute(sql: "DELETE FROM volume WHERE id = ?", arguments: [volumeID])
  }
}

extension LiveStore {
  /// Gives the volume's catalog row its descriptor's (new) name.
  package func renameInCatalog(_ descriptor: VolumeDescriptor) throws {
    try catalog.database.write { db in
      try db.execute(
        sql: "UPDATE volume SET name = ? WHERE id = ?", arguments: [descriptor.name, descriptor.id.description])
    }
  }
}
