import Foundation
import ReelCore
import ReelFiles

/// One SQLite database inside a file system at one point, opened in place: SQLite reads
/// the database, its `-wal` and its `-journal` as the file system held them then (through
/// the "reel-at-point" VFS), replays committed WAL transactions into its in-memory WAL
/// index and rolls a hot journal back into an in-memory overlay, exactly as it would when
/// opening the files on a host after a crash. Nothing is written to the file system, the
/// volume or the store; SQL that would write is refused.
///
/// One query at a time (calls are serialized); close it, or let it go, when done.
package final class SQLiteAtPoint: @unchecked Sendable {
  /// The database's path inside the file system, links resolved.
  package let path: [UInt8]
  /// Where the file system is, for messages: "volume vm at seq 42 (…)".
  package let place: String
  private let database: SQLiteDatabaseFiles
  private var connection: SQLiteConnection?
  private let lock = NSLock()

  package var displayPath: String { FilePath.display(path) }

  /// The 16 bytes every SQLite database file starts with.
  package static let magic = Array("SQLite format 3\0".utf8)

  /// Opens `path` (absolute inside `files`; links followed there) and reads its schema, so
  /// a file that is not SQLite, is encrypted or damaged fails here, with its name.
  package static func open(
    files: any FileSystemReading, path: [UInt8], place: String = "the file system"
  ) throws -> SQLiteAtPoint {
    let resolver = PathResolver(files: files, place: place)
    let file = try resolver.resolve(path)
    guard file.attributes.kind == .regular else {
      throw ReelError(
        .usage, "\(file.displayPath) is \(FileKinds.phrase(file.attributes.kind)) in \(place), not a SQLite database",
        remedy: "find the databases with `reel sql NAME --at POINT --list`")
    }
    if file.attributes.size > 0 {
      let head = try files.read(file.inode, offset: 0, length: 100)
      guard head.count >= 100, Array(head.prefix(16)) == magic else {
        throw ReelError(
          .incompatible,
          "\(file.displayPath) in \(place) is not a SQLite database: it \(SQLiteHeader.describeStart(head)), where a SQLite database starts with \"SQLite format 3\\0\"",
          remedy: "find the databases with `reel sql NAME --at POINT --list`")
      }
    }
    func sibling(_ suffix: String) throws -> SQLiteOverlayFile {
      // Only "not there" means no WAL or journal: a store that cannot be read must not
      // pass for a database without its WAL.
      let found: ResolvedFile?
      do {
        found = try resolver.resolve(file.path + Array(suffix.utf8))
      } catch let error as ReelError where error.kind == .notFound {
        found = nil
      }
      guard let found, found.attributes.kind == .regular else {
        return SQLiteOverlayFile(files: files, inode: nil, size: 0)
      }
      return SQLiteOverlayFile(files: files, inode: found.inode, size: found.attributes.size)
    }
    let database = SQLiteDatabaseFiles(
      name: SQLiteVFS.uniqueName(for: file.displayPath),
      main: SQLiteOverlayFile(
        files: files, inode: file.inode, size: file.attributes.size),
      wal: try sibling("-wal"), journal: try sibling("-journal"))
    let opened = SQLiteAtPoint(path: file.path, place: place, database: database)
    try opened.start()
    return opened
  }

  /// `path` in the file system of `opened`.
  package static func open(_ opened: FilesAtPoint, path: String) throws -> SQLiteAtPoint {
    try open(files: opened.files, path: Array(path.utf8), place: opened.place)
  }

  private init(path: [UInt8], place: String, database: SQLiteDatabaseFiles) {
    self.path = path
    self.place = place
    self.database = database
  }

  deinit { close() }

  private func start() throws {
    SQLiteVFS.register(database)
    do {
      let connection = try SQLiteConnection(name: database.name)
      self.connection = connection
      let watch = connection.watch
      database.withLock { database.beforeRead = { watch.checkDuringRead() } }
      // Reading the schema makes SQLite look at the files now: roll back a hot journal,
      // recover the WAL index, and find out whether this is a database at all.
      _ = try query("SELECT count(*) FROM sqlite_schema")
    } catch let failure as SQLiteFailure {
      close()
      throw error(failure)
    } catch {
      close()
      throw error
    }
  }

  /// Ends the connection without a checkpoint and forgets the overlay.
  package func close() {
    lock.withLock {
      guard let connection else { return }
      database.withLock { database.refuseExclusiveLock = true }
      connection.close()
      self.connection = nil
    }
    SQLiteVFS.unregister(database)
  }

  /// Runs one read-only statement and returns its whole result. `timeout` in seconds.
  package func query(_ sql: String, timeout: Double? = nil) throws -> QueryResult {
    var result = QueryResult(columns: [], rows: [])
    try run(sql, timeout: timeout, columns: { result.columns = $0 }) { row in
      result.rows.append(row)
      return true
    }
    return result
  }

  /// Runs one read-only statement, handing its column names to `columns` and then each row
  /// to `row` as SQLite steps to it (return false to stop early).
  package func run(
    _ sql: String, timeout: Double? = nil, columns: ([String]) throws -> Void, row: ([SQLiteValue]) throws -> Bool
  ) throws {
    try lock.withLock {
      guard let connection else {
        throw ReelError(.usage, "the database \(displayPath) in \(place) is closed")
      }
      connection.watch.start(timeout: timeout)
      defer { connection.watch.stop() }
      database.withLock { database.readError = nil }
      do {
        try connection.run(sql, columns: columns, row: row)
      } catch let failure as SQLiteFailure {
        throw error(failure, timeout: timeout, timedOut: connection.watch.timedOut)
      }
    }
  }

  /// What SQLite changed in memory while opening (a hot journal rolled back, a WAL index
  /// rebuilt): for tests and curious people; never written anywhere.
  package var overlayChanges: [String] {
    database.withLock {
      var changes: [String] = []
      if database.main.modified { changes.append("database") }
      if database.wal.modified { changes.append("wal") }
      if database.journal.modified { changes.append("journal") }
      return changes
    }
  }

  /// "5 s", "0.5 s".
  static func seconds(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? "\(Int64(value)) s" : "\(value) s"
  }

  private func error(_ failure: SQLiteFailure, timeout: Double? = nil, timedOut: Bool = false) -> any Error {
    let name = "\(displayPath) in \(place)"
    let sqliteSays = "(SQLite: \(failure.message))"
    switch failure.primaryCode {
    case SQLiteCode.interrupt:
      if timedOut, let timeout {
        return ReelError(
          .interrupted,
          "the query on \(name) ran longer than --timeout \(SQLiteAtPoint.seconds(timeout)) and was stopped",
          remedy: "give a longer --timeout, or a query that reads less")
      }
      return Interrupt.error()
    case SQLiteCode.notADatabase:
      return ReelError(
        .corrupt, "\(name) cannot be read as a SQLite database: it is encrypted or damaged \(sqliteSays)",
        remedy: "an encrypted database (SQLCipher, SEE) needs its own tools: copy it out with `reel files get`")
    case SQLiteCode.corrupt:
      return ReelError(
        .corrupt, "\(name) is damaged \(sqliteSays)",
        remedy:
          "try another point (a bookmark taken after the application committed), or copy the files out with `reel files get` and run sqlite3's .recover"
      )
    case SQLiteCode.readOnly, SQLiteCode.auth:
      let what = failure.refused.map { " (\($0))" } ?? ""
      return ReelError(
        .usage, "refused\(what): the view of \(name) is read-only",
        remedy:
          "query it with SELECT; to put rows back into the live database: reel sql NAME --at POINT --db PATH --dump TABLE [--where EXPR] | sqlite3 LIVE.db"
      )
    case SQLiteCode.ioError:
      if let readError = database.withLock({ database.readError }) { return readError }
      return ReelError(.io, "reading \(name) failed \(sqliteSays)")
    case SQLiteCode.misuse:
      return ReelError(.usage, "\(failure.message): give one SQL statement")
    case SQLiteCode.noMemory:
      return ReelError(.io, "out of memory reading \(name) \(sqliteSays)")
    default:
      return ReelError(.usage, "SQL error on \(name): \(failure.message)")
    }
  }
}

/// SQLite's primary result codes this module tells apart.
enum SQLiteCode {
  static let error: Int32 = 1
  static let auth: Int32 = 23
  static let readOnly: Int32 = 8
  static let interrupt: Int32 = 9
  static let ioError: Int32 = 10
  static let corrupt: Int32 = 11
  static let noMemory: Int32 = 7
  static let misuse: Int32 = 21
  static let notADatabase: Int32 = 26
}
