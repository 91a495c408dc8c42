import Foundation
import GRDB
import ReelCore
import ReelIO

/// A volume exists when its folder holds its descriptor. Operations that create or remove
/// a volume commit their catalog rows and move its folder as two steps: a clone commits
/// its rows, then renames its folder into place; a delete renames the folder away, then
/// deletes its rows. Killed between the two, the catalog holds rows of a volume with no
/// folder: the operation did not happen (clone) or did (delete), and the rows are swept
/// by the next clone, delete or prune, under the store lock.
extension LiveStore {
  /// Ids of volumes with catalog rows but no folder. Empty when any volume's descriptor
  /// cannot be read: its id is unknown, and its history must never be taken for leftovers.
  package func abandonedVolumeIDs() throws -> [String] {
    var present: Set<String> = []
    for name in store.layout.volumeNames() {
      guard let descriptor = try? store.layout.descriptor(of: name) else { return [] }
      present.insert(descriptor.id.description)
    }
    let known = try catalog.database.read { db in
      try String.fetchSet(
        db,
        sql: """
          SELECT id FROM volume UNION SELECT volume_id FROM volume_origin
          UNION SELECT volume_id FROM ingest_state
          """)
    }
    return known.subtracting(present).sorted()
  }

  /// Deletes the rows of abandoned volumes and the staging folders of clones and deletes
  /// whose process is gone. Call with the store lock held. Chunks the rows referenced are
  /// left to the chunk sweep.
  package func sweepAbandonedVolumes() throws {
    let abandoned = try abandonedVolumeIDs()
    if !abandoned.isEmpty {
      try catalog.database.write { db in
        for id in abandoned { try Catalog.deleteVolumeRows(db, volumeID: id) }
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
  /// Every row that belongs to one volume: its history, its points, its clone link. Its
  /// clones' links to it are not touched (callers refuse to delete a volume with clones).
  package static func deleteVolumeRows(_ db: Database, volumeID: String) throws {
    for table in ["block_version", "record_time", "bookmark", "ingest_state", "volume_origin", "volume_rollback"] {
      try db.execute(sql: "DELETE FROM \(table) WHERE volume_id = ?", arguments: [volumeID])
    }
    try db.execute(sql: "DELETE FROM volume WHERE id = ?", arguments: [volumeID])
  }
}
