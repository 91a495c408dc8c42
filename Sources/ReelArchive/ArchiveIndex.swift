import Foundation
import GRDB
import ReelCore
import ReelIO
import ReelStore

/// Where one chunk record sits in an archive: which pack member, which frame (its byte
/// offset and total length in the member), and the record's place in the frame's plaintext.
struct ArchiveChunkLocation: Equatable, Sendable {
  package var member: Int
  var frameOffset: UInt64
  package var frameLength: Int
  var recordOffset: Int
  package var recordLength: Int
  /// Plaintext bytes of the chunk.
  package var size: Int
}

/// The embedded index of a sealed archive: an SQLite database (schema version 1, or 2 in
/// archives of format version 3; docs/archive-format.md) stored encrypted as member
/// `index.sqlite.enc`. It answers "(block range, seq) → (member, offset, length)" without
/// reading the packs.
final class ArchiveIndex {
  package static let schemaVersion = 2
  /// Schema 2 adds the `rollback` table and the `origin_*` info keys (archives of format 3).
  static let lineageSchema = 2
  let database: DatabaseQueue
  package let path: String
  /// The schema it was written with.
  package private(set) var schema = 1

  /// The schema an archive of `formatVersion` carries.
  static func schema(forFormat formatVersion: Int) -> Int {
    formatVersion >= ArchiveManifest.lineageVersion ? lineageSchema : 1
  }

  /// Creates an empty index at `path` for writing.
  static func create(at path: String, schema: Int = 1) throws -> ArchiveIndex {
    try Durable.createOwnerOnlyIfMissing(path)
    let index = try ArchiveIndex(path: path, readOnly: false)
    try index.database.write { db in
      try db.execute(
        sql: """
          CREATE TABLE info (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) WITHOUT ROWID;
          CREATE TABLE chunk (
            hash TEXT PRIMARY KEY NOT NULL,
            member INTEGER NOT NULL,
            frame_offset INTEGER NOT NULL,
            frame_length INTEGER NOT NULL,
            record_offset INTEGER NOT NULL,
            record_length INTEGER NOT NULL,
            size INTEGER NOT NULL
          ) WITHOUT ROWID;
          CREATE TABLE block_version (
            block INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            full INTEGER NOT NULL,
            chunk TEXT,
            start INTEGER NOT NULL,
            length INTEGER NOT NULL,
            base INTEGER NOT NULL,
            PRIMARY KEY (block, seq)
          ) WITHOUT ROWID;
          CREATE TABLE record (seq INTEGER PRIMARY KEY NOT NULL, time_ns INTEGER NOT NULL, kind INTEGER NOT NULL);
          CREATE TABLE bookmark (seq INTEGER PRIMARY KEY NOT NULL, label TEXT NOT NULL, time_ns INTEGER NOT NULL);
          """)
      if schema >= Self.lineageSchema {
        try db.execute(
          sql: """
            CREATE TABLE rollback (seq INTEGER PRIMARY KEY NOT NULL, target_seq INTEGER NOT NULL, time_ns INTEGER NOT NULL);
            """)
      }
      try db.execute(sql: "INSERT INTO info (key, value) VALUES ('schema', ?)", arguments: [String(schema)])
    }
    index.schema = schema
    return index
  }

  /// Opens an index that was decrypted to `path`.
  static func open(at path: String, archive: String) throws -> ArchiveIndex {
    do {
      let index = try ArchiveIndex(path: path, readOnly: true)
      let schema = try index.info()["schema"]
      guard let number = schema.flatMap({ Int($0) }), (1...schemaVersion).contains(number) else {
        throw ReelError(
          .incompatible,
          "\(archive): the index has schema \(schema ?? "none"), this Reel reads 1 to \(schemaVersion)",
          remedy: "use a newer Reel")
      }
      index.schema = number
      return index
    } catch let error as DatabaseError {
      throw ReelError(.corrupt, "\(archive): the decrypted index is not a readable database: \(error.message ?? "")")
    }
  }

  private init(path: String, readOnly: Bool) throws {
    self.path = path
    var configuration = Configuration()
    configuration.readonly = readOnly
    if !readOnly {
      // The staging index is rebuilt from the store if the machine crashes; durability
      // comes from the archive's own fsync.
      configuration.prepareDatabase { db in
        try db.execute(sql: "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF")
      }
    }
    database = try DatabaseQueue(path: path, configuration: configuration)
  }

  func close() throws { try database.close() }

  package func info() throws -> [String: String] {
    try database.read { db in
      var info: [String: String] = [:]
      for row in try Row.fetchAll(db, sql: "SELECT key, value FROM info") { info[row["key"]] = row["value"] }
      return info
    }
  }

  func setInfo(_ values: [String: String]) throws {
    try database.write { db in
      for (key, value) in values {
        try db.execute(sql: "INSERT OR REPLACE INTO info (key, value) VALUES (?, ?)", arguments: [key, value])
      }
    }
  }

