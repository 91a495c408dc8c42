import Foundation
import GRDB
import ReelCodec
import ReelCore
import ReelJournal

/// One block version as it leaves the store for a sealed archive or enters it from one
/// (the public face of a `block_version` row; docs/store-format.md).
package struct HistoryVersion: Sendable, Equatable {
  package var block: UInt64
  package var seq: Seq
  package var full: Bool
  /// SHA-256 name of the chunk; nil means zeros.
  package var chunk: String?
  package var start: Int
  package var length: Int
  /// Read from the live store: the chunk's catalog row. With `chunk` nil it is an unnamed
  /// chunk (docs/store-format.md), not zeros: `unnamedChunkRecords` gives its record and
  /// name. Where the chunk sits in one store, so not part of what the version is (==).
  package var chunkRow: Int64? = nil

  /// No chunk: the range reads as zeros.
  package var isZeros: Bool { chunk == nil && chunkRow == nil }

  package init(block: UInt64, seq: Seq, full: Bool, chunk: String?, start: Int, length: Int) {
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
    chunkRow = version.chunkRow
  }

  var blockVersion: BlockVersion {
    BlockVersion(block: block, seq: seq, full: full, chunk: chunk, start: start, length: length, chunkRow: chunkRow)
  }

  package static func == (left: HistoryVersion, right: HistoryVersion) -> Bool {
    (left.block, left.seq, left.full, left.chunk, left.start, left.length)
      == (right.block, right.seq, right.full, right.chunk, right.start, right.length)
  }
}

/// A journal record's place in time (its payload lives in the versions).
package struct HistoryRecord: Sendable, Equatable {
  package var seq: Seq
  package var time: Timestamp
  /// `JournalRecord.Kind` raw value.
  package var kind: UInt8

  package init(seq: Seq, time: Timestamp, kind: UInt8) {
    self.seq = seq
    self.time = time
    self.kind = kind
  }
}

/// Where a volume's retained, ingested history begins and ends.
package struct HistoryBounds: Sendable, Equatable {
  package var retainedFrom: Seq
  package var ingested: Seq
}

