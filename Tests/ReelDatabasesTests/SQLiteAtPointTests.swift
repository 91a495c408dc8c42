import Foundation
import ReelCore
import ReelDatabases
import ReelFiles
import ReelTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// SQLite databases read in place from a volume, compared with sqlite3 run on copies of the
/// same files (`SQLiteFixtures`).
@Suite(.serialized) struct SQLiteAtPointTests {
  @Test func rollbackDatabaseAnswersAsSqlite3() throws {
    let fixtures = try SQLiteFixtures()
    let database = try fixtures.open("/rollback.db")
    let copy = try fixtures.copyOut("rollback.db")
    let expected = try SQLiteFixtures.oracle(copy, SQLiteFixtures.everything)
    #expect(expected.count == 8)
    #expect(try SQLiteFixtures.answer(database, SQLiteFixtures.everything) == expected)
    let sums = "SELECT count(*), sum(n), quote(total(length(data))), group_concat(hex(name), '.') FROM t"
    #expect(try SQLiteFixtures.answer(database, sums) == (try SQLiteFixtures.oracle(copy, sums)))
    #expect(database.overlayChanges.isEmpty, "\(database.overlayChanges)")
  }

  @Test func committedWALTransactionsAreVisibleAndAnUncommittedTailIsNot() throws {
    let fixtures = try SQLiteFixtures()
    // Through a symbolic link: the WAL is the one beside the link's target.
    let database = try fixtures.open("/link.db")
    let copy = try fixtures.copyOut("data/app/wal.db")
    let expected = try SQLiteFixtures.oracle(copy, SQLiteFixtures.everything)
    #expect(expected.count == 507, "\(expected.count)")
    #expect(try SQLiteFixtures.answer(database, SQLiteFixtures.everything) == expected)
    // The WAL matters: the database file alone holds none of those transactions.
    let alone = try fixtures.copyOut("data/app/wal.db", withSiblings: false)
    #expect(try SQLiteFixtures.oracle(alone, "SELECT count(*) FROM t") == ["0"])

    let tail = try fixtures.open("/tail.db")
    let tailCopy = try fixtures.copyOut("tail.db")
    let count = "SELECT count(*), count(data), quote(total(n)) FROM t"
    let tailExpected = try SQLiteFixtures.oracle(tailCopy, count)
    #expect(tailExpected.first?.hasPrefix("508\u{1F}6\u{1F}") == true, "\(tailExpected)")
    #expect(try SQLiteFixtures.answer(tail, count) == tailExpected)
    #expect(try SQLiteFixtures.answer(tail, "SELECT count(*) FROM t WHERE name LIKE 'uncommitted%'") == ["0"])
    #expect(try SQLiteFixtures.answer(tail, "SELECT count(*) FROM t WHERE name = 'committed last'") == ["1"])
    // Nothing went to the files: the WAL index lives in memory.
    #expect(!tail.overlayChanges.contains("database"), "\(tail.overlayChanges)")
  }

