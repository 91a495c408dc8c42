import Foundation
import GRDB
import ReelCore
import ReelJournal

/// The store's SQLite catalog. Version 1 holds the store's identity and its volumes;
/// later migrations add chunks, extents and archives.
public final class Catalog: Sendable {
  public let path: String
  let database: DatabaseQueue

  public static let schemaVersion = 1

  public init(path: String) throws {
    self.path = path
    var configuration = Configuration()
    configuration.busyMode = .timeout(10)
    configuration.prepareDatabase { db in
      try db.execute(sql: "PRAGMA synchronous = FULL")
    }
    do {
      database = try DatabaseQueue(path: path, configuration: configuration)
      try Self.migrator.migrate(database)
    } catch let error as DatabaseError {
      throw ReelError(
        .corrupt, "\(path): the catalog cannot be opened: \(error.message ?? "\(error.resultCode)")",
        remedy: "check the file is a Reel catalog; a damaged catalog can be rebuilt from the journals")
    }
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
    return migrator
  }

  public func storeInfo() throws -> [String: String] {
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

  public func register(_ volume: VolumeDescriptor) throws {
    try database.write { db in
      try db.execute(
        sql: "INSERT INTO volume(id, name, size, block_size, created_ns) VALUES (?, ?, ?, ?, ?)",
        arguments: [
          volume.id.description, volume.name, Int64(volume.size), Int64(volume.blockSize),
          volume.created.nanoseconds,
        ])
    }
  }

  public func volumeNames() throws -> [String] {
    try database.read { db in try String.fetchAll(db, sql: "SELECT name FROM volume ORDER BY name") }
  }
}