  func add(versions: [HistoryVersion], base: Bool, chunks: [(String, ArchiveChunkLocation)]) throws {
    try database.write { db in
      let insertVersion = try db.makeStatement(
        sql: "INSERT INTO block_version (block, seq, full, chunk, start, length, base) VALUES (?, ?, ?, ?, ?, ?, ?)")
      for version in versions {
        try insertVersion.execute(arguments: [
          Int64(version.block), Int64(version.seq), version.full ? 1 : 0, version.chunk, version.start,
          version.length, base ? 1 : 0,
        ])
      }
      let insertChunk = try db.makeStatement(
        sql: """
          INSERT INTO chunk (hash, member, frame_offset, frame_length, record_offset, record_length, size)
          VALUES (?, ?, ?, ?, ?, ?, ?)
          """)
      for (hash, location) in chunks {
        try insertChunk.execute(arguments: [
          hash, location.member, Int64(location.frameOffset), location.frameLength, location.recordOffset,
          location.recordLength, location.size,
        ])
      }
    }
  }

  func add(records: [HistoryRecord], bookmarks: [Bookmark]) throws {
    try database.write { db in
      for record in records {
        try db.execute(
          sql: "INSERT INTO record (seq, time_ns, kind) VALUES (?, ?, ?)",
          arguments: [Int64(record.seq), record.time.nanoseconds, Int64(record.kind)])
      }
      for bookmark in bookmarks {
        try db.execute(
          sql: "INSERT INTO bookmark (seq, label, time_ns) VALUES (?, ?, ?)",
          arguments: [Int64(bookmark.seq), bookmark.label, bookmark.time.nanoseconds])
      }
    }
  }

  func add(rollbacks: [RollbackEvent]) throws {
    try database.write { db in
      for rollback in rollbacks {
        try db.execute(
          sql: "INSERT INTO rollback (seq, target_seq, time_ns) VALUES (?, ?, ?)",
          arguments: [Int64(rollback.seq), Int64(rollback.targetSeq), rollback.time.nanoseconds])
      }
    }
  }

  /// The window's rollbacks (schema 2; none in schema 1), oldest first.
  package func rollbacks() throws -> [RollbackEvent] {
    guard schema >= Self.lineageSchema else { return [] }
    return try database.read { db in
      try Row.fetchAll(db, sql: "SELECT seq, target_seq, time_ns FROM rollback ORDER BY seq").map {
        RollbackEvent(
          seq: Seq($0["seq"] as Int64), targetSeq: Seq($0["target_seq"] as Int64),
          time: Timestamp(nanoseconds: $0["time_ns"]))
      }
    }
  }

  package func chunkLocations() throws -> [String: ArchiveChunkLocation] {
    try database.read { db in
      var locations: [String: ArchiveChunkLocation] = [:]
      for row in try Row.fetchAll(db, sql: "SELECT * FROM chunk") {
        locations[row["hash"]] = ArchiveChunkLocation(
          member: row["member"], frameOffset: UInt64(row["frame_offset"] as Int64), frameLength: row["frame_length"],
          recordOffset: row["record_offset"], recordLength: row["record_length"], size: row["size"])
      }
      return locations
    }
  }

  /// Versions in `(block, seq)` order; `base` selects the base state or the window's changes.
  package func versions(base: Bool? = nil) throws -> [HistoryVersion] {
    try database.read { db in
      let filter = base.map { "WHERE base = \($0 ? 1 : 0)" } ?? ""
      return try Row.fetchAll(
        db, sql: "SELECT block, seq, full, chunk, start, length FROM block_version \(filter) ORDER BY block, seq"
      ).map {
        HistoryVersion(
          block: UInt64($0["block"] as Int64), seq: Seq($0["seq"] as Int64), full: $0["full"] as Int64 != 0,
          chunk: $0["chunk"], start: Int($0["start"] as Int64), length: Int($0["length"] as Int64))
      }
    }
  }

  /// The chunk names of those of `places` the index holds a stored chunk for.
  package func chunkNames(of places: Set<VersionPlace>) throws -> [VersionPlace: String] {
    try database.read { db in
      let statement = try db.cachedStatement(sql: "SELECT chunk FROM block_version WHERE block = ? AND seq = ?")
      var names: [VersionPlace: String] = [:]
      for place in places {
        names[place] = try String.fetchOne(statement, arguments: [Int64(place.block), Int64(place.seq)])
      }
      return names
    }
  }

  package func records() throws -> [HistoryRecord] {
    try database.read { db in
      try Row.fetchAll(db, sql: "SELECT seq, time_ns, kind FROM record ORDER BY seq").map {
        HistoryRecord(
          seq: Seq($0["seq"] as Int64), time: Timestamp(nanoseconds: $0["time_ns"]), kind: UInt8($0["kind"] as Int64))
      }
    }
  }

  package func bookmarks() throws -> [Bookmark] {
    try database.read { db in
      try Row.fetchAll(db, sql: "SELECT seq, label, time_ns FROM bookmark ORDER BY seq").map {
        Bookmark(seq: Seq($0["seq"] as Int64), label: $0["label"], time: Timestamp(nanoseconds: $0["time_ns"]))
      }
    }
  }
}
