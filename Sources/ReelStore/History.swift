import Foundation
import GRDB
import ReelCodec
import ReelCore
import ReelJournal

/// One block version as it leaves the store for a sealed archive or enters it from one
/// (the public face of a `block_version` row; docs/store-format.md).
public struct HistoryVersion: Sendable, Equatable {
  public var block: UInt64
  public var seq: Seq
  public var full: Bool
  /// SHA-256 name of the chunk; nil means zeros.
  public var chunk: String?
  public var start: Int
  public var length: Int

  public init(block: UInt64, seq: Seq, full: Bool, chunk: String?, start: Int, length: Int) {
    self.block = block
    self.seq = seq
    self.full = full
    self.chunk = chunk
    self.start = start
    self.length = length
  }

  init(_ version: BlockVersion) {
    self.init(
      block: version.block, seq: version.seq, full: version.full, chunk: version.chunk, start: version.start,
      length: version.length)
  }

  var blockVersion: BlockVersion {
    BlockVersion(block: block, seq: seq, full: full, chunk: chunk, start: start, length: length)
  }
}

/// A journal record's place in time (its payload lives in the versions).
public struct HistoryRecord: Sendable, Equatable {
  public var seq: Seq
  public var time: Timestamp
  /// `JournalRecord.Kind` raw value.
  public var kind: UInt8

  public init(seq: Seq, time: Timestamp, kind: UInt8) {
    self.seq = seq
    self.time = time
    self.kind = kind
  }
}

public struct HistoryBookmark: Sendable, Equatable {
  public var seq: Seq
  public var label: String
  public var time: Timestamp

  public init(seq: Seq, label: String, time: Timestamp) {
    self.seq = seq
    self.label = label
    self.time = time
  }
}

/// A sealed archive as the store's catalog knows it (table `sealed_archive`).
public struct SealedArchiveRecord: Sendable, Equatable {
  public var id: String
  public var volumeID: String
  public var chainID: String
  public var parentID: String?
  public var chainIndex: Int
  public var fromSeq: Seq
  public var untilSeq: Seq
  public var fromTime: Timestamp
  public var untilTime: Timestamp
  public var fileName: String
  public var path: String
  public var size: UInt64
  public var sha256: String
  public var created: Timestamp
  public var verified: Timestamp?

  public init(
    id: String, volumeID: String, chainID: String, parentID: String?, chainIndex: Int, fromSeq: Seq, untilSeq: Seq,
    fromTime: Timestamp, untilTime: Timestamp, fileName: String, path: String, size: UInt64, sha256: String,
    created: Timestamp, verified: Timestamp?
  ) {
    self.id = id
    self.volumeID = volumeID
    self.chainID = chainID
    self.parentID = parentID
    self.chainIndex = chainIndex
    self.fromSeq = fromSeq
    self.untilSeq = untilSeq
    self.fromTime = fromTime
    self.untilTime = untilTime
    self.fileName = fileName
    self.path = path
    self.size = size
    self.sha256 = sha256
    self.created = created
    self.verified = verified
  }

  init(row: Row) {
    self.init(
      id: row["id"], volumeID: row["volume_id"], chainID: row["chain_id"], parentID: row["parent_id"],
      chainIndex: row["chain_index"], fromSeq: Seq(row["from_seq"] as Int64), untilSeq: Seq(row["until_seq"] as Int64),
      fromTime: Timestamp(nanoseconds: row["from_time_ns"]), untilTime: Timestamp(nanoseconds: row["until_time_ns"]),
      fileName: row["file_name"], path: row["path"], size: UInt64(row["size"] as Int64), sha256: row["sha256"],
      created: Timestamp(nanoseconds: row["created_ns"]),
      verified: (row["verified_ns"] as Int64?).map { Timestamp(nanoseconds: $0) })
  }
}

/// Where a volume's retained, ingested history begins and ends.
public struct HistoryBounds: Sendable, Equatable {
  public var retainedFrom: Seq
  public var ingested: Seq
}

extension LiveStore {
  public func historyBounds(of descriptor: VolumeDescriptor) throws -> HistoryBounds {
    try catalog.database.read { db in
      let row = try Row.fetchOne(
        db, sql: "SELECT ingested_seq, retained_from_seq FROM ingest_state WHERE volume_id = ?",
        arguments: [descriptor.id.description])
      return HistoryBounds(
        retainedFrom: Seq(row?["retained_from_seq"] as Int64? ?? 0), ingested: Seq(row?["ingested_seq"] as Int64? ?? 0))
    }
  }

  /// The newest flush or bookmark record in `after <.. through`: the last point a client
  /// asked to be durable, so a window cut there is crash-consistent.
  public func lastBarrier(of descriptor: VolumeDescriptor, after: Seq, through: Seq) throws -> Seq? {
    try catalog.database.read { db in
      try Int64.fetchOne(
        db,
        sql: """
          SELECT MAX(seq) FROM record_time WHERE volume_id = ? AND seq > ? AND seq <= ? AND kind IN (?, ?)
          """,
        arguments: [
          descriptor.id.description, Int64(after), Int64(through), Int64(JournalRecord.Kind.flush.rawValue),
          Int64(JournalRecord.Kind.bookmark.rawValue),
        ]
      ).map { Seq($0) }
    }
  }

