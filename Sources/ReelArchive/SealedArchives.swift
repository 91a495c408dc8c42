import Foundation
import GRDB
import ReelCodec
import ReelCore
import ReelStore

/// A sealed archive as the store's catalog knows it (table `sealed_archive`): where it sits
/// in its volume's history, and the file that holds it.
@dynamicMemberLookup
package struct SealedArchiveRecord: Sendable, Equatable {
  package var span: ArchiveSpan
  package var volumeID: String
  package var fileName: String
  package var path: String
  package var size: UInt64
  package var sha256: String
  /// The CRC-32C of the file's bytes as read back from the disk at its seal; nil for
  /// archives imported or sealed before catalog schema 12. An export checks the bytes it
  /// sends against it: the file's SHA-256 costs as much CPU as the upload itself.
  package var crc32c: UInt32?
  package var created: Timestamp
  package var verified: Timestamp?

  package init(
    span: ArchiveSpan, volumeID: String, fileName: String, path: String, size: UInt64, sha256: String,
    crc32c: UInt32? = nil, created: Timestamp, verified: Timestamp?
  ) {
    self.span = span
    self.volumeID = volumeID
    self.fileName = fileName
    self.path = path
    self.size = size
    self.sha256 = sha256
    self.crc32c = crc32c
    self.created = created
    self.verified = verified
  }

  /// The record of an archive file that passed verification, as its manifest describes it;
  /// `fromTime` and `untilTime` are the times of the window's two seqs.
  package init(
    manifest: ArchiveManifest, fromTime: Timestamp, untilTime: Timestamp, fileName: String, path: String,
    size: UInt64, sha256: String, crc32c: UInt32? = nil, created: Timestamp = .now(), verified: Timestamp?
  ) {
    self.init(
      span: ArchiveSpan(
        id: manifest.archiveID, chainID: manifest.chainID, parentID: manifest.parentID,
        chainIndex: manifest.chainIndex, fromSeq: manifest.range.fromSeq, untilSeq: manifest.range.untilSeq,
        fromTime: fromTime, untilTime: untilTime),
      volumeID: manifest.volume.id, fileName: fileName, path: path, size: size, sha256: sha256, crc32c: crc32c,
      created: created, verified: verified)
  }

  init(row: Row) {
    self.init(
      span: ArchiveSpan(
        id: row["id"], chainID: row["chain_id"], parentID: row["parent_id"], chainIndex: row["chain_index"],
        fromSeq: Seq(row["from_seq"] as Int64), untilSeq: Seq(row["until_seq"] as Int64),
        fromTime: Timestamp(nanoseconds: row["from_time_ns"]), untilTime: Timestamp(nanoseconds: row["until_time_ns"])),
      volumeID: row["volume_id"], fileName: row["file_name"], path: row["path"], size: UInt64(row["size"] as Int64),
      sha256: row["sha256"], crc32c: (row["crc32c"] as Int64?).map { UInt32(truncatingIfNeeded: $0) },
      created: Timestamp(nanoseconds: row["created_ns"]),
      verified: (row["verified_ns"] as Int64?).map { Timestamp(nanoseconds: $0) })
  }

  package subscript<Value>(dynamicMember keyPath: KeyPath<ArchiveSpan, Value>) -> Value { span[keyPath: keyPath] }
}

/// The sealed archives of the store's volumes (migration `v3-seal`): one row per archive
/// this store sealed or imported, and per volume the seq through which a verified archive
/// holds its journal records.
extension LiveStore {
  /// The newest archive sealed for the volume, if any.
  package func lastSealedArchive(of descriptor: VolumeDescriptor) throws -> SealedArchiveRecord? {
    try store.catalog.database.read { db in
      try Row.fetchOne(
        db, sql: "SELECT * FROM sealed_archive WHERE volume_id = ? ORDER BY until_seq DESC LIMIT 1",
        arguments: [descriptor.id.description]
      ).map(SealedArchiveRecord.init(row:))
    }
  }

  package func sealedArchives(of descriptor: VolumeDescriptor) throws -> [SealedArchiveRecord] {
    try store.catalog.database.read { db in
      try Row.fetchAll(
        db, sql: "SELECT * FROM sealed_archive WHERE volume_id = ? ORDER BY until_seq",
        arguments: [descriptor.id.description]
      ).map(SealedArchiveRecord.init(row:))
    }
  }

