import Foundation
import GRDB
import ReelCore
import ReelStore

/// One copy of a sealed archive on media, recorded only after it was read back from the
/// media and verified. The row carries the archive's identity and time range itself, so
/// `reel media needed` works for archives this store did not seal (or no longer knows).
package struct ArchiveCopy: Sendable, Equatable, Codable {
  package var archiveID: ArchiveID
  package var mediaSet: String
  package var mediaSetID: String
  package var cartridgeID: String
  package var cartridgeLabel: String
  /// The tape file number on the cartridge (for `dir:` media, the archive's ordinal).
  package var tapeFile: Int
  package var volumeName: String
  package var chainID: ArchiveID
  package var chainIndex: Int
  package var fromSeq: Seq
  package var untilSeq: Seq
  package var fromTime: Timestamp
  package var untilTime: Timestamp
  package var size: UInt64
  package var sha256: String
  package var verified: Timestamp
  /// The bookmarks inside the archive's range, so a bookmark names a point without the store.
  package var bookmarks: [Bookmark]

  package init(
    archiveID: ArchiveID, mediaSet: String, mediaSetID: String, cartridgeID: String, cartridgeLabel: String,
    tapeFile: Int, volumeName: String, chainID: ArchiveID, chainIndex: Int, fromSeq: Seq, untilSeq: Seq,
    fromTime: Timestamp, untilTime: Timestamp, size: UInt64, sha256: String, verified: Timestamp,
    bookmarks: [Bookmark] = []
  ) {
    self.archiveID = archiveID
    self.mediaSet = mediaSet
    self.mediaSetID = mediaSetID
    self.cartridgeID = cartridgeID
    self.cartridgeLabel = cartridgeLabel
    self.tapeFile = tapeFile
    self.volumeName = volumeName
    self.chainID = chainID
    self.chainIndex = chainIndex
    self.fromSeq = fromSeq
    self.untilSeq = untilSeq
    self.fromTime = fromTime
    self.untilTime = untilTime
    self.size = size
    self.sha256 = sha256
    self.verified = verified
    self.bookmarks = bookmarks
  }
}

/// What the store last saw of a labeled cartridge (or cold-storage folder): where it was,
/// which set it belongs to, and the catalog last written to it.
package struct CartridgeRecord: Sendable, Equatable, Codable {
  package var cartridgeID: String
  package var label: String
  package var mediaSet: String?
  package var mediaSetID: String?
  package var sequence: Int
  /// The media address it was last used at, e.g. `vtape:/srv/vtl/c1.vtape`.
  package var address: String
  /// True once end of media was reached: nothing more is appended.
  package var closed: Bool
  /// The on-media catalog (JSON) as last written, so a set can continue without the
  /// earlier cartridges loaded.
  package var catalogJSON: String?
  package var updated: Timestamp

  package init(
    cartridgeID: String, label: String, mediaSet: String?, mediaSetID: String?, sequence: Int, address: String,
    closed: Bool, catalogJSON: String?, updated: Timestamp
  ) {
    self.cartridgeID = cartridgeID
    self.label = label
    self.mediaSet = mediaSet
    self.mediaSetID = mediaSetID
    self.sequence = sequence
    self.address = address
    self.closed = closed
    self.catalogJSON = catalogJSON
    self.updated = updated
  }
}

/// Export state in the store catalog (migration `v4-media`): which archive is on which
/// cartridge, so the pipeline can require N verified copies before pruning.
extension Catalog {
  /// Records a verified copy; recording the same copy again updates its verified time.
  package func recordCopy(_ copy: ArchiveCopy) throws {
    try database.write { db in
      try db.execute(
        sql: """
          INSERT INTO archive_copy (archive_id, media_set, media_set_id, cartridge_id, cartridge_label, tape_file,
            volume_name, chain_id, chain_index, from_seq, until_seq, from_time_ns, until_time_ns, size, sha256,
            verified_ns, bookmarks)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
          ON CONFLICT (archive_id, cartridge_id, tape_file) DO UPDATE SET verified_ns = excluded.verified_ns
          """,
        arguments: [
          copy.archiveID, copy.mediaSet, copy.mediaSetID, copy.cartridgeID, copy.cartridgeLabel, copy.tapeFile,
          copy.volumeName, copy.chainID, copy.chainIndex, Int64(copy.fromSeq), Int64(copy.untilSeq),
          copy.fromTime.nanoseconds, copy.untilTime.nanoseconds, Int64(copy.size), copy.sha256,
          copy.verified.nanoseconds, String(decoding: try JSONEncoder().encode(copy.bookmarks), as: UTF8.self),
        ])
    }
  }

