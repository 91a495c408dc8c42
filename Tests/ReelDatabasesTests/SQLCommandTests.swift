import Foundation
import ReelCore
import ReelTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// `reel sql` run as a user would, on the volume `SQLiteFixtures` makes.
@Suite(.serialized) struct SQLCommandTests {
  @Test func dumpPutsRowsBackIntoALiveDatabase() throws {
    let fixtures = try SQLiteFixtures()
    // The live database lost rows 3 to 6 and some WAL rows since the point.
    let live = try fixtures.copyOut("data/app/wal.db")
    let expected = try SQLiteFixtures.oracle(live, SQLiteFixtures.everything)
    try fixtures.sqlite(live, "DELETE FROM t WHERE id BETWEEN 3 AND 6 OR name LIKE 'wal1%';")
    #expect(try SQLiteFixtures.oracle(live, SQLiteFixtures.everything) != expected)
    let dump = try fixtures.store.reelCommand([
      "sql", "vm", "--at", "latest", "--db", "/data/app/wal.db", "--dump", "t", "--where",
      "id BETWEEN 3 AND 6 OR name LIKE 'wal1%'",
    ])
    #expect(dump.succeeded, "\(dump.stderr)")
    #expect(dump.stdout.contains("CREATE TABLE IF NOT EXISTS t("), "\(dump.stdout.prefix(500))")
    #expect(dump.stdout.contains("CREATE INDEX IF NOT EXISTS t_name"), "\(dump.stdout.suffix(500))")
    #expect(dump.stdout.contains("-- 115 rows"), "\(dump.stdout.suffix(200))")
    let restored = try run(try tool("sqlite3"), ["-bail", live], input: Array(dump.stdout.utf8))
    #expect(restored.succeeded, "\(restored.output)")
    #expect(try SQLiteFixtures.oracle(live, SQLiteFixtures.everything) == expected)

    // Into an empty database: the table and its index are made, every value reads back
    // with its storage class (17-digit reals, infinities, NULs in text, invalid UTF-8).
    let empty = fixtures.folder + "/empty.db"
    let whole = try fixtures.store.reelCommand(["sql", "vm", "--at", "latest", "--db", "/rollback.db", "--dump", "t"])
    #expect(whole.succeeded, "\(whole.stderr)")
    #expect(try run(try tool("sqlite3"), ["-bail", empty], input: Array(whole.stdout.utf8)).succeeded)
    #expect(
      try SQLiteFixtures.oracle(empty, SQLiteFixtures.everything)
        == (try SQLiteFixtures.oracle(try fixtures.copyOut("rollback.db"), SQLiteFixtures.everything)))
    #expect(try SQLiteFixtures.oracle(empty, "SELECT name FROM sqlite_schema WHERE type = 'index'") == ["t_name"])