  /// The time of record `seq` (the volume's creation for seq 0).
  public func time(of seq: Seq, in descriptor: VolumeDescriptor) throws -> Timestamp {
    guard seq > 0 else { return descriptor.created }
    return try catalog.database.read { db in
      guard
        let nanoseconds = try Int64.fetchOne(
          db, sql: "SELECT time_ns FROM record_time WHERE volume_id = ? AND seq = ?",
          arguments: [descriptor.id.description, Int64(seq)])
      else {
        throw ReelError(.notFound, "volume \(descriptor.name) has no record with seq \(seq) in the store")
      }
      return Timestamp(nanoseconds: nanoseconds)
    }
  }

  /// The versions that rebuild every block as of `seq`: per block, the newest full
  /// version at or before it and the partial ones after, oldest first.
  public func stateVersions(of descriptor: VolumeDescriptor, at seq: Seq) throws -> [HistoryVersion] {
    try catalog.database.read { db in
      let cursor = try Row.fetchCursor(
        db,
        sql: """
          SELECT block, seq, full, chunk, start, length FROM block_version
          WHERE volume_id = ? AND seq <= ? ORDER BY block, seq DESC
          """,
        arguments: [descriptor.id.description, Int64(seq)])
      var result: [HistoryVersion] = []
      var chain: [HistoryVersion] = []
      var currentBlock: UInt64? = nil
      var complete = false
      func flush() {
        result += chain.reversed()
        chain.removeAll()
      }
      while let row = try cursor.next() {
        let version = HistoryVersion(
          block: UInt64(row["block"] as Int64), seq: Seq(row["seq"] as Int64), full: row["full"] as Int64 != 0,
          chunk: row["chunk"], start: Int(row["start"] as Int64), length: Int(row["length"] as Int64))
        if version.block != currentBlock {
          flush()
          currentBlock = version.block
          complete = false
        }
        guard !complete else { continue }
        chain.append(version)
        complete = version.full
      }
      flush()
      return result
    }
  }

  /// Calls `body` with the versions written by records `after <.. through`, in seq order,
  /// a page at a time so a long window never sits in memory whole.
  public func versions(
    of descriptor: VolumeDescriptor, after: Seq, through: Seq, pageSize: Int = 20_000,
    _ body: ([HistoryVersion]) throws -> Void
  ) throws {
    var position = (seq: Int64(after), block: Int64.max)
    while true {
      let page = try catalog.database.read { db in
        try Row.fetchAll(
          db,
          sql: """
            SELECT block, seq, full, chunk, start, length FROM block_version
            WHERE volume_id = ? AND seq <= ? AND (seq > ? OR (seq = ? AND block > ?))
            ORDER BY seq, block LIMIT ?
            """,
          arguments: [
            descriptor.id.description, Int64(through), position.seq, position.seq,
            position.block, pageSize,
          ]
        ).map {
          HistoryVersion(
            block: UInt64($0["block"] as Int64), seq: Seq($0["seq"] as Int64), full: $0["full"] as Int64 != 0,
            chunk: $0["chunk"], start: Int($0["start"] as Int64), length: Int($0["length"] as Int64))
        }
      }
      guard let last = page.last else { return }
      try body(page)
      position = (Int64(last.seq), Int64(last.block))
    }
  }

  public func records(of descriptor: VolumeDescriptor, after: Seq, through: Seq) throws -> [HistoryRecord] {
    try catalog.database.read { db in
      try Row.fetchAll(
        db,
        sql: "SELECT seq, time_ns, kind FROM record_time WHERE volume_id = ? AND seq > ? AND seq <= ? ORDER BY seq",
        arguments: [descriptor.id.description, Int64(after), Int64(through)]
      ).map {
        HistoryRecord(
          seq: Seq($0["seq"] as Int64), time: Timestamp(nanoseconds: $0["time_ns"]), kind: UInt8($0["kind"] as Int64))
      }
    }
  }

  /// Bookmarks in `after <.. through`; with `after` = nil also every older kept one.
  public func bookmarks(of descriptor: VolumeDescriptor, after: Seq, through: Seq) throws -> [HistoryBookmark] {
    try catalog.database.read { db in
      try Row.fetchAll(
        db,
        sql: "SELECT seq, label, time_ns FROM bookmark WHERE volume_id = ? AND seq > ? AND seq <= ? ORDER BY seq",
        arguments: [descriptor.id.description, Int64(after), Int64(through)]
      ).map {
        HistoryBookmark(seq: Seq($0["seq"] as Int64), label: $0["label"], time: Timestamp(nanoseconds: $0["time_ns"]))
      }
    }
  }

