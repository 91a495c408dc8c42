import Foundation
import ReelCore
import ReelDatabases
import ReelFiles
import ReelStore
import ReelTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Databases made by the real sqlite3 CLI and Python's sqlite3 module in a folder (`source`),
/// put on an ext4 volume with `mkfs.ext4 -d` and `reel volume create --from`. The oracle is
/// sqlite3 run on copies of the same files, which it may write to as it opens them (rolling
/// back a journal, rebuilding a WAL index).
final class SQLiteFixtures {
  let store: TestStore
  var folder: String { store.directory.path }
  var source: String { folder + "/source" }

  /// Table `t` of `rollback.db`, `data/app/wal.db` and `tail.db`: every kind of value, so
  /// answers and dumps are compared on NULLs, quotes, Unicode, line breaks, NULs, invalid
  /// UTF-8, blobs, reals that need 17 digits, infinities, the integer limits.
  static let createTable = """
    CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT, score REAL, data BLOB, n INTEGER,
      twice INTEGER GENERATED ALWAYS AS (n * 2) VIRTUAL);
    CREATE INDEX t_name ON t(name);
    """
  static let rows = """
    INSERT INTO t(id, name, score, data, n) VALUES
      (1, 'it''s', 0.1, X'00ff10', 9223372036854775807),
      (2, NULL, 1e300, NULL, -9223372036854775808),
      (3, 'ünïcödé ✓', 1.0/3, X'', 0),
      (4, 'two' || char(10) || 'lines, "quoted"', -2.5e-300, zeroblob(3), NULL),
      (5, CAST(X'61006200' AS TEXT), 2.0, X'6869', 42),
      (6, CAST(X'ff61' AS TEXT), 123456789.123456789, randomblob(40), 7),
      (7, '', 1e999, X'27', -1),
      (8, 'tab' || char(9) || 'and comma,', -1e999, NULL, 3);
    """
  /// Every column of `t` as SQL text, in id order: what answers are compared on.
  static let everything =
    "SELECT quote(id), quote(name), quote(score), quote(data), quote(n), quote(twice) FROM t ORDER BY id"

  init() throws {
    store = try TestStore()
    try FileManager.default.createDirectory(atPath: source + "/data/app", withIntermediateDirectories: true)
    try sqlite(source + "/rollback.db", Self.createTable + Self.rows)
    try python(
      """
      import sqlite3, shutil, os, sys
      folder = sys.argv[1]
      # WAL: committed transactions that live only in the WAL (no checkpoint), copied while
      # the connection holds the files open, as a crash would leave them.
      c = sqlite3.connect(folder + '/live-wal.db', isolation_level=None)
      c.execute('PRAGMA journal_mode=WAL'); c.execute('PRAGMA wal_autocheckpoint=0')
      c.executescript(sys.argv[2])
      c.execute('PRAGMA wal_checkpoint(TRUNCATE)')
      c.executescript(sys.argv[3])
      for i in range(500):
          c.execute('INSERT INTO t(name, score, n) VALUES (?, ?, ?)', ('wal%d' % i, i / 7, i))
      c.execute('DELETE FROM t WHERE id = 2')
      shutil.copy(folder + '/live-wal.db', folder + '/data/app/wal.db')
      shutil.copy(folder + '/live-wal.db-wal', folder + '/data/app/wal.db-wal')
      # Two more transactions; the last one loses its commit frame below.
      c.execute('INSERT INTO t(name) VALUES (?)', ('committed last',))
      c.execute('BEGIN')
      for i in range(50):
          c.execute('INSERT INTO t(name, data) VALUES (?, randomblob(500))', ('uncommitted %d' % i,))
      c.execute('COMMIT')
      shutil.copy(folder + '/live-wal.db', folder + '/tail.db')
      shutil.copy(folder + '/live-wal.db-wal', folder + '/tail.db-wal')
      c.close()
      for name in ('live-wal.db', 'live-wal.db-wal', 'live-wal.db-shm'):
          if os.path.exists(folder + '/' + name): os.remove(folder + '/' + name)
      # A hot journal: a big transaction with a cache too small to hold it, so SQLite writes
      # changed pages into the database (their originals journaled first); copied while open.
      c = sqlite3.connect(folder + '/live-hot.db', isolation_level=None)
      c.execute('PRAGMA journal_mode=DELETE'); c.execute('PRAGMA cache_size=5')
      c.execute('CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT)')
      c.execute('BEGIN')
      for i in range(300): c.execute('INSERT INTO t(v) VALUES (?)', ('before %d ' % i + 'x' * 200,))
      c.execute('COMMIT')
      c.execute('BEGIN')
      for i in range(3000): c.execute('INSERT INTO t(v) VALUES (?)', ('during %d ' % i + 'y' * 200,))
      c.execute('UPDATE t SET v = upper(v) WHERE id <= 150')
      c.execute('DELETE FROM t WHERE id > 250 AND id <= 300')
      assert os.path.getsize(folder + '/live-hot.db-journal') > 0
      shutil.copy(folder + '/live-hot.db', folder + '/hot.db')
      shutil.copy(folder + '/live-hot.db-journal', folder + '/hot.db-journal')
      c.execute('ROLLBACK')
      c.close()
      os.remove(folder + '/live-hot.db')
      """, [source, Self.createTable, Self.rows])
    // The WAL's last frame is the last transaction's commit frame: without it, that
    // transaction is an uncommitted tail.
    let tail = source + "/tail.db-wal"
    let size = try #require(try FileManager.default.attributesOfItem(atPath: tail)[.size] as? Int)
    #expect(truncate(tail, off_t(size - (24 + 4096))) == 0)
    try sqlite(
      source + "/big.db",
      "CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT); WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000) INSERT INTO t SELECT x, printf('%0200d', x) FROM c;"
    )
    try FileManager.default.copyItem(atPath: source + "/big.db", toPath: source + "/truncated.db")
    #expect(truncate(source + "/truncated.db", 100_000) == 0)
    // A valid magic but an impossible page size (7): SQLite says "file is not a database".
    var bad = try Data(contentsOf: URL(fileURLWithPath: source + "/big.db"))
    bad[16] = 0
    bad[17] = 7
    try bad.write(to: URL(fileURLWithPath: source + "/data/unreadable.db"))
    try Data("hello, not a database\n".utf8).write(to: URL(fileURLWithPath: source + "/notes.txt"))
    try Data([0x25, 0x50, 0x44, 0x46] + [UInt8](repeating: 0xAB, count: 300)).write(
      to: URL(fileURLWithPath: source + "/data/looks.pdf"))
    try FileManager.default.createSymbolicLink(atPath: source + "/link.db", withDestinationPath: "data/app/wal.db")

    let image = folder + "/volume.img"
    try runChecked(try tool("mke2fs"), ["-q", "-F", "-t", "ext4", "-b", "4096", "-d", source, image, "32M"])
    try runChecked(store.reel, ["volume", "create", "vm", "--from", image, "--store", store.root])
    try runChecked(store.reel, ["ingest", "vm", "--store", store.root])
  }