  /// Journal records with seq ≤ this are held by a verified archive.
  package func sealedSeq(of descriptor: VolumeDescriptor) throws -> Seq {
    try store.catalog.database.read { db in
      Seq(
        try Int64.fetchOne(
          db, sql: "SELECT sealed_seq FROM seal_state WHERE volume_id = ?", arguments: [descriptor.id.description])
          ?? 0)
    }
  }

  /// Records a verified archive and moves the volume's sealed seq, in one transaction.
  package func recordSealed(_ archive: SealedArchiveRecord) throws {
    try store.catalog.database.write { db in
      try db.execute(
        sql: """
          INSERT OR REPLACE INTO sealed_archive (id, volume_id, chain_id, parent_id, chain_index, from_seq, until_seq,
            from_time_ns, until_time_ns, file_name, path, size, sha256, crc32c, created_ns, verified_ns)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
          """,
        arguments: [
          archive.id, archive.volumeID, archive.chainID, archive.parentID, archive.chainIndex,
          Int64(archive.fromSeq), Int64(archive.untilSeq), archive.fromTime.nanoseconds,
          archive.untilTime.nanoseconds, archive.fileName, archive.path, Int64(archive.size), archive.sha256,
          archive.crc32c.map { Int64($0) }, archive.created.nanoseconds, archive.verified?.nanoseconds,
        ])
      try db.execute(
        sql: """
          INSERT INTO seal_state (volume_id, sealed_seq, last_archive_id) VALUES (?, ?, ?)
          ON CONFLICT(volume_id) DO UPDATE SET sealed_seq = MAX(sealed_seq, excluded.sealed_seq),
            last_archive_id = excluded.last_archive_id
          """,
        arguments: [archive.volumeID, Int64(archive.untilSeq), archive.id])
    }
  }
}

extension Catalog {
  /// The SHA-256 recorded when archive `id` of `size` bytes was sealed (or imported) and,
  /// for archives sealed since catalog schema 12, the CRC-32C of its bytes as read back at
  /// the seal; nil when this store holds no record of it.
  package func sealedChecksums(id: String, size: UInt64) throws -> (sha256: SHA256Digest, crc32c: UInt32?)? {
    let row = try database.read { db in
      try Row.fetchOne(
        db, sql: "SELECT sha256, crc32c FROM sealed_archive WHERE id = ? AND size = ?", arguments: [id, Int64(size)])
    }
    guard let row, let sha256 = SHA256Digest(hex: row["sha256"]) else { return nil }
    return (sha256, (row["crc32c"] as Int64?).map { UInt32(truncatingIfNeeded: $0) })
  }

  /// Marks an archive as verified with the key again (its read-back at seal time was the first).
  package func markArchiveVerified(id: String, at time: Timestamp = .now()) throws {
    try database.write { db in
      try db.execute(
        sql: "UPDATE sealed_archive SET verified_ns = ? WHERE id = ?", arguments: [time.nanoseconds, id])
    }
  }
}

/// A volume's history as the catalog knows it: what points can be named, what is sealed.
package struct CatalogTimeline: Sendable {
  package var retainedFrom: Seq
  package var ingested: Seq
  package var records: Int
  package var firstTime: Timestamp?
  package var lastTime: Timestamp?
  package var bookmarks: [Bookmark]
  package var sealedSeq: Seq
  package var archives: [SealedArchiveRecord]
}

extension LiveStore {
  package func catalogTimeline(of descriptor: VolumeDescriptor) throws -> CatalogTimeline {
    let bounds = try historyBounds(of: descriptor)
    let records = try recordTimes(of: descriptor)
    return CatalogTimeline(
      retainedFrom: bounds.retainedFrom, ingested: bounds.ingested, records: records.count,
      firstTime: records.first, lastTime: records.last,
      bookmarks: try bookmarks(of: descriptor, after: 0, through: bounds.ingested),
      sealedSeq: try sealedSeq(of: descriptor), archives: try sealedArchives(of: descriptor))
  }
}
