import Foundation
import GRDB
import ReelCodec
import ReelCore
import ReelIO

/// The store's SQLite catalog. Version 1 holds the store's identity and its volumes;
/// later migrations add chunks, extents and archives.
package final class Catalog: Sendable {
  package let path: String
  /// The tables of the layers above the store (sealed archives, media copies, pipeline
  /// runs) are read and written by those layers; their schema stays here, in the migrations.
  package let database: DatabaseQueue

  package static let schemaVersion = 12

  package init(path: String) throws {
    self.path = path
    var configuration = Configuration()
    configuration.busyMode = .timeout(10)
    configuration.prepareDatabase { db in
      try db.execute(sql: "PRAGMA synchronous = FULL")
      db.add(function: Catalog.digestFunction)
    }
    // The catalog names every chunk and bookmark: owner-only, and so its journal.
    try Durable.createOwnerOnlyIfMissing(path)
    do {
      database = try DatabaseQueue(path: path, configuration: configuration)
      let migrator = Self.migrator
      let applied = try database.read { db in
        try db.tableExists("grdb_migrations")
          ? String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") : []
      }
      // A newer Reel changed the schema: reading or writing it with this one's queries
      // would fail halfway (a v7 Reel on a v8 catalog stops at "no such column").
      let newer = Set(applied).subtracting(migrator.migrations).sorted()
      guard newer.isEmpty else {
        throw ReelError(
          .incompatible,
          "\(path): the catalog was upgraded by a newer Reel (schema changes \(newer.joined(separator: ", ")) that this Reel does not know)",
          remedy: "run the Reel that upgraded it, or a newer one; this Reel leaves the catalog untouched")
      }
      try migrator.migrate(database)
      if !applied.isEmpty && !applied.contains("v9-unnamed-chunks") {
        // Upgraded from v8 or older: the old tables' pages are free but still in the file
        // (about three quarters of a v7 one, half of a v8 one after small writes); give
        // them back. Best effort: another process reading the catalog makes it wait and
        // give up, and the free pages are then reused by the rows to come. (A catalog
        // created just now has nothing to give back.)
        try? database.writeWithoutTransaction { db in try db.execute(sql: "VACUUM") }
      }
    } catch let error as DatabaseError {
      throw ReelError(
        .corrupt, "\(path): the catalog cannot be opened: \(error.message ?? "\(error.resultCode)")",
        remedy: "check the file is a Reel catalog; a damaged catalog can be rebuilt from the journals")
    }
  }

  /// Catalogs up to this size are read ahead whole by `readAhead()`.
  static let readAheadLimit: UInt64 = 64 << 20

  /// Asks the kernel to bring the catalog file into the page cache, without waiting: the
  /// reads of a view (a version chain per block) otherwise wait on the disk one page at
  /// a time, in turn, since the catalog's queue serializes them — on `reel pg` the walk's
  /// look at each WAL segment's first bytes made some 300 such reads. A larger catalog
  /// is left to be read as needed.
  package func readAhead() {
    guard let file = try? PosixFile.openForReading(path), let size = try? file.size(),
      size <= Self.readAheadLimit
    else { return }
    file.prefetch(0..<size)
  }

  private static var migrator: DatabaseMigrator {
    var migrator = DatabaseMigrator()
    migrator.registerMigration("v1") { db in
      try db.create(table: "store_info") { t in
        t.primaryKey("key", .text)
        t.column("value", .text).notNull()
      }
      try db.create(table: "volume") { t in
        t.primaryKey("id", .text)
        t.column("name", .text).notNull().unique()
        t.column("size", .integer).notNull()
        t.column("block_size", .integer).notNull()
        t.column("created_ns", .integer).notNull()
      }
    }
    migrator.registerMigration("v2-live-store") { db in
      try db.execute(
        sql: """
          CREATE TABLE ingest_state (
            volume_id TEXT PRIMARY KEY NOT NULL,
            ingested_seq INTEGER NOT NULL,
            base_ingested INTEGER NOT NULL DEFAULT 0,
            -- the oldest seq a point may name; history before it was pruned
            retained_from_seq INTEGER NOT NULL DEFAULT 0
          );
          CREATE TABLE record_time (
            volume_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            time_ns INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            PRIMARY KEY (volume_id, seq)
          ) WITHOUT ROWID;
          CREATE INDEX record_time_by_time ON record_time (volume_id, time_ns);
          CREATE TABLE bookmark (
            volume_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            label TEXT NOT NULL,
            time_ns INTEGER NOT NULL,
            PRIMARY KEY (volume_id, seq)
          ) WITHOUT ROWID;
          CREATE TABLE block_version (
            volume_id TEXT NOT NULL,
            block INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            full INTEGER NOT NULL,
            chunk TEXT,
            start INTEGER NOT NULL,
            length INTEGER NOT NULL,
            PRIMARY KEY (volume_id, block, seq)
          ) WITHOUT ROWID;
          CREATE INDEX block_version_by_chunk ON block_version (chunk) WHERE chunk IS NOT NULL;
          CREATE TABLE pack (
            id TEXT PRIMARY KEY NOT NULL,
            -- bytes up to here are referenced by committed catalog rows; anything after
            -- was appended by a batch that never committed and is cut off
            committed_size INTEGER NOT NULL,
            created_ns INTEGER NOT NULL
          ) WITHOUT ROWID;
          CREATE TABLE chunk (
            hash TEXT PRIMARY KEY NOT NULL,
            pack TEXT NOT NULL REFERENCES pack(id),
            offset INTEGER NOT NULL,
            length INTEGER NOT NULL,
            size INTEGER NOT NULL
          ) WITHOUT ROWID;
          CREATE INDEX chunk_by_pack ON chunk (pack);
          """)
    }
    migrator.registerMigration("v3-seal") { db in
      try db.execute(
        sql: """
          -- one row per sealed archive this store wrote (or imported)
          CREATE TABLE sealed_archive (
            id TEXT PRIMARY KEY NOT NULL,
            volume_id TEXT NOT NULL,
            chain_id TEXT NOT NULL,
            parent_id TEXT,
            chain_index INTEGER NOT NULL,
            from_seq INTEGER NOT NULL,
            until_seq INTEGER NOT NULL,
            from_time_ns INTEGER NOT NULL,
            until_time_ns INTEGER NOT NULL,
            file_name TEXT NOT NULL,
            path TEXT NOT NULL,
            size INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            created_ns INTEGER NOT NULL,
            verified_ns INTEGER
          ) WITHOUT ROWID;
          CREATE INDEX sealed_archive_by_volume ON sealed_archive (volume_id, until_seq);
          -- journal records with seq <= sealed_seq are held by a verified archive
          CREATE TABLE seal_state (
            volume_id TEXT PRIMARY KEY NOT NULL,
            sealed_seq INTEGER NOT NULL,
            last_archive_id TEXT
          ) WITHOUT ROWID;
          """)
    }
    migrator.registerMigration("v4-media") { db in
      try db.execute(
        sql: """
          CREATE TABLE media_cartridge (
            id TEXT PRIMARY KEY NOT NULL,
            label TEXT NOT NULL,
            media_set TEXT,
            media_set_id TEXT,
            sequence INTEGER NOT NULL,
            address TEXT NOT NULL,
            closed INTEGER NOT NULL,
            catalog_json TEXT,
            updated_ns INTEGER NOT NULL
          ) WITHOUT ROWID;
          -- one row per verified copy of an archive on media
          CREATE TABLE archive_copy (
            archive_id TEXT NOT NULL,
            media_set TEXT NOT NULL,
            media_set_id TEXT NOT NULL,
            cartridge_id TEXT NOT NULL,
            cartridge_label TEXT NOT NULL,
            tape_file INTEGER NOT NULL,
            volume_name TEXT NOT NULL,
            chain_id TEXT NOT NULL,
            chain_index INTEGER NOT NULL,
            from_seq INTEGER NOT NULL,
            until_seq INTEGER NOT NULL,
            from_time_ns INTEGER NOT NULL,
            until_time_ns INTEGER NOT NULL,
            size INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            verified_ns INTEGER NOT NULL,
            -- JSON: [{"label", "seq", "time"}] of the bookmarks inside the range
            bookmarks TEXT NOT NULL,
            PRIMARY KEY (archive_id, cartridge_id, tape_file)
          ) WITHOUT ROWID;
          CREATE INDEX archive_copy_by_set ON archive_copy (media_set, archive_id);
          CREATE INDEX archive_copy_by_volume ON archive_copy (volume_name, chain_id, chain_index);
          """)
    }
    migrator.registerMigration("v5-pipeline") { db in
      try db.execute(
        sql: """
          CREATE TABLE pipeline_run (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            pipeline TEXT NOT NULL,
            file TEXT NOT NULL,
            definition_sha256 TEXT NOT NULL,
            started_ns INTEGER NOT NULL,
            finished_ns INTEGER,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 1
          );
          CREATE INDEX pipeline_run_by_name ON pipeline_run (pipeline, id);
          CREATE TABLE pipeline_stage (
            run_id INTEGER NOT NULL,
            position INTEGER NOT NULL,
            name TEXT NOT NULL,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            started_ns INTEGER,
            finished_ns INTEGER,
            bytes INTEGER NOT NULL DEFAULT 0,
            items INTEGER NOT NULL DEFAULT 0,
            message TEXT,
            PRIMARY KEY (run_id, position)
          ) WITHOUT ROWID;
          CREATE TABLE pipeline_run_value (
            run_id INTEGER NOT NULL,
            key TEXT NOT NULL,
            value TEXT NOT NULL,
            PRIMARY KEY (run_id, key)
          ) WITHOUT ROWID;
          -- a copy on media read back and verified with the key (verify-on-media)
          CREATE TABLE media_check (
            archive_id TEXT NOT NULL,
            cartridge_id TEXT NOT NULL,
            tape_file INTEGER NOT NULL,
            checked_ns INTEGER NOT NULL,
            ok INTEGER NOT NULL,
            detail TEXT,
            PRIMARY KEY (archive_id, cartridge_id, tape_file)
          ) WITHOUT ROWID;
          """)
    }
    migrator.registerMigration("v6-clones") { db in
      try db.execute(
        sql: """
          -- a clone reads its origin as of origin_seq for everything it has not written
          -- since; referenced by volume id, so renames never break the link
          CREATE TABLE volume_origin (
            volume_id TEXT PRIMARY KEY NOT NULL,
            origin_volume_id TEXT NOT NULL,
            origin_seq INTEGER NOT NULL,
            created_ns INTEGER NOT NULL
          ) WITHOUT ROWID;
          CREATE INDEX volume_origin_by_origin ON volume_origin (origin_volume_id, origin_seq);
          -- one row per rollback record: from seq on, the volume reads as it did at target_seq
          CREATE TABLE volume_rollback (
            volume_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            target_seq INTEGER NOT NULL,
            time_ns INTEGER NOT NULL,
            PRIMARY KEY (volume_id, seq)
          ) WITHOUT ROWID;
          """)
    }
    migrator.registerMigration("v7-history-loss") { db in
      try db.execute(
        sql: """
          -- history an archive damaged beyond repair could not give back: points in it are
          -- refused, not read as the state before it (docs/rehydrate.md)
          CREATE TABLE history_loss (
            volume_id TEXT NOT NULL,
            archive_id TEXT NOT NULL,
            from_seq INTEGER NOT NULL,
            until_seq INTEGER NOT NULL,
            from_time_ns INTEGER,
            description TEXT NOT NULL,
            PRIMARY KEY (volume_id, archive_id)
          ) WITHOUT ROWID;
          """)
    }
    migrator.registerMigration("v8-compact") { db in
      try migrateToCompactRows(db)
    }
    migrator.registerMigration("v9-unnamed-chunks") { db in
      try migrateToUnnamedChunks(db)
    }
    migrator.registerMigration("v10-delta-chunks") { db in
      // The chunk a delta record refers to (docs/store-format.md, "Consolidations as
      // deltas"); NULL for a whole record. Prune keeps a base while a delta of it lives.
      try db.execute(
        sql: """
          ALTER TABLE chunk ADD COLUMN base_id INTEGER;
          UPDATE store_info SET value = '10' WHERE key = 'catalog_schema';
          """)
    }
    migrator.registerMigration("v11-chunk-groups") { db in
      // Where a chunk's record starts in the compression group at offset/length
      // (docs/store-format.md, "Compression groups"); NULL for a record that stands alone.
      try db.execute(
        sql: """
          ALTER TABLE chunk ADD COLUMN record_offset INTEGER;
          UPDATE store_info SET value = '11' WHERE key = 'catalog_schema';
          """)
    }
    migrator.registerMigration("v12-archive-crc32c") { db in
      // The CRC-32C of a sealed archive's bytes as read back at its seal (docs/store-format.md,
      // "Other tables"); NULL for archives sealed before and for imports.
      try db.execute(
        sql: """
          ALTER TABLE sealed_archive ADD COLUMN crc32c INTEGER;
          UPDATE store_info SET value = '12' WHERE key = 'catalog_schema';
          """)
    }
    return migrator
  }

  package func storeInfo() throws -> [String: String] {
    try database.read { db in
      var info: [String: String] = [:]
      for row in try Row.fetchAll(db, sql: "SELECT key, value FROM store_info") {
        info[row["key"]] = row["value"]
      }
      return info
    }
  }

  func setStoreInfo(_ values: [String: String]) throws {
    try database.write { db in
      for (key, value) in values {
        try db.execute(
          sql: "INSERT INTO store_info(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
          arguments: [key, value])
      }
    }
  }

  func register(_ volume: VolumeDescriptor) throws {
    try database.write { db in
      try db.execute(
        sql: "INSERT INTO volume(id, name, size, block_size, created_ns) VALUES (?, ?, ?, ?, ?)",
        arguments: [
          volume.id.description, volume.name, Int64(volume.size), Int64(volume.blockSize),
          volume.created.nanoseconds,
        ])
      try Catalog.numberVolume(db, volume.id.description)
    }
  }

  package func volumeNames() throws -> [String] {
    try database.read { db in try String.fetchAll(db, sql: "SELECT name FROM volume ORDER BY name") }
  }

  /// A consistent copy of the whole catalog as a new SQLite file (`VACUUM INTO`), written
  /// under a temporary name and renamed into place. The copy names every chunk and
  /// bookmark, so it is private (0600) like the catalog, whatever the umask: SQLite fills
  /// the empty file this creates (O_EXCL|O_NOFOLLOW) instead of creating one of its own.
  package func snapshot(to path: String) throws {
    let partial = path + ".partial"
    let placeholder = try PosixFile.createNew(partial, mode: 0o600, leftover: true)
    do {
      try database.writeWithoutTransaction { db in
        try db.execute(sql: "VACUUM INTO ?", arguments: [partial])
      }
    } catch {
      unlink(partial)
      throw error
    }
    try placeholder.sync()
    try Durable.rename(partial, to: path)
  }
}