  func sqlite(_ database: String, _ sql: String) throws {
    try runChecked(try tool("sqlite3"), ["-bail", database, sql])
  }

  func python(_ script: String, _ arguments: [String]) throws {
    try runChecked(try tool("python3"), ["-c", script] + arguments)
  }

  /// A database in the volume's file system at its latest point, opened in this process.
  func open(_ path: String) throws -> SQLiteAtPoint {
    let opened = try FilesAtPoint.open(
      live: LiveStore(store: Store.open(store.layout)), volume: "vm", at: .latest, partition: nil)
    return try SQLiteAtPoint.open(opened, path: path)
  }

  /// Copies `relative` and whichever of its -wal and -journal exist into a fresh folder,
  /// as a user restoring the files would; returns the copy's path.
  func copyOut(_ relative: String, withSiblings: Bool = true) throws -> String {
    let folder = self.folder + "/copy-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
    let name = (relative as NSString).lastPathComponent
    for suffix in withSiblings ? ["", "-wal", "-journal"] : [""] {
      let from = source + "/" + relative + suffix
      if FileManager.default.fileExists(atPath: from) {
        try FileManager.default.copyItem(atPath: from, toPath: folder + "/" + name + suffix)
      }
    }
    return folder + "/" + name
  }

  /// sqlite3's answer, one string per row, columns joined by U+001F.
  static func oracle(_ database: String, _ sql: String) throws -> [String] {
    let result = try run(
      try tool("sqlite3"), ["-batch", "-list", "-separator", "\u{1F}", "-newline", "\u{1E}", database, sql])
    guard result.succeeded else { throw SupportError("sqlite3 \(database) \(sql): \(result.stderr)") }
    return result.stdout.split(separator: "\u{1E}", omittingEmptySubsequences: false).dropLast().map(String.init)
  }

  /// Reel's answer in the same shape (`sql` renders its values with quote()).
  static func answer(_ database: SQLiteAtPoint, _ sql: String) throws -> [String] {
    try database.query(sql).rows.map { row in row.map { $0.plainText ?? "" }.joined(separator: "\u{1F}") }
  }
}
