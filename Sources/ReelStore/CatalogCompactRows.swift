import Foundation
import GRDB
import ReelCodec
import ReelCore

/// Catalog schema v8 (docs/store-format.md): the rows written once per journal record and
/// per block version hold small integers and binary digests instead of text ids and
/// hex names. Volumes get a `volume_number`, packs a `number`, chunks an integer `id`
/// and a 32-byte `digest`; `block_version` and `record_time` refer to those. v7 spent
/// about 640 bytes of catalog per block version, most of it a 36-byte volume id and a
/// 64-byte hex name repeated across two tables and three indexes.
extension Catalog {
  // Where a version's chunk may be absent (zeros), its name is read as
  // `nullif(lower(hex(c.digest)), '')`: SQLite's hex(NULL) is '', not NULL.

  /// SQL for the number of the volume whose id is bound at this place, for statements
  /// that take a volume id: `WHERE volume = \(Catalog.volumeNumber)`.
  static let volumeNumber = "(SELECT number FROM volume_number WHERE volume_id = ?)"

  /// `reel_digest(hex)`: the 32 bytes a chunk name (64 hex digits) stands for, as the
  /// catalog stores them; NULL for anything else, which matches no row and fails NOT NULL.
  static let digestFunction = DatabaseFunction("reel_digest", argumentCount: 1, pure: true) { values in
    String.fromDatabaseValue(values[0]).flatMap(digestBlob)
  }

  /// A chunk name as the catalog stores it (nil for text that is not a name, which no
  /// row has).
  static func digestBlob(_ hash: String) -> Data? {
    SHA256Digest(hex: hash).map { Data($0.bytes) }
  }

  /// Gives the volume a number if it has none yet. Every writer of its versions or
  /// record times calls this first in the same transaction.
  static func numberVolume(_ db: Database, _ volumeID: String) throws {
    try db.cachedStatement(sql: "INSERT OR IGNORE INTO volume_number (volume_id) VALUES (?)")
      .execute(arguments: [volumeID])
  }

  /// The catalog's id of the chunk named `hash`; a version must never point at a chunk
  /// the catalog does not know (it would read as zeros).
  static func chunkID(_ db: Database, hash: String) throws -> Int64 {
    guard
      let id = try Int64.fetchOne(
        db.cachedStatement(sql: "SELECT id FROM chunk WHERE digest = reel_digest(?)"), arguments: [hash])
    else {
      throw ReelError(
        .corrupt, "chunk \(hash) has no catalog row", remedy: "run `reel store check` to see what it affects")
    }
    return id
  }

  /// The number of the pack named `id`; packs are registered before their first byte
  /// is written, so a chunk row can always name its pack.
  static func packNumber(_ db: Database, _ id: String) throws -> Int64 {
    guard let number = try Int64.fetchOne(db, sql: "SELECT number FROM pack WHERE id = ?", arguments: [id]) else {
      throw ReelError(.corrupt, "pack \(id) has no catalog row", remedy: "run `reel store check`")
    }
    return number
  }

  /// The newest record of the volume with a time at or before `time`. Record times
  /// increase with seq within a volume (the journal never lets time go backwards, and
  /// every record in the catalog came from a journal: docs/journal-format.md), so the
  /// primary key's order is time order and v8 keeps no index by time: a binary search
  /// over seqs, each step one probe of the key, finds it.
  static func lastRecord(_ db: Database, volume volumeID: String, atOrBefore time: Int64) throws
    -> (seq: Int64, time: Int64)?
  {
    let firstAtOrAfter = try db.cachedStatement(
      sql: "SELECT seq, time_ns FROM record_time WHERE volume = \(volumeNumber) AND seq >= ? ORDER BY seq LIMIT 1")
    let lastBefore = try db.cachedStatement(
      sql: "SELECT seq, time_ns FROM record_time WHERE volume = \(volumeNumber) AND seq < ? ORDER BY seq DESC LIMIT 1")
    func record(_ statement: Statement, _ seq: Int64) throws -> (seq: Int64, time: Int64)? {
      try Row.fetchOne(statement, arguments: [volumeID, seq]).map { ($0[0], $0[1]) }
    }
    guard let first = try record(firstAtOrAfter, Int64.min), first.time <= time else { return nil }
    guard let last = try record(lastBefore, Int64.max) else { return nil }
    // The smallest seq s in (first, last + 1] from which on every record is after `time`.
    var low = first.seq + 1
    var high = last.seq + 1
    while low < high {
      let middle = low + (high - low) / 2
      if let next = try record(firstAtOrAfter, middle), next.time <= time {
        low = next.seq + 1
      } else {
        high = middle
      }
    }
    return try record(lastBefore, low)
  }