    let unknown = try fixtures.store.reelCommand([
      "sql", "vm", "--at", "latest", "--db", "/rollback.db", "--dump", "nope",
    ])
    #expect(unknown.status == 66 && unknown.stderr.contains("its tables: t"), "\(unknown.stderr)")
  }

  @Test func tableCSVAndJSONOutput() throws {
    let fixtures = try SQLiteFixtures()
    let sql = "SELECT id, name, score, data FROM t WHERE id IN (1, 2, 4, 7) ORDER BY id"
    let table = try fixtures.store.reelCommand(["sql", "vm", sql, "--at", "latest", "--db", "/rollback.db"])
    #expect(table.succeeded, "\(table.stderr)")
    #expect(
      table.stdout == """
        id  name                  score      data
        --  --------------------  ---------  ---------
         1  it's                        0.1  X'00ff10'
         2  NULL                     1e+300  NULL
         4  two\\nlines, "quoted"  -2.5e-300  X'000000'
         7                            1e999  X'27'
        (4 rows)

        """, "\(table.stdout)")
    // Past the rows measured for the widths, rows stream with the same widths.
    let long = try fixtures.store.reelCommand([
      "sql", "vm", "SELECT id, length(v) AS size FROM t", "--at", "latest", "--db", "/big.db",
    ])
    let longLines = long.stdout.split(separator: "\n")
    #expect(longLines.count == 3003 && longLines.last == "(3000 rows)", "\(long.stdout.suffix(200))")
    #expect(longLines[1] == "----  ----" && longLines[2001] == "2000   200", "\(longLines.prefix(3))")
    let csv = try fixtures.store.reelCommand(["sql", "vm", sql, "--at", "latest", "--db", "/rollback.db", "--csv"])
    let expectedCSV = [
      "id,name,score,data", "1,it's,0.1,X'00ff10'", "2,,1e+300,", #"4,"two"#,
      #"lines, ""quoted""",-2.5e-300,X'000000'"#,
      "7,,1e999,X'27'", "",
    ]
    #expect(csv.stdout == expectedCSV.joined(separator: "\n"), "\(csv.stdout)")
    let json = try fixtures.store.reelCommand(["sql", "vm", sql, "--at", "latest", "--db", "/rollback.db", "--json"])
    let lines = json.stdout.split(separator: "\n")
    #expect(lines.count == 4)
    #expect(lines.first == #"{"id":1,"name":"it's","score":0.1,"data":{"hex":"00ff10"}}"#, "\(json.stdout)")
    #expect(lines.last == #"{"id":7,"name":"","score":"Infinity","data":{"hex":"27"}}"#, "\(json.stdout)")
    for line in lines { #expect(try JSONSerialization.jsonObject(with: Data(line.utf8)) is [String: Any]) }
  }

  @Test func listFindsDatabasesByTheirHeader() throws {
    let fixtures = try SQLiteFixtures()
    let list = try fixtures.store.reelCommand(["sql", "vm", "--at", "latest", "--list"])
    #expect(list.succeeded, "\(list.stderr)")
    let paths = list.stdout.split(separator: "\n").map { String($0.split(separator: " ").first ?? "") }
    #expect(
      paths == [
        "/big.db", "/data/app/wal.db", "/data/unreadable.db", "/hot.db", "/rollback.db", "/tail.db", "/truncated.db",
      ], "\(list.stdout)")
    #expect(list.stdout.contains("/data/app/wal.db  "), "\(list.stdout)")
    let wal = try #require(list.stdout.split(separator: "\n").first { $0.hasPrefix("/data/app/wal.db ") })
    #expect(wal.contains("page 4096") && wal.contains("  wal  -wal "), "\(wal)")
    let hot = try #require(list.stdout.split(separator: "\n").first { $0.hasPrefix("/hot.db ") })
    #expect(hot.contains("rollback  -journal "), "\(hot)")
    let under = try fixtures.store.reelCommand(["sql", "vm", "--at", "latest", "--list", "--db", "/data", "--json"])
    let objects = try under.stdout.split(separator: "\n").map {
      try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
    }
    #expect(objects.map { $0["path"] as? String } == ["/data/app/wal.db", "/data/unreadable.db"], "\(under.stdout)")
    #expect(objects.first?["journal_mode"] as? String == "wal")
    #expect(objects.first?["page_size"] as? Int == 4096)
  }

  @Test func errorsHaveTheirExitCodesAndTheStoreIsNotWritten() throws {
    let fixtures = try SQLiteFixtures()
    let before = try storeFiles(fixtures.store.root)
    func sql(_ arguments: [String]) throws -> CommandResult {
      try fixtures.store.reelCommand(["sql", "vm", "--at", "latest"] + arguments)
    }
    let write = try sql(["--db", "/rollback.db", "DELETE FROM t WHERE id = 1"])
    #expect(
      write.status == 64 && write.stderr.contains("read-only") && write.stderr.contains("--dump"), "\(write.stderr)")
    let attach = try sql(["--db", "/rollback.db", "ATTACH '/tmp/reel-sql-attached.db' AS x"])
    #expect(attach.status == 64 && attach.stderr.contains("ATTACH"), "\(attach.stderr)")
    let notSQLite = try sql(["--db", "/notes.txt", "SELECT 1"])
    #expect(notSQLite.status == 65 && notSQLite.stderr.contains("not a SQLite database"), "\(notSQLite.stderr)")
    let damaged = try sql(["--db", "/truncated.db", "SELECT count(*) FROM t"])
    #expect(damaged.status == 65 && damaged.stderr.contains("damaged"), "\(damaged.stderr)")
    let missing = try sql(["--db", "/nothing.db", "SELECT 1"])
    #expect(missing.status == 66, "\(missing.stderr)")
    let syntax = try sql(["--db", "/rollback.db", "SELEKT 1"])
    #expect(syntax.status == 64 && syntax.stderr.contains("syntax error"), "\(syntax.stderr)")
    let twoModes = try sql(["--db", "/rollback.db", "--list", "SELECT 1"])
    #expect(twoModes.status == 64, "\(twoModes.stderr)")
    let endless = try sql([
      "--db", "/big.db", "--timeout", "1",
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
    ])
    #expect(endless.status == 130 && endless.stderr.contains("--timeout 1 s"), "\(endless.stderr)")
    for path in ["/hot.db", "/data/app/wal.db", "/tail.db"] {
      #expect(try sql(["--db", path, "SELECT count(*) FROM t"]).succeeded)
    }
    #expect(!FileManager.default.fileExists(atPath: "/tmp/reel-sql-attached.db"))
    #expect(try storeFiles(fixtures.store.root) == before)
  }

  /// Every file under the store with its size, modification time and SHA-256.
  private func storeFiles(_ root: String) throws -> [String: String] {
    var files: [String: String] = [:]
    let enumerator = FileManager.default.enumerator(atPath: root)
    while let relative = enumerator?.nextObject() as? String {
      var status = stat()
      guard lstat(root + "/" + relative, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { continue }
      let hash = try runChecked(try tool("sha256sum"), [root + "/" + relative]).stdout.prefix(64)
      files[relative] = "\(status.st_size) \(status.st_mtim.tv_sec).\(status.st_mtim.tv_nsec) \(hash)"
    }
    return files
  }
}
