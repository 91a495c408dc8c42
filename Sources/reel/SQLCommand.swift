import ArgumentParser
import Foundation
import ReelCore
import ReelDatabases
import ReelFiles
import ReelIO
import ReelStore

struct SQLCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "sql",
    abstract: "Query a SQLite database inside a volume at any point, in place.",
    discussion: """
      SQLite reads the database PATH, its PATH-wal and its PATH-journal as the volume's \
      file system held them at POINT (nothing is copied): transactions committed into the \
      WAL are visible, an uncommitted tail is not, and a hot journal is rolled back in \
      memory, as SQLite does when it opens the files after a crash. Nothing is written to \
      the store or the volume, and SQL that would write is refused.

      Output: an aligned table (default), --csv or --json (one object per row). --dump \
      TABLE prints SQL to put rows back: reel sql NAME --at POINT --db PATH --dump TABLE \
      --where "id > 100" | sqlite3 live.db. --list finds SQLite databases (by their \
      header) under --db, or in the whole file system.
      """)

  @OptionGroup var options: StoreOption
  @Argument(help: "Volume name.") var volume: String
  @Argument(help: "One SQL statement that reads (SELECT, WITH, read-only PRAGMA).") var sql: String?
  @Option(parsing: .unconditional, help: "The point: RFC 3339 time, -10m, bookmark, seq:N, latest.")
  var at: String
  @Option(help: "The database's path inside the file system (with --list: the folder to search).")
  var db: String?
  @Option(help: "The partition holding the file system (1-based), when the volume has a partition table.")
  var partition: Int?
  @Flag(help: "CSV output (RFC 4180) with a header line.") var csv = false
  @Flag(help: "JSON Lines output: one object per row.") var json = false
  @Option(help: "Print SQL that puts TABLE's rows back (CREATE TABLE IF NOT EXISTS, INSERTs).")
  var dump: String?
  @Option(name: .customLong("where"), help: "With --dump: only the rows where this SQL expression holds.")
  var condition: String?
  @Flag(help: "List the SQLite databases in the file system (under --db when given).") var list = false
  @Option(help: "Stop a query that runs longer than this many seconds.") var timeout: Double?

  func validate() throws {
    let modes = [sql != nil, dump != nil, list].filter { $0 }.count
    guard modes == 1 else {
      throw ValidationError("give one of: a SQL statement, --dump TABLE, --list")
    }
    if csv && json { throw ValidationError("--csv and --json: choose one") }
    if condition != nil && dump == nil { throw ValidationError("--where goes with --dump TABLE") }
    if !list && db == nil { throw ValidationError("--db PATH: which database file inside the volume") }
    if let timeout, !(timeout > 0) { throw ValidationError("--timeout takes a number of seconds above 0") }
  }

  func run() throws {
    let store = try Store.open(StoreLayout.resolve(options.store))
    let opened = try FilesAtPoint.open(
      live: LiveStore(store: store), volume: volume, at: try Point.parse(at).point, partition: partition)
    for warning in opened.warnings { warn(warning) }
    Interrupt.install()
    if list {
      try listDatabases(opened)
      return
    }
    let database = try SQLiteAtPoint.open(opened, path: db ?? "/")
    defer { database.close() }
    if let dump {
      try SQLiteDump.dump(database, table: dump, where: condition, timeout: timeout) { say($0) }
    } else if let sql {
      try query(database, sql)
    }
  }

  private func query(_ database: SQLiteAtPoint, _ sql: String) throws {
    if csv || json {
      var names: [String] = []
      try database.run(
        sql, timeout: timeout,
        columns: { columns in
          names = columns
          if csv { say(SQLiteOutput.csv(columns)) }
        }
      ) { row in
        say(json ? SQLiteOutput.jsonLine(columns: names, row) : SQLiteOutput.csv(row.map(\.plainText)))
        return true
      }
      return
    }
    var printer: SQLiteTablePrinter?
    try database.run(
      sql, timeout: timeout,
      columns: { columns in
        if !columns.isEmpty { printer = SQLiteTablePrinter(columns: columns) { say($0) } }
      }
    ) {
      printer?.add($0)
      return true
    }
    guard var printer else { return }
    printer.flush()
    say("(\(printer.rows) row\(printer.rows == 1 ? "" : "s"))")
  }

  private func listDatabases(_ opened: FilesAtPoint) throws {
    let start = try opened.resolver.resolve(db ?? "/")
    var found = 0
    try SQLiteSearch.find(opened.files, from: start) { database in
      found += 1
      if json {
        say(jsonText(FoundDatabaseJSON(database)))
      } else {
        var siblings: [String] = []
        if let size = database.walSize { siblings.append("-wal \(size)") }
        if let size = database.journalSize { siblings.append("-journal \(size)") }
        say(
          "\(database.displayPath)  \(database.size) bytes  page \(database.header.pageSize)  \(database.header.isWAL ? "wal" : "rollback")\(siblings.isEmpty ? "" : "  " + siblings.joined(separator: "  "))"
        )
      }
    }
    if found == 0 && !json { warn("no SQLite database under \(start.displayPath) in \(opened.place)") }
  }
}

/// `reel sql --list --json`: one object per database found.
struct FoundDatabaseJSON: Encodable {
  let path: String
  let size: UInt64
  let pageSize: Int
  let journalMode: String
  @NullIfAbsent var walSize: UInt64?
  @NullIfAbsent var journalSize: UInt64?

  init(_ database: FoundSQLiteDatabase) {
    path = database.displayPath
    size = database.size
    pageSize = database.header.pageSize
    journalMode = database.header.isWAL ? "wal" : "rollback"
    walSize = database.walSize
    journalSize = database.journalSize
  }

  enum CodingKeys: String, CodingKey {
    case path, size
    case pageSize = "page_size"
    case journalMode = "journal_mode"
    case walSize = "wal_size"
    case journalSize = "journal_size"
  }
}
