import Foundation
import GRDB
import ReelCore

/// A clone's link to the volume it was cloned from (catalog table `volume_origin`,
/// migration v6-clones): the clone reads its origin as of `originSeq` for every block it
/// has not written since. The link names volumes by id, so renames never break it.
package struct VolumeOrigin: Sendable, Equatable, Codable {
  package var volumeID: String
  package var originVolumeID: String
  package var originSeq: Seq
  package var created: Timestamp

  package init(volumeID: String, originVolumeID: String, originSeq: Seq, created: Timestamp) {
    self.volumeID = volumeID
    self.originVolumeID = originVolumeID
    self.originSeq = originSeq
    self.created = created
  }
}

/// Where a volume's block states come from: the volume itself, then (for a clone) its
/// origin as of the clone point, then the origin's origin, and so on. Every block-state
/// read in the store walks this through `Catalog.versionChain`.
package struct VolumeLineage: Sendable, Equatable {
  /// The volume first; each later level is read only at or before `through` of the
  /// level before it (the clone point), which is nil for the last level.
  package var levels: [(volumeID: String, originSeq: Seq?)]

  package init(volumeID: String) { levels = [(volumeID, nil)] }

  package var volumeID: String { levels[0].volumeID }
  /// The seq this volume's own history starts after (its clone point), or nil.
  package var originSeq: Seq? { levels[0].originSeq }

  package static func == (lhs: VolumeLineage, rhs: VolumeLineage) -> Bool {
    lhs.levels.map(\.volumeID) == rhs.levels.map(\.volumeID)
      && lhs.levels.map(\.originSeq) == rhs.levels.map(\.originSeq)
  }
}

extension Catalog {
  static func origin(_ db: Database, of volumeID: String) throws -> VolumeOrigin? {
    try Row.fetchOne(
      db,
      sql: "SELECT origin_volume_id, origin_seq, created_ns FROM volume_origin WHERE volume_id = ?",
      arguments: [volumeID]
    ).map {
      VolumeOrigin(
        volumeID: volumeID, originVolumeID: $0["origin_volume_id"], originSeq: Seq($0["origin_seq"] as Int64),
        created: Timestamp(nanoseconds: $0["created_ns"]))
    }
  }

  /// The clones made directly from `volumeID`, oldest clone point first.
  static func clones(_ db: Database, of volumeID: String) throws -> [VolumeOrigin] {
    try Row.fetchAll(
      db,
      sql: """
        SELECT volume_id, origin_seq, created_ns FROM volume_origin WHERE origin_volume_id = ?
        ORDER BY origin_seq, created_ns
        """,
      arguments: [volumeID]
    ).map {
      VolumeOrigin(
        volumeID: $0["volume_id"], originVolumeID: volumeID, originSeq: Seq($0["origin_seq"] as Int64),
        created: Timestamp(nanoseconds: $0["created_ns"]))
    }
  }

  static func lineage(_ db: Database, of volumeID: String) throws -> VolumeLineage {
    var lineage = VolumeLineage(volumeID: volumeID)
    var seen: Set<String> = [volumeID]
    var current = volumeID
    while let origin = try origin(db, of: current) {
      guard seen.insert(origin.originVolumeID).inserted else {
        throw ReelError(.corrupt, "the catalog's clone links of volume \(volumeID) form a loop")
      }
      lineage.levels[lineage.levels.count - 1].originSeq = origin.originSeq
      lineage.levels.append((origin.originVolumeID, nil))
      current = origin.originVolumeID
    }
    return lineage
  }
}

extension LiveStore {
  /// The volume's clone link, or nil for a volume that is not a clone.
  package func origin(of descriptor: VolumeDescriptor) throws -> VolumeOrigin? {
    try catalog.database.read { db in try Catalog.origin(db, of: descriptor.id.description) }
  }

  /// The clones made directly from the volume (only those whose volume folder exists:
  /// rows of a clone whose creation was cut short are left for `sweepAbandonedVolumes`).
  package func clones(of descriptor: VolumeDescriptor) throws -> [(clone: VolumeDescriptor, origin: VolumeOrigin)] {
    let links = try catalog.database.read { db in try Catalog.clones(db, of: descriptor.id.description) }
    guard !links.isEmpty else { return [] }
    let byID = store.volumesByID()
    return links.compactMap { link in byID[link.volumeID].map { ($0, link) } }
  }

  package func lineage(of descriptor: VolumeDescriptor) throws -> VolumeLineage {
    try catalog.database.read { db in try Catalog.lineage(db, of: descriptor.id.description) }
  }
}

extension Store {
  /// Every volume with a folder, by id. A volume exists when its folder holds its
  /// descriptor; catalog rows alone do not make one.
  package func volumesByID() -> [String: VolumeDescriptor] {
    var byID: [String: VolumeDescriptor] = [:]
    for name in layout.volumeNames() {
      if let descriptor = try? layout.descriptor(of: name) { byID[descriptor.id.description] = descriptor }
    }
    return byID
  }
}

extension LiveStore {
  /// The catalog half of making a clone, in one transaction: the volume's row, its
  /// ingest state (history ingested up to the clone point, nothing retained before it)
  /// and its link to the origin. Call with the store lock held, before the clone's folder
  /// is renamed into place (see VolumeRows.swift).
  package func commitClone(_ descriptor: VolumeDescriptor, origin: VolumeOrigin) throws {
    try catalog.database.write { db in
      try db.execute(
        sql: "INSERT INTO volume(id, name, size, block_size, created_ns) VALUES (?, ?, ?, ?, ?)",
        arguments: [
          descriptor.id.description, descriptor.name, Int64(descriptor.size), Int64(descriptor.blockSize),
          descriptor.created.nanoseconds,
        ])
      try db.execute(
        sql: """
          INSERT INTO ingest_state (volume_id, ingested_seq, base_ingested, retained_from_seq) VALUES (?, ?, 1, ?)
          """,
        arguments: [descriptor.id.description, Int64(origin.originSeq), Int64(origin.originSeq)])
      try db.execute(
        sql: "INSERT INTO volume_origin (volume_id, origin_volume_id, origin_seq, created_ns) VALUES (?, ?, ?, ?)",
        arguments: [
          descriptor.id.description, origin.originVolumeID, Int64(origin.originSeq), origin.created.nanoseconds,
        ])
      try Catalog.numberVolume(db, descriptor.id.description)
      try Catalog.markPending(db, volumeID: descriptor.id.description, operation: "clone")
    }
  }

  /// Ends the pending mark of a clone or delete whose folder step is done.
  package func finishPending(_ volumeID: String) throws {
    try catalog.database.write { db in try Catalog.clearPending(db, volumeID: volumeID) }
  }

  /// The catalog name of a volume id (the name it had when last registered or renamed).
  package func volumeName(ofID volumeID: String) throws -> String? {
    try catalog.database.read { db in
      try String.fetchOne(db, sql: "SELECT name FROM volume WHERE id = ?", arguments: [volumeID])
    }
  }
}
