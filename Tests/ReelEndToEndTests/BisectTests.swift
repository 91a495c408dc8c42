import Foundation
import ReelCore
import ReelTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// `reel bisect` finds the record of a DELETE made at a known moment in a database written
/// through `reel serve` and the kernel (ext4): between a bookmark taken just before the
/// DELETE and one taken just after its commit was acknowledged (SQLite and PostgreSQL both
/// make a commit durable before acknowledging it), in at most ⌈log₂(records)⌉ + 2
/// evaluations, with inserts before and after it so the history is long.
@Suite(.serialized) struct BisectTests {
  /// What bisect is asked: the customers the DELETE removes.
  static let question = "SELECT count(*) FROM customer WHERE region = 'EU'"

  /// ⌈log₂(records)⌉ + 2, the issue's bound.
  func bound(_ records: Int) -> Int { Int(log2(Double(records)).rounded(.up)) + 2 }

  /// What `reel bisect --json` found; checks the bound and that the change lies in
  /// `window` (after the bookmark before the DELETE, at or before the one after it).
  func bisect(_ store: TestStore, _ volume: String, _ arguments: [String], window: ClosedRange<Seq>) throws -> (
    before: Int, after: Int
  ) {
    let result = try store.reelCommand(["bisect", volume] + arguments + ["--json"])
    try #require(result.succeeded, "\(result.output)")
    let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    let records = try #require(report["records"] as? Int)
    let evaluations = try #require(report["evaluations"] as? [[String: Any]])
    print("BisectTests: \(evaluations.count) evaluations over \(records) records; DELETE in seq \(window)")
    #expect(evaluations.count <= bound(records), "\(evaluations.count) evaluations for \(records) records")
    #expect(records > 64, "a history of \(records) records tests little")
    let after = try #require(report["after"] as? [String: Any], "no change found: \(result.stdout)")
    let before = try #require(report["before"] as? [String: Any])
    let found = try #require(after["seq"] as? Int)
    #expect(window.contains(Seq(found)), "the change was found at seq \(found), the DELETE is in \(window)")
    #expect(evaluations.allSatisfy { $0["failed"] as? Bool == false }, "an evaluation failed: \(evaluations)")
    return (try #require(before["seq"] as? Int), found)
  }

  /// A stream of `count` one-row transactions into `orders` (ids from `first`).
  static func orders(_ first: Int, _ count: Int) -> String {
    (first..<first + count).map { "INSERT INTO orders(id, amount) VALUES (\($0), \($0 % 97));" }.joined(separator: "\n")
  }

  @Test(arguments: ["wal", "delete"]) func sqliteDeleteIsFoundAtItsRecord(journalMode: String) throws {
    let store = try TestStore()
    try store.createVolume("fs", size: "64M")
    let server = try ServerProcess(store: store, volumes: ["fs"])
    let kernel = try KernelMount(in: store.directory.path)
    try kernel.connect(store.uri("fs"), servedBy: server)
    try kernel.formatExt4(["-b", "4096"])
    try kernel.mount()
    let database = kernel.mountPoint + "/shop.db"
    let sqlite3 = try tool("sqlite3")
    // In rollback-journal mode a commit is the journal's deletion, which SQLite makes
    // durable (fsyncs the folder) only with synchronous=EXTRA; with FULL, the default, the
    // commit reaches the disk with ext4's next journal commit, seconds after sqlite3
    // returned, and bisect rightly finds it there, after the bookmark taken on return.
    let durable = journalMode == "delete" ? "PRAGMA synchronous=EXTRA;\n" : ""
    func sql(_ script: String) throws {
      let result = try run(sqlite3, [database], input: Array((durable + script).utf8))
      try #require(result.succeeded, "sqlite3: \(script.prefix(200)): \(result.stderr)")
    }
    let customers = (1...300).map { "(\($0), '\($0 % 3 == 0 ? "US" : "EU")', 'customer \($0)')" }
    try sql(
      """
      PRAGMA journal_mode=\(journalMode);
      CREATE TABLE customer(id INTEGER PRIMARY KEY, region TEXT, name TEXT);
      CREATE TABLE orders(id INTEGER PRIMARY KEY, amount INTEGER);
      INSERT INTO customer VALUES \(customers.joined(separator: ", "));
      \(Self.orders(0, 30))
      """)
    try runChecked(try tool("sync"), [])
    _ = try store.bookmark("fs", "loaded")
    try sql(Self.orders(30, 40))
    let beforeDelete = try store.bookmark("fs", "before-delete")
    try sql("DELETE FROM customer WHERE region = 'EU';")
    let afterDelete = try store.bookmark("fs", "after-delete")
    try sql(Self.orders(70, 40))
    try kernel.unmount()
    _ = try store.bookmark("fs", "end")
    #expect(try kernel.disconnect() == 0)
    #expect(server.stop() == 0)

    let (before, after) = try bisect(
      store, "fs", ["--from", "loaded", "--to", "end", "--sql", Self.question, "--db", "/shop.db"],
      window: (beforeDelete + 1)...afterDelete)
    // The oracle: sqlite3 on the kernel mount of the image restored at both records.
    for (seq, expected) in [(before, "200"), (after, "0")] {
      let image = store.directory.path + "/restored.img"
      try #require(
        store.reelCommand(["restore", "fs", "--at", "seq:\(seq)", "--output", image, "--force"]).succeeded)
      try kernel.mount(image, options: "loop")
      let counted = try runChecked(sqlite3, [kernel.mountPoint + "/shop.db", Self.question]).stdout
      try kernel.unmount()
      #expect(counted.trimmingCharacters(in: .whitespacesAndNewlines) == expected, "sqlite3 at seq \(seq)")
    }
  }

