import Foundation
import ReelCore
import ReelJournal
import ReelTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// What `reel sql` answers at an instant is what sqlite3 answers on the kernel-mounted image
/// restored at that instant: SQLite databases in WAL and rollback-journal mode written under
/// load by the sqlite3 CLI on ext4 through `reel serve`, read at bookmarks, at a bookmark
/// taken inside an open transaction of each, and at instants nobody marked.
@Suite(.serialized) struct SQLiteConsistencyTests {
  static let databases = ["/wal.db", "/rollback.db"]

  /// A loop of transactions for the sqlite3 CLI: each inserts rows tagged with its number,
  /// updates and deletes some older ones, and records itself in `done` — so a transaction is
  /// visible whole (its rows and its `done` row) or not at all.
  static func load(mode: String, transactions: Int) -> String {
    var script =
      mode == "wal"
      ? "PRAGMA journal_mode=WAL;\nPRAGMA wal_autocheckpoint=64;\n"
      : "PRAGMA journal_mode=DELETE;\nPRAGMA cache_size=8;\n"
    script += "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, txn INTEGER, v TEXT, r REAL, b BLOB);\n"
    script += "CREATE TABLE IF NOT EXISTS done(txn INTEGER PRIMARY KEY);\n"
    for k in 1...transactions {
      script += """
        BEGIN;
        INSERT INTO t(txn, v, r, b) SELECT \(k), printf('%d-%d ''%s''', \(k), x, hex(randomblob(8))), \(k) / 7.0 + x, randomblob(40 + x)
          FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 25) SELECT x FROM c);
        UPDATE t SET v = v || '+', r = r * 1.5 WHERE id % 37 = \(k % 37);
        DELETE FROM t WHERE id % 41 = \(k % 41) AND txn < \(k - 3);
        INSERT INTO done(txn) VALUES (\(k));
        COMMIT;

        """
    }
    return script
  }

  /// The questions asked at every point, each answered as one hexadecimal string per row
  /// so that both sides print them the same way.
  static let questions = [
    "SELECT hex(count(*) || ' ' || coalesce(sum(txn), 0) || ' ' || quote(total(r)) || ' ' || coalesce(max(txn), 0)) FROM t",
    "SELECT hex(coalesce(max(txn), 0) || ' ' || count(*)) FROM done",
    "SELECT hex(quote(id) || ',' || quote(txn) || ',' || quote(v) || ',' || quote(r) || ',' || quote(b)) FROM t ORDER BY id",
  ]

  /// Holds a transaction open on `database` (a cache too small for it, so pages reach the
  /// file: the database in rollback mode, the WAL in WAL mode) while `body` runs, then
  /// rolls it back. The transaction before it is committed.
  func withOpenTransaction(_ database: String, in folder: String, _ body: () throws -> Void) throws {
    let ready = folder + "/open-ready"
    let go = folder + "/open-go"
    let script = """
      import sqlite3, os, sys, time
      c = sqlite3.connect(sys.argv[1], isolation_level=None)
      c.execute('PRAGMA cache_size=5'); c.execute('PRAGMA wal_autocheckpoint=0')
      c.execute("INSERT INTO done(txn) VALUES (1000000)")
      c.execute('BEGIN')
      for i in range(1500):
          c.execute("INSERT INTO t(txn, v, r, b) VALUES (2000000, ?, 0.5, randomblob(100))", ('open %d' % i,))
      c.execute("INSERT INTO done(txn) VALUES (2000000)")
      open(sys.argv[2], 'w').close()
      while not os.path.exists(sys.argv[3]): time.sleep(0.05)
      c.execute('ROLLBACK')
      """
    let child = try ChildProcess(try tool("python3"), ["-c", script, database, ready, go])
    let deadline = Date(timeIntervalSinceNow: 120)
    while !FileManager.default.fileExists(atPath: ready) {
      try #require(child.isRunning && Date() < deadline, "the open transaction on \(database) did not start")
      usleep(50_000)
    }
    try body()
    FileManager.default.createFile(atPath: go, contents: nil)
    #expect(child.wait() == 0)
    try? FileManager.default.removeItem(atPath: ready)
    try? FileManager.default.removeItem(atPath: go)
  }