  /// Forgets one copy: it was deleted from its medium (`reel media expire`).
  package func forgetCopy(archiveID: String, cartridgeID: String, tapeFile: Int) throws {
    try database.write { db in
      try db.execute(
        sql: "DELETE FROM archive_copy WHERE archive_id = ? AND cartridge_id = ? AND tape_file = ?",
        arguments: [archiveID, cartridgeID, tapeFile])
    }
  }

  /// How many verified copies of the archive exist on media, across all media sets.
  package func verifiedCopyCount(archiveID: String) throws -> Int {
    try database.read { db in
      try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM archive_copy WHERE archive_id = ?", arguments: [archiveID])
        ?? 0
    }
  }

  /// Every verified copy, optionally only those of one archive or one media set.
  package func archiveCopies(archiveID: String? = nil, mediaSet: String? = nil) throws -> [ArchiveCopy] {
    try database.read { db in
      var conditions: [String] = []
      var arguments: [any DatabaseValueConvertible] = []
      if let archiveID {
        conditions.append("archive_id = ?")
        arguments.append(archiveID)
      }
      if let mediaSet {
        conditions.append("media_set = ?")
        arguments.append(mediaSet)
      }
      let filter = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
      return try Row.fetchAll(
        db, sql: "SELECT * FROM archive_copy \(filter) ORDER BY media_set, volume_name, chain_index, tape_file",
        arguments: StatementArguments(arguments)
      ).map(Self.copy(from:))
    }
  }

  package func recordCartridge(_ record: CartridgeRecord) throws {
    try database.write { db in
      try db.execute(
        sql: """
          INSERT INTO media_cartridge (id, label, media_set, media_set_id, sequence, address, closed, catalog_json,
            updated_ns)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
          ON CONFLICT (id) DO UPDATE SET label = excluded.label, media_set = excluded.media_set,
            media_set_id = excluded.media_set_id, sequence = excluded.sequence, address = excluded.address,
            closed = excluded.closed, catalog_json = COALESCE(excluded.catalog_json, catalog_json),
            updated_ns = excluded.updated_ns
          """,
        arguments: [
          record.cartridgeID, record.label, record.mediaSet, record.mediaSetID, record.sequence, record.address,
          record.closed, record.catalogJSON, record.updated.nanoseconds,
        ])
    }
  }

  /// Forgets a cartridge and its copies: it was relabeled, so what it held is gone.
  package func forgetCartridge(id: String) throws {
    try database.write { db in
      try db.execute(sql: "DELETE FROM archive_copy WHERE cartridge_id = ?", arguments: [id])
      try db.execute(sql: "DELETE FROM media_cartridge WHERE id = ?", arguments: [id])
    }
  }

  package func cartridges() throws -> [CartridgeRecord] {
    try database.read { db in
      try Row.fetchAll(db, sql: "SELECT * FROM media_cartridge ORDER BY media_set, sequence, label").map { row in
        CartridgeRecord(
          cartridgeID: row["id"], label: row["label"], mediaSet: row["media_set"], mediaSetID: row["media_set_id"],
          sequence: row["sequence"], address: row["address"], closed: row["closed"],
          catalogJSON: row["catalog_json"], updated: Timestamp(nanoseconds: row["updated_ns"]))
      }
    }
  }

  private static func copy(from row: Row) -> ArchiveCopy {
    ArchiveCopy(
      archiveID: row["archive_id"], mediaSet: row["media_set"], mediaSetID: row["media_set_id"],
      cartridgeID: row["cartridge_id"], cartridgeLabel: row["cartridge_label"], tapeFile: row["tape_file"],
      volumeName: row["volume_name"], chainID: row["chain_id"], chainIndex: row["chain_index"],
      fromSeq: UInt64(row["from_seq"] as Int64), untilSeq: UInt64(row["until_seq"] as Int64),
      fromTime: Timestamp(nanoseconds: row["from_time_ns"]), untilTime: Timestamp(nanoseconds: row["until_time_ns"]),
      size: UInt64(row["size"] as Int64), sha256: row["sha256"], verified: Timestamp(nanoseconds: row["verified_ns"]),
      bookmarks: (try? JSONDecoder().decode([Bookmark].self, from: Data((row["bookmarks"] as String).utf8)))
        ?? [])
  }
}