  @Test func aHotJournalIsRolledBackInMemory() throws {
    let fixtures = try SQLiteFixtures()
    let database = try fixtures.open("/hot.db")
    let copy = try fixtures.copyOut("hot.db")
    let query = "SELECT count(*), sum(length(v)), min(v), max(id), count(*) FILTER (WHERE v LIKE 'BEFORE%') FROM t"
    let expected = try SQLiteFixtures.oracle(copy, query)
    #expect(expected.first?.hasPrefix("300\u{1F}") == true, "\(expected)")
    #expect(try SQLiteFixtures.answer(database, query) == expected)
    #expect(
      try SQLiteFixtures.answer(database, "SELECT quote(v) FROM t ORDER BY id")
        == (try SQLiteFixtures.oracle(copy, "SELECT quote(v) FROM t ORDER BY id")))
    // The journal matters: the database file alone holds part of the open transaction.
    let alone = try fixtures.copyOut("hot.db", withSiblings: false)
    let withoutJournal = try run(try tool("sqlite3"), [alone, "SELECT count(*) FROM t"])
    #expect(withoutJournal.stdout != "300\n", "\(withoutJournal.output)")
    // The rollback wrote into the overlay (and deleted the journal there), nowhere else.
    #expect(database.overlayChanges.contains("database") && database.overlayChanges.contains("journal"))
    let again = try fixtures.open("/hot.db")
    #expect(try SQLiteFixtures.answer(again, query) == expected)
  }

  @Test func notSQLiteEncryptedDamagedAndMissingAreNamedErrors() throws {
    let fixtures = try SQLiteFixtures()
    func failure(_ path: String) -> ReelError? {
      do {
        _ = try fixtures.open(path)
        return nil
      } catch {
        return error as? ReelError
      }
    }
    let text = try #require(failure("/notes.txt"))
    #expect(text.kind == .incompatible && text.exitCode == 65)
    #expect(text.message.contains("/notes.txt") && text.message.contains("(\"hello, not a dat\")"), "\(text)")
    let pdf = try #require(failure("/data/looks.pdf"))
    #expect(pdf.message.contains("25 50 44 46 ab"), "\(pdf)")
    let unreadable = try #require(failure("/data/unreadable.db"))
    #expect(unreadable.kind == .corrupt && unreadable.message.contains("encrypted or damaged"), "\(unreadable)")
    #expect(unreadable.message.contains("/data/unreadable.db"), "\(unreadable)")
    // sqlite3 refuses the same files.
    #expect(
      try run(try tool("sqlite3"), [try fixtures.copyOut("data/unreadable.db"), "SELECT count(*) FROM sqlite_schema"])
        .status != 0)
    let truncatedCopy = try fixtures.copyOut("truncated.db")
    #expect(try run(try tool("sqlite3"), [truncatedCopy, "SELECT count(*) FROM t"]).status != 0)
    let truncated = try #require(failure("/truncated.db"))
    #expect(truncated.kind == .corrupt && truncated.message.contains("damaged"), "\(truncated)")
    let missing = try #require(failure("/data/nothing.db"))
    #expect(missing.kind == .notFound, "\(missing)")
    let folder = try #require(failure("/data"))
    #expect(folder.kind == .usage && folder.message.contains("a folder"), "\(folder)")
  }

  @Test func sqlThatWritesIsRefusedAndNothingLeavesTheOverlay() throws {
    let fixtures = try SQLiteFixtures()
    let database = try fixtures.open("/data/app/wal.db")
    let before = try SQLiteFixtures.answer(database, SQLiteFixtures.everything)
    let attached = fixtures.folder + "/attached.db"
    for sql in [
      "DELETE FROM t", "UPDATE t SET name = 'x'", "INSERT INTO t(name) VALUES ('x')", "DROP TABLE t",
      "CREATE TABLE u(a)", "CREATE TEMP TABLE u(a)", "ALTER TABLE t ADD COLUMN z", "VACUUM",
      "VACUUM INTO '\(fixtures.folder)/vacuumed.db'", "ATTACH '\(attached)' AS other", "PRAGMA query_only = 0",
      "PRAGMA journal_mode = DELETE", "PRAGMA wal_checkpoint", "REINDEX", "ANALYZE",
      "WITH x AS (SELECT 1) DELETE FROM t",
    ] {
      #expect(throws: ReelError.self, "\(sql)") { try database.query(sql) }
      do {
        _ = try database.query(sql)
      } catch let error as ReelError {
        #expect(error.kind == .usage && error.message.contains("read-only"), "\(sql): \(error)")
        #expect(error.remedy?.contains("--dump") == true)
      }
    }
    #expect(!FileManager.default.fileExists(atPath: attached))
    #expect(!FileManager.default.fileExists(atPath: fixtures.folder + "/vacuumed.db"))
    #expect(try SQLiteFixtures.answer(database, SQLiteFixtures.everything) == before)
    // Reading pragmas and the schema work.
    #expect(try database.query("PRAGMA table_info(t)").rows.count == 5)
    #expect(try database.query("PRAGMA user_version").rows == [[.integer(0)]])
    #expect(try database.query("PRAGMA cache_size = -65536").rows.isEmpty)
    #expect(try database.query("PRAGMA cache_size").rows == [[.integer(-65536)]])
  }

  @Test func aQueryPastItsTimeoutIsStopped() throws {
    let fixtures = try SQLiteFixtures()
    let database = try fixtures.open("/big.db")
    let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    do {
      _ = try database.query(endless, timeout: 0.5)
      Issue.record("an endless query returned")
    } catch let error as ReelError {
      #expect(error.kind == .interrupted && error.message.contains("--timeout 0.5 s"), "\(error)")
    }
    // The connection is still usable after.
    #expect(try database.query("SELECT count(*) FROM t", timeout: 60).rows == [[.integer(3000)]])
  }

  @Test func canonicalTextTellsStorageClassesApart() {
    let values: [SQLiteValue] = [.integer(1), .real(1), .text("1"), .blob([0x31]), .null]
    let texts = values.map { QueryResult(columns: ["a"], rows: [[$0]]).canonicalText }
    #expect(Set(texts).count == values.count, "\(texts)")
    #expect(QueryResult(columns: ["a"], rows: [[.real(0.1)]]).canonicalText == "(\"a\")\n(0.1)\n")
    #expect(SQLiteValue.text("it's").sqlLiteral == "'it''s'")
    #expect(SQLiteValue.text([0x61, 0, 0xff]).sqlLiteral == "CAST(X'6100ff' AS TEXT)")
    #expect(SQLiteValue.real(-.infinity).sqlLiteral == "-1e999")
  }
}