  /// The stored records of `keys` (format of docs/store-format.md, still compressed), each
  /// checked against its checksum and name; read in few large sorted reads.
  public func chunkRecords(_ keys: [String]) throws -> [String: [UInt8]] {
    let locations = try catalog.database.read { db in try Catalog.chunkLocations(db, keys) }
    if let missing = keys.first(where: { locations[$0] == nil }) {
      throw ReelError(
        .corrupt, "chunk \(missing) is referenced by the volume's history but has no catalog row",
        remedy: "run `reel store check` to see what it affects")
    }
    var records: [String: [UInt8]] = [:]
    for span in Self.readSpans(locations) {
      let first = span[0].1
      let last = span[span.count - 1].1
      let bytes: [UInt8]
      do {
        bytes = try backend.read(
          first.pack, offset: first.offset, length: Int(last.offset - first.offset) + last.length)
      } catch let error as ReelError where error.kind == .notFound {
        throw ReelError(
          .corrupt, "pack \(first.pack) is missing", remedy: "run `reel store check` to see what it affects")
      }
      for (key, location) in span {
        let from = Int(location.offset - first.offset)
        guard from + location.length <= bytes.count else {
          throw ReelError(.corrupt, "chunk \(key): pack \(location.pack) is shorter than the catalog says")
        }
        let record = Array(bytes[from..<(from + location.length)])
        try ChunkCodec.check(record, key: key)
        records[key] = record
      }
    }
    return records
  }

  /// The newest archive sealed for the volume, if any.
  public func lastSealedArchive(of descriptor: VolumeDescriptor) throws -> SealedArchiveRecord? {
    try catalog.database.read { db in
      try Row.fetchOne(
        db, sql: "SELECT * FROM sealed_archive WHERE volume_id = ? ORDER BY until_seq DESC LIMIT 1",
        arguments: [descriptor.id.description]
      ).map(SealedArchiveRecord.init(row:))
    }
  }

  public func sealedArchives(of descriptor: VolumeDescriptor) throws -> [SealedArchiveRecord] {
    try catalog.database.read { db in
      try Row.fetchAll(
        db, sql: "SELECT * FROM sealed_archive WHERE volume_id = ? ORDER BY until_seq",
        arguments: [descriptor.id.description]
      ).map(SealedArchiveRecord.init(row:))
    }
  }

  /// Journal records with seq ≤ this are held by a verified archive.
  public func sealedSeq(of descriptor: VolumeDescriptor) throws -> Seq {
    try catalog.database.read { db in
      Seq(
        try Int64.fetchOne(
          db, sql: "SELECT sealed_seq FROM seal_state WHERE volume_id = ?", arguments: [descriptor.id.description])
          ?? 0)
    }
  }

  /// Records a verified archive and moves the volume's sealed seq, in one transaction.
  public func recordSealed(_ archive: SealedArchiveRecord) throws {
    try catalog.database.write { db in
      try db.execute(
        sql: """
          INSERT OR REPLACE INTO sealed_archive (id, volume_id, chain_id, parent_id, chain_index, from_seq, until_seq,
            from_time_ns, until_time_ns, file_name, path, size, sha256, created_ns, verified_ns)
          VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
          """,
        arguments: [
          archive.id, archive.volumeID, archive.chainID, archive.parentID, archive.chainIndex,
          Int64(archive.fromSeq), Int64(archive.untilSeq), archive.fromTime.nanoseconds,
          archive.untilTime.nanoseconds, archive.fileName, archive.path, Int64(archive.size), archive.sha256,
          archive.created.nanoseconds, archive.verified?.nanoseconds,
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

/// A volume's history as the catalog knows it: what points can be named, what is sealed.
public struct CatalogTimeline: Sendable {
  public var retainedFrom: Seq
  public var ingested: Seq
  public var records: Int
  public var firstTime: Timestamp?
  public var lastTime: Timestamp?
  public var bookmarks: [HistoryBookmark]
  public var sealedSeq: Seq
  public var archives: [SealedArchiveRecord]
}

extension LiveStore {
  public func catalogTimeline(of descriptor: VolumeDescriptor) throws -> CatalogTimeline {
    let bounds = try historyBounds(of: descriptor)
    let volumeID = descriptor.id.description
    let (records, first, last) = try catalog.database.read { db in
      let row = try Row.fetchOne(
        db,
        sql: "SELECT COUNT(*) AS n, MIN(time_ns) AS first, MAX(time_ns) AS last FROM record_time WHERE volume_id = ?",
        arguments: [volumeID])
      return (
        row?["n"] as Int? ?? 0, (row?["first"] as Int64?).map { Timestamp(nanoseconds: $0) },
        (row?["last"] as Int64?).map { Timestamp(nanoseconds: $0) }
      )
    }
    return CatalogTimeline(
      retainedFrom: bounds.retainedFrom, ingested: bounds.ingested, records: records, firstTime: first, lastTime: last,
      bookmarks: try bookmarks(of: descriptor, after: 0, through: bounds.ingested),
      sealedSeq: try sealedSeq(of: descriptor), archives: try sealedArchives(of: descriptor))
  }
}