  /// v7 → v8. Every row is copied; a name a version used whose chunk row repair had
  /// deleted becomes a chunk row with no pack (lost), so the version still names it.
  static func migrateToCompactRows(_ db: Database) throws {
    try db.execute(
      sql: """
        CREATE TABLE volume_number (
          number INTEGER PRIMARY KEY,
          volume_id TEXT NOT NULL UNIQUE
        );
        INSERT INTO volume_number (volume_id)
          SELECT id FROM volume
          UNION SELECT DISTINCT volume_id FROM block_version
          UNION SELECT DISTINCT volume_id FROM record_time;

        CREATE TABLE pack_v8 (
          number INTEGER PRIMARY KEY,
          id TEXT NOT NULL UNIQUE,
          -- bytes up to here are referenced by committed catalog rows; anything after
          -- was appended by a batch that never committed and is cut off
          committed_size INTEGER NOT NULL,
          created_ns INTEGER NOT NULL
        );
        INSERT INTO pack_v8 (id, committed_size, created_ns)
          SELECT id, committed_size, created_ns FROM pack ORDER BY created_ns, id;

        CREATE TABLE chunk_v8 (
          id INTEGER PRIMARY KEY,
          -- SHA-256 of the plaintext (32 bytes): the chunk's name
          digest BLOB NOT NULL UNIQUE,
          -- NULL: lost (repair found nothing to rebuild it from); ingesting the same
          -- content again gives it a place
          pack_number INTEGER REFERENCES pack_v8(number),
          offset INTEGER NOT NULL,
          length INTEGER NOT NULL,
          size INTEGER NOT NULL
        );
        INSERT INTO chunk_v8 (digest, pack_number, offset, length, size)
          SELECT reel_digest(c.hash), p.number, c.offset, c.length, c.size
          FROM chunk c JOIN pack_v8 p ON p.id = c.pack ORDER BY p.number, c.offset;
        INSERT OR IGNORE INTO chunk_v8 (digest, pack_number, offset, length, size)
          SELECT DISTINCT reel_digest(chunk), NULL, 0, 0, 0 FROM block_version WHERE chunk IS NOT NULL;

        CREATE TABLE block_version_v8 (
          volume INTEGER NOT NULL,
          block INTEGER NOT NULL,
          seq INTEGER NOT NULL,
          full INTEGER NOT NULL,
          -- chunk.id; NULL: zeros
          chunk_id INTEGER,
          start INTEGER NOT NULL,
          length INTEGER NOT NULL,
          PRIMARY KEY (volume, block, seq)
        ) WITHOUT ROWID;
        INSERT INTO block_version_v8 (volume, block, seq, full, chunk_id, start, length)
          SELECT n.number, v.block, v.seq, v.full, c.id, v.start, v.length
          FROM block_version v JOIN volume_number n ON n.volume_id = v.volume_id
          LEFT JOIN chunk_v8 c ON c.digest = reel_digest(v.chunk);

        CREATE TABLE record_time_v8 (
          volume INTEGER NOT NULL,
          seq INTEGER NOT NULL,
          time_ns INTEGER NOT NULL,
          kind INTEGER NOT NULL,
          PRIMARY KEY (volume, seq)
        ) WITHOUT ROWID;
        INSERT INTO record_time_v8 (volume, seq, time_ns, kind)
          SELECT n.number, r.seq, r.time_ns, r.kind
          FROM record_time r JOIN volume_number n ON n.volume_id = r.volume_id;

        DROP TABLE block_version;
        DROP TABLE record_time;
        DROP TABLE chunk;
        DROP TABLE pack;
        ALTER TABLE pack_v8 RENAME TO pack;
        ALTER TABLE chunk_v8 RENAME TO chunk;
        ALTER TABLE block_version_v8 RENAME TO block_version;
        ALTER TABLE record_time_v8 RENAME TO record_time;
        CREATE INDEX chunk_by_pack ON chunk (pack_number);

        -- The same rows with ids and hex names, for checks, repairs and people with sqlite3.
        CREATE VIEW chunk_named AS
          SELECT c.id, lower(hex(c.digest)) AS hash, p.id AS pack, c.offset, c.length, c.size
          FROM chunk c LEFT JOIN pack p ON p.number = c.pack_number;
        CREATE VIEW block_version_named AS
          SELECT n.volume_id, v.block, v.seq, v.full, nullif(lower(hex(c.digest)), '') AS chunk, v.chunk_id, v.start, v.length
          FROM block_version v JOIN volume_number n ON n.number = v.volume
          LEFT JOIN chunk c ON c.id = v.chunk_id;
        CREATE VIEW record_time_named AS
          SELECT n.volume_id, r.seq, r.time_ns, r.kind
          FROM record_time r JOIN volume_number n ON n.number = r.volume;

        UPDATE store_info SET value = '8' WHERE key = 'catalog_schema';
        """)
  }