extension LiveStore {
  package func historyBounds(of descriptor: VolumeDescriptor) throws -> HistoryBounds {
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
  package func lastBarrier(of descriptor: VolumeDescriptor, after: Seq, through: Seq) throws -> Seq? {
    try catalog.database.read { db in
      try Int64.fetchOne(
        db,
        sql: """
          SELECT MAX(seq) FROM record_time WHERE volume = \(Catalog.volumeNumber) AND seq > ? AND seq <= ? AND kind IN (?, ?)
          """,
        arguments: [
          descriptor.id.description, Int64(after), Int64(through), Int64(JournalRecord.Kind.flush.rawValue),
          Int64(JournalRecord.Kind.bookmark.rawValue),
        ]
      ).map { Seq($0) }
    }
  }

  /// How many records of the volume the catalog holds, and the times of the oldest and newest.
  package func recordTimes(of descriptor: VolumeDescriptor) throws -> (count: Int, first: Timestamp?, last: Timestamp?)
  {
    try catalog.database.read { db in
      let row = try Row.fetchOne(
        db,
        sql: """
          SELECT COUNT(*) AS n,
            (SELECT time_ns FROM record_time WHERE volume = \(Catalog.volumeNumber) ORDER BY seq LIMIT 1) AS first,
            (SELECT time_ns FROM record_time WHERE volume = \(Catalog.volumeNumber) ORDER BY seq DESC LIMIT 1) AS last
          FROM record_time WHERE volume = \(Catalog.volumeNumber)
          """,
        arguments: [descriptor.id.description, descriptor.id.description, descriptor.id.description])
      return (
        row?["n"] as Int? ?? 0, (row?["first"] as Int64?).map { Timestamp(nanoseconds: $0) },
        (row?["last"] as Int64?).map { Timestamp(nanoseconds: $0) }
      )
    }
  }

  /// The time of record `seq` (the volume's creation for seq 0).
  package func time(of seq: Seq, in descriptor: VolumeDescriptor) throws -> Timestamp {
    guard seq > 0 else { return descriptor.created }
    return try catalog.database.read { db in
      guard
        let nanoseconds = try Int64.fetchOne(
          db, sql: "SELECT time_ns FROM record_time WHERE volume = \(Catalog.volumeNumber) AND seq = ?",
          arguments: [descriptor.id.description, Int64(seq)])
      else {
        // A clone's first point is its clone point, at the clone's creation.
        if try Catalog.origin(db, of: descriptor.id.description)?.originSeq == seq { return descriptor.created }
        throw ReelError(.notFound, "volume \(descriptor.name) has no record with seq \(seq) in the store")
      }
      return Timestamp(nanoseconds: nanoseconds)
    }
  }

  /// The versions that rebuild every block as of `seq`: per block, the newest full
  /// version at or before it and the partial ones after, oldest first.
  package func stateVersions(of descriptor: VolumeDescriptor, at seq: Seq) throws -> [HistoryVersion] {
    try catalog.database.read { db in
      let cursor = try Row.fetchCursor(
        db,
        sql: """
          SELECT v.block, v.seq, v.full, nullif(lower(hex(c.digest)), '') AS chunk, v.chunk_id, v.start, v.length
          FROM block_version v LEFT JOIN chunk c ON c.id = v.chunk_id
          WHERE v.volume = \(Catalog.volumeNumber) AND v.seq <= ? ORDER BY v.block, v.seq DESC
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
        let version = Self.historyVersion(row)
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
  package func versions(
    of descriptor: VolumeDescriptor, after: Seq, through: Seq, pageSize: Int = 20_000,
    _ body: ([HistoryVersion]) throws -> Void
  ) throws {
    var position = (seq: Int64(after), block: Int64.max)
    while true {
      let page = try catalog.database.read { db in
        try Row.fetchAll(
          db,
          sql: """
            SELECT v.block, v.seq, v.full, nullif(lower(hex(c.digest)), '') AS chunk, v.chunk_id, v.start, v.length
            FROM block_version v LEFT JOIN chunk c ON c.id = v.chunk_id
            WHERE v.volume = \(Catalog.volumeNumber) AND v.seq <= ? AND (v.seq > ? OR (v.seq = ? AND v.block > ?))
            ORDER BY v.seq, v.block LIMIT ?
            """,
          arguments: [
            descriptor.id.description, Int64(through), position.seq, position.seq,
            position.block, pageSize,
          ]
        ).map(Self.historyVersion)
      }
      guard let last = page.last else { return }
      try body(page)
      position = (Int64(last.seq), Int64(last.block))
    }
  }

  package func records(of descriptor: VolumeDescriptor, after: Seq, through: Seq) throws -> [HistoryRecord] {
    try catalog.database.read { db in
      try Row.fetchAll(
        db,
        sql:
          "SELECT seq, time_ns, kind FROM record_time WHERE volume = \(Catalog.volumeNumber) AND seq > ? AND seq <= ? ORDER BY seq",
        arguments: [descriptor.id.description, Int64(after), Int64(through)]
      ).map {
        HistoryRecord(
          seq: Seq($0["seq"] as Int64), time: Timestamp(nanoseconds: $0["time_ns"]), kind: UInt8($0["kind"] as Int64))
      }
    }
  }

  /// Bookmarks in `after <.. through`; with `after` = nil also every older kept one.
  package func bookmarks(of descriptor: VolumeDescriptor, after: Seq, through: Seq) throws -> [Bookmark] {
    try catalog.database.read { db in
      try Row.fetchAll(
        db,
        sql: "SELECT seq, label, time_ns FROM bookmark WHERE volume_id = ? AND seq > ? AND seq <= ? ORDER BY seq",
        arguments: [descriptor.id.description, Int64(after), Int64(through)]
      ).map {
        Bookmark(seq: Seq($0["seq"] as Int64), label: $0["label"], time: Timestamp(nanoseconds: $0["time_ns"]))
      }
    }
  }

  private static func historyVersion(_ row: Row) -> HistoryVersion {
    var version = HistoryVersion(
      block: UInt64(row["block"] as Int64), seq: Seq(row["seq"] as Int64), full: row["full"] as Int64 != 0,
      chunk: row["chunk"], start: Int(row["start"] as Int64), length: Int(row["length"] as Int64))
    version.chunkRow = row["chunk_id"]
    return version
  }

  /// The stored records of `keys` (format of docs/store-format.md, still compressed), each
  /// checked against its checksum and name; read in few large sorted reads.
  package func chunkRecords(_ keys: [String]) throws -> [String: [UInt8]] {
    let locations = try catalog.database.read { db in try Catalog.chunkLocations(db, keys) }
    if let missing = keys.first(where: { locations[$0] == nil }) {
      throw Self.noStoredRecord(.named(missing))
    }
    return try readRecords(locations, checkedAs: ChunkKey.named)
  }

  /// The stored records of unnamed chunks (`HistoryVersion.chunkRow` with no `chunk`), by
  /// row, each with the name its record claims, checked against the record's checksum.
  package func unnamedChunkRecords(_ rows: [Int64]) throws -> [Int64: (key: String, record: [UInt8])] {
    let locations = try catalog.database.read { db in try Catalog.chunkLocations(db, rows: rows) }
    if let missing = rows.first(where: { locations[$0] == nil }) {
      throw Self.noStoredRecord(.unnamed(row: missing))
    }
    return try readRecords(locations) { .unnamed(row: $0) }.compactMapValues { record in
      record.withUnsafeBytes { ChunkRecordFormat.claimedKey($0) }.map { (key: $0, record: record) }
    }
  }

  private static func noStoredRecord(_ key: ChunkKey) -> ReelError {
    ReelError(
      .corrupt, "chunk \(key) is referenced by the volume's history but has no stored record",
      remedy: "run `reel store check` to see what it affects")
  }

  /// A delta record (docs/store-format.md) re-encoded whole, for records that leave the
  /// store: an archive must read on its own, and the base may be in none of its windows.
  private func wholeRecord(ofDelta record: [UInt8], key: ChunkKey, base: String, codec: ChunkCodec) throws -> [UInt8] {
    let plaintext = try withBasePlaintext(named: base, of: key, depth: 1) { base in
      try record.withUnsafeBytes { try ChunkCodec.decode($0, key: key, verify: false, base: base) }
    }
    let hash = SHA256Digest.hash(plaintext)
    guard record.withUnsafeBytes({ hash.bytes.elementsEqual(ChunkRecordHeader.claimedHash($0)) }) else {
      throw ReelError(
        .corrupt, "chunk \(key): content does not match its SHA-256 name",
        remedy: "run `reel store check --read-data` to see what it affects")
    }
    return codec.encode(plaintext, hash: hash)
  }

  /// Records read in few large sorted reads, each checked against its checksum and the
  /// key `checkedAs` gives; delta records are handed out whole.
  private func readRecords<Key: Hashable>(
    _ locations: [Key: ChunkLocation], checkedAs chunkKey: (Key) -> ChunkKey
  ) throws -> [Key: [UInt8]] {
    var records: [Key: [UInt8]] = [:]
    var codec: ChunkCodec?
    // A record in a compression group leaves as the raw record it is there.
    for (key, location) in locations where location.recordOffset != nil {
      let record = try storedRecord(chunkKey(key), at: location)
      try ChunkCodec.check(record, key: chunkKey(key))
      records[key] = record
    }
    for span in Self.readSpans(locations.filter { $0.value.recordOffset == nil }) {
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
          throw ReelError(.corrupt, "chunk \(chunkKey(key)): pack \(location.pack) is shorter than the catalog says")
        }
        var record = Array(bytes[from..<(from + location.length)])
        try ChunkCodec.check(record, key: chunkKey(key))
        if let base = try record.withUnsafeBytes({ try ChunkCodec.deltaBase($0, key: chunkKey(key)) }) {
          codec = codec ?? ChunkCodec()
          record = try wholeRecord(ofDelta: record, key: chunkKey(key), base: base, codec: codec!)
        }
        records[key] = record
      }
    }
    return records
  }
}