  @Test func reelSqlEqualsSqlite3OnTheRestoredImageAtBookmarksAndCrashInstants() throws {
    let store = try TestStore()
    try store.createVolume("fs", size: "96M")
    let server = try ServerProcess(store: store, volumes: ["fs"])
    let kernel = try KernelMount(in: store.directory.path)
    try kernel.connect(store.uri("fs"), servedBy: server)
    try kernel.formatExt4(["-b", "4096"])
    try kernel.mount()
    let started = try store.bookmark("fs", "formatted")

    var bookmarks: [String] = []
    var loaders: [ChildProcess] = []
    for (database, mode) in [("wal.db", "wal"), ("rollback.db", "rollback")] {
      let script = store.directory.path + "/load-\(mode).sql"
      try Self.load(mode: mode, transactions: 150).write(toFile: script, atomically: true, encoding: .utf8)
      loaders.append(
        try ChildProcess(
          try tool("sqlite3"), ["-bail", kernel.mountPoint + "/" + database, ".read " + script],
          stderr: store.directory.path + "/load-\(mode).log"))
    }
    // Bookmarks while both loops write, nothing synced by hand.
    while loaders.contains(where: \.isRunning) && bookmarks.count < 40 {
      usleep(400_000)
      let label = "load\(bookmarks.count)"
      _ = try store.bookmark("fs", label)
      bookmarks.append(label)
    }
    for loader in loaders { #expect(loader.wait() == 0, "sqlite3 load failed") }
    try withOpenTransaction(kernel.mountPoint + "/rollback.db", in: store.directory.path) {
      try runChecked(try tool("sync"), [])
      _ = try store.bookmark("fs", "open-rollback")
    }
    try withOpenTransaction(kernel.mountPoint + "/wal.db", in: store.directory.path) {
      try runChecked(try tool("sync"), [])
      _ = try store.bookmark("fs", "open-wal")
    }
    try kernel.unmount()
    let last = try store.bookmark("fs", "unmounted")
    #expect(try kernel.disconnect() == 0)
    #expect(server.stop() == 0)

    let seqs = try store.records("fs").map(\.seq).filter { $0 > started && $0 < last }
    try #require(seqs.count > 50)
    var unmarked = [0.3, 0.5, 0.7, 0.85].map { seqs[Int(Double(seqs.count) * $0)] }
    unmarked.append(try #require(seqs.randomElement()))
    print("SQLiteConsistencyTests: unmarked instants \(unmarked.map { "seq:\($0)" })")
    let sampled = bookmarks.enumerated().filter { $0.offset % max(1, bookmarks.count / 4) == 1 }.map(\.element)
    let points = sampled + ["open-rollback", "open-wal", "unmounted"] + unmarked.map { "seq:\($0)" }

    var hotJournals: [String] = []
    var walMattered: [String] = []
    var answered = 0
    for point in points {
      let image = store.directory.path + "/restored.img"
      let restored = try store.reelCommand(["restore", "fs", "--at", point, "--output", image, "--force"])
      try #require(restored.succeeded, "restore at \(point): \(restored.stderr)")
      // Writable, as the kernel replays the ext4 journal onto the device; a scratch copy.
      try kernel.mount(image, options: "loop")
      var expected: [String: [String]] = [:]
      for database in Self.databases {
        let path = kernel.mountPoint + database
        guard FileManager.default.fileExists(atPath: path) else { continue }
        var journal = stat()
        if lstat(path + "-journal", &journal) == 0 && journal.st_size > 0 { hotJournals.append(point) }
        // What the database file says without its WAL, before sqlite3 checkpoints anything.
        let alone = store.directory.path + "/alone.db"
        try? FileManager.default.removeItem(atPath: alone)
        try FileManager.default.copyItem(atPath: path, toPath: alone)
        let withoutWAL = try run(try tool("sqlite3"), [alone, Self.questions[1]]).stdout
        for (index, question) in Self.questions.enumerated() {
          let answer = try run(try tool("sqlite3"), ["-batch", path, question])
          try #require(answer.succeeded, "sqlite3 at \(point) on \(database): \(answer.stderr)")
          expected["\(database) \(index)"] = answer.stdout.split(separator: "\n").map(String.init)
        }
        if database == "/wal.db" && withoutWAL.split(separator: "\n").map(String.init) != expected["\(database) 1"] {
          walMattered.append(point)
        }
      }
      try kernel.unmount()

      for database in Self.databases {
        guard expected["\(database) 0"] != nil else {
          let missing = try store.reelCommand(["sql", "fs", "--at", point, "--db", database, "SELECT 1"])
          #expect(missing.status == 66, "at \(point), \(database) is missing for the kernel: \(missing.output)")
          continue
        }
        for (index, question) in Self.questions.enumerated() {
          let answer = try store.reelCommand(["sql", "fs", "--at", point, "--db", database, "--csv", question])
          try #require(answer.succeeded, "reel sql at \(point) on \(database): \(answer.stderr)")
          let rows = Array(answer.stdout.split(separator: "\n").dropFirst().map(String.init))
          #expect(
            rows == expected["\(database) \(index)"],
            "at \(point) on \(database), question \(index): reel \(rows.prefix(3)) vs sqlite3 \(expected["\(database) \(index)"]?.prefix(3) ?? [])"
          )
        }
        answered += 1
      }
      if point == "open-rollback" || point == "open-wal" {
        // The open transaction is not there; the one committed just before it is.
        let done = try store.reelCommand([
          "sql", "fs", "--at", point, "--db", point == "open-wal" ? "/wal.db" : "/rollback.db", "--csv",
          "SELECT count(*) FILTER (WHERE txn = 1000000), count(*) FILTER (WHERE txn = 2000000) FROM done",
        ])
        #expect(done.stdout.hasSuffix("\n1,0\n"), "at \(point): \(done.output)")
      }
    }
    #expect(answered >= 2 * (points.count - 2), "too few points had both databases")
    // Otherwise the rules this test is about were not exercised.
    #expect(hotJournals.contains("open-rollback"), "hot journals at \(hotJournals)")
    #expect(walMattered.contains("open-wal"), "the WAL held committed data at \(walMattered)")
    print("SQLiteConsistencyTests: hot journals at \(hotJournals), committed data only in the WAL at \(walMattered)")

    let refused = try store.reelCommand(["sql", "fs", "--at", "unmounted", "--db", "/wal.db", "DELETE FROM t"])
    #expect(refused.status == 64 && refused.stderr.contains("read-only"), "\(refused.output)")
  }
}