  @Test func postgresDeleteIsFoundAtItsRecord() throws {
    guard FileManager.default.isExecutableFile(atPath: PostgresCluster.binaries + "/postgres") else {
      throw SupportError("PostgreSQL 15 is not installed (apt-get install postgresql-15)")
    }
    let store = try TestStore()
    try store.createVolume("pg", size: "128M")
    let server = try ServerProcess(store: store, volumes: ["pg"])
    let pg = try PostgresOnServedVolume(store: store, volume: "pg", server: server)
    let cluster = pg.cluster
    let work = pg.work
    // The server stops before the file system is unmounted, whatever happens.
    defer { withExtendedLifetime(pg) {} }
    try cluster.psql(
      """
      CREATE TABLE customer(id int PRIMARY KEY, region text, name text);
      CREATE TABLE orders(id int PRIMARY KEY, amount int);
      INSERT INTO customer SELECT i, CASE WHEN i % 3 = 0 THEN 'US' ELSE 'EU' END, 'customer ' || i
        FROM generate_series(1, 300) i;
      CHECKPOINT;
      """)
    func orders(_ first: Int, _ count: Int) throws {
      for id in first..<first + count { try cluster.psql("INSERT INTO orders VALUES (\(id), \(id % 97))") }
    }
    try orders(0, 20)
    _ = try store.bookmark("pg", "loaded")
    try orders(20, 25)
    let beforeDelete = try store.bookmark("pg", "before-delete")
    try cluster.psql("DELETE FROM customer WHERE region = 'EU'")
    let afterDelete = try store.bookmark("pg", "after-delete")
    try orders(45, 25)
    pg.cluster.stop()
    try pg.kernel.unmount()
    _ = try store.bookmark("pg", "end")
    #expect(try pg.kernel.disconnect() == 0)
    #expect(server.stop() == 0)

    let scratch = work.path + "/scratch"
    try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    let (before, after) = try bisect(
      store, "pg",
      ["--from", "loaded", "--to", "end", "--pg", Self.question, "--pgdata", "/data", "--scratch", scratch],
      window: (beforeDelete + 1)...afterDelete)
    // Every evaluation's throwaway server is gone, and its folder.
    #expect(PostgresCluster.processes(mentioning: scratch).isEmpty)
    #expect(try FileManager.default.contentsOfDirectory(atPath: scratch).isEmpty)
    for (seq, expected) in [(before, "200"), (after, "0")] {
      // `--store` before `--`: what follows goes to psql.
      let result = try run(
        store.reel,
        [
          "pg", "pg", "--at", "seq:\(seq)", "--pgdata", "/data", "--sql", Self.question, "--store", store.root, "--",
          "-t",
        ])
      try #require(result.succeeded, "reel pg at seq \(seq): \(result.stderr)")
      #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == expected, "reel pg at seq \(seq)")
    }
  }
}