  /// v8 → v9 (docs/store-format.md, "Unnamed chunks"): a chunk row may leave out its
  /// name, and ingest stores the chunk of each partial version so. Naming it cost the
  /// catalog about 75 of its 150 bytes per small write (the 32-byte name and its entry in
  /// the unique index), to find a match for content small random writes hardly ever
  /// repeat. The index by pack goes too (prune scans once per sweep instead). Existing
  /// chunks only partial versions use lose their names; lost ones keep theirs, so the
  /// same content ingested again can still give them a place.
  static func migrateToUnnamedChunks(_ db: Database) throws {
    try db.execute(
      sql: """
        DROP VIEW chunk_named;
        DROP VIEW block_version_named;
        DROP INDEX chunk_by_pack;
        CREATE TABLE chunk_v9 (
          -- never reused (AUTOINCREMENT): readers cache unnamed chunks' plaintext by row
          id INTEGER PRIMARY KEY AUTOINCREMENT,
          -- SHA-256 of the plaintext (32 bytes): the chunk's name. NULL: unnamed (a partial
          -- version's chunk, found only by its row; its record's header holds the name)
          digest BLOB,
          -- NULL: lost (repair found nothing to rebuild it from); ingesting the same
          -- content again gives a named one a place. No index and no foreign key: only
          -- prune asks by pack, once per sweep, and an index entry cost each small write
          -- 10 bytes (a pack number no pack has reads as lost, and check reports it)
          pack_number INTEGER,
          offset INTEGER NOT NULL,
          length INTEGER NOT NULL,
          size INTEGER NOT NULL
        );
        CREATE TEMP TABLE partial_only AS
          SELECT chunk_id AS id FROM block_version WHERE full = 0 AND chunk_id IS NOT NULL
          EXCEPT SELECT chunk_id FROM block_version WHERE full = 1 AND chunk_id IS NOT NULL;
        INSERT INTO chunk_v9 (id, digest, pack_number, offset, length, size)
          SELECT id,
            CASE WHEN pack_number IS NOT NULL AND id IN (SELECT id FROM temp.partial_only) THEN NULL ELSE digest END,
            pack_number, offset, length, size
          FROM chunk;
        DROP TABLE temp.partial_only;
        DROP TABLE chunk;
        ALTER TABLE chunk_v9 RENAME TO chunk;
        CREATE UNIQUE INDEX chunk_by_digest ON chunk (digest) WHERE digest IS NOT NULL;

        -- hash is NULL for an unnamed chunk; in block_version_named, chunk is NULL for
        -- zeros (chunk_id NULL too) and for an unnamed chunk (chunk_id set).
        CREATE VIEW chunk_named AS
          SELECT c.id, nullif(lower(hex(c.digest)), '') AS hash, p.id AS pack, c.offset, c.length, c.size
          FROM chunk c LEFT JOIN pack p ON p.number = c.pack_number;
        CREATE VIEW block_version_named AS
          SELECT n.volume_id, v.block, v.seq, v.full, nullif(lower(hex(c.digest)), '') AS chunk, v.chunk_id, v.start, v.length
          FROM block_version v JOIN volume_number n ON n.number = v.volume
          LEFT JOIN chunk c ON c.id = v.chunk_id;

        UPDATE store_info SET value = '9' WHERE key = 'catalog_schema';
        """)
  }
}
