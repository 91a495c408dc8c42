import Foundation
import GRDBSQLite
import ReelCore

#if canImport(Glibc)
  import Glibc
#endif

// The C API of one SQLite connection (handles, C strings, column pointers) stays in this
// file; `SQLiteAtPoint` speaks in Swift values.

/// Why SQLite stopped: the codes `SQLiteAtPoint` turns into errors a person can act on.
struct SQLiteFailure: Error {
  var code: Int32
  var message: String
  /// What the authorizer refused ("INSERT into t"), when it refused something.
  var refused: String?

  var primaryCode: Int32 { code & 0xff }
}

/// What a query may still do, read by the progress handler and before each file read.
final class QueryWatch: @unchecked Sendable {
  private let lock = NSLock()
  private var deadline: UInt64?
  private var expired = false
  // The connection to interrupt; only passed to sqlite3_interrupt, which is thread-safe.
  fileprivate var handle: OpaquePointer?

  func start(timeout: Double?) {
    lock.withLock {
      expired = false
      deadline = timeout.map { monotonicNanoseconds() + UInt64(max(0, $0) * 1e9) }
    }
  }

  func stop() { lock.withLock { deadline = nil } }

  var timedOut: Bool { lock.withLock { expired } }

  /// True when the query must stop (the deadline passed or SIGINT/SIGTERM arrived).
  func shouldStop() -> Bool {
    if Interrupt.signal != nil { return true }
    return lock.withLock {
      guard let deadline, monotonicNanoseconds() >= deadline else { return false }
      expired = true
      return true
    }
  }

  /// For reads the progress handler does not see (one VM step can read a whole table).
  func checkDuringRead() {
    if shouldStop(), let handle { sqlite3_interrupt(handle) }
  }
}

private func monotonicNanoseconds() -> UInt64 {
  var now = timespec()
  clock_gettime(CLOCK_MONOTONIC, &now)
  return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
}

/// One connection through the "reel-at-point" VFS, refusing anything but reads.
final class SQLiteConnection {
  private var handle: OpaquePointer?
  let watch = QueryWatch()
  /// What the authorizer refused last (read after a failed prepare).
  fileprivate var refused: String?
  /// Whether the authorizer is on (after the connection's own setup).
  fileprivate var guarding = false

  init(name: String) throws {
    var db: OpaquePointer?
    let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE
    let status = sqlite3_open_v2(name, &db, flags, SQLiteVFS.name)
    handle = db
    guard status == SQLITE_OK else {
      let failure = SQLiteFailure(code: status, message: db.map { String(cString: sqlite3_errmsg($0)) } ?? "")
      sqlite3_close_v2(db)
      handle = nil
      throw failure
    }
    watch.handle = db
    sqlite3_extended_result_codes(db, 1)
    // No automatic checkpoints; query_only makes SQLite itself refuse writes.
    sqlite3_wal_autocheckpoint(db, 0)
    try execute("PRAGMA query_only = 1")
    sqlite3_progress_handler(
      db, 1000,
      { context in
        Unmanaged<SQLiteConnection>.fromOpaque(context!).takeUnretainedValue().watch.shouldStop() ? 1 : 0
      }, Unmanaged.passUnretained(self).toOpaque())
    sqlite3_set_authorizer(db, authorize, Unmanaged.passUnretained(self).toOpaque())
    guarding = true
  }

  deinit { close() }

  func close() {
    guard let handle else { return }
    sqlite3_progress_handler(handle, 0, nil, nil)
    sqlite3_set_authorizer(handle, nil, nil)
    sqlite3_close_v2(handle)
    self.handle = nil
    watch.handle = nil
  }

  /// Runs statements that return nothing (the connection's setup).
  func execute(_ sql: String) throws {
    let status = sqlite3_exec(handle, sql, nil, nil, nil)
    guard status == SQLITE_OK else { throw failure(status) }
  }

  /// Prepares exactly one statement, steps through its rows and hands each to `row`
  /// (return false to stop). `columns` is called once, before the first row.
  func run(
    _ sql: String, columns: ([String]) throws -> Void, row: ([SQLiteValue]) throws -> Bool
  ) throws {
    refused = nil
    var statement: OpaquePointer?
    var tail: UnsafePointer<CChar>?
    let utf8 = Array(sql.utf8CString)
    let status = utf8.withUnsafeBufferPointer { buffer in
      let start = buffer.baseAddress!
      let status = sqlite3_prepare_v2(handle, start, Int32(buffer.count), &statement, &tail)
      if status == SQLITE_OK, let tail {
        // Anything after the first statement must be blanks or comments.
        var next: OpaquePointer?
        let nextStatus = sqlite3_prepare_v2(handle, tail, -1, &next, nil)
        sqlite3_finalize(next)
        if nextStatus != SQLITE_OK { return nextStatus }
        if next != nil { return SQLITE_MISUSE }
      }
      return status
    }
    defer { sqlite3_finalize(statement) }
    if status == SQLITE_MISUSE {
      throw SQLiteFailure(code: SQLITE_MISUSE, message: "more than one statement")
    }
    guard status == SQLITE_OK else { throw failure(status) }
    guard let statement else {
      throw SQLiteFailure(code: SQLITE_MISUSE, message: "no statement (only blanks or comments)")
    }
    guard sqlite3_stmt_readonly(statement) != 0 else {
      throw SQLiteFailure(code: SQLITE_READONLY, message: "the statement would write", refused: "a write")
    }
    let count = Int(sqlite3_column_count(statement))
    try columns((0..<count).map { String(cString: sqlite3_column_name(statement, Int32($0))) })
    while true {
      let step = sqlite3_step(statement)
      if step == SQLITE_DONE { return }
      guard step == SQLITE_ROW else { throw failure(step) }
      var values: [SQLiteValue] = []
      values.reserveCapacity(count)
      for index in 0..<Int32(count) { values.append(value(statement, index)) }
      guard try row(values) else { return }
    }
  }

  private func value(_ statement: OpaquePointer, _ index: Int32) -> SQLiteValue {
    switch sqlite3_column_type(statement, index) {
    case SQLITE_INTEGER: return .integer(sqlite3_column_int64(statement, index))
    case SQLITE_FLOAT: return .real(sqlite3_column_double(statement, index))
    case SQLITE_TEXT:
      let pointer = sqlite3_column_text(statement, index)
      let count = Int(sqlite3_column_bytes(statement, index))
      return .text(pointer.map { Array(UnsafeBufferPointer(start: $0, count: count)) } ?? [])
    case SQLITE_BLOB:
      let pointer = sqlite3_column_blob(statement, index)
      let count = Int(sqlite3_column_bytes(statement, index))
      guard let pointer, count > 0 else { return .blob([]) }
      return .blob(Array(UnsafeRawBufferPointer(start: pointer, count: count)))
    default: return .null
    }
  }

  private func failure(_ status: Int32) -> SQLiteFailure {
    let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(status))
    return SQLiteFailure(code: status, message: message, refused: refused)
  }
}

/// Pragmas that only read even when given an argument (a table or index name, a limit),
/// and the two that only tune this connection's memory for a heavy query.
private let readingPragmasWithArgument: Set<String> = [
  "table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list",
  "foreign_key_check", "integrity_check", "quick_check", "cache_size", "temp_store",
]
/// Pragmas that write although they take no argument.
private let writingPragmas: Set<String> = ["wal_checkpoint", "optimize", "incremental_vacuum"]

/// The authorizer: reading is allowed, anything that would change a database, attach a
/// file or change the connection's settings is refused (and remembered for the message).
private func authorize(
  _ context: UnsafeMutableRawPointer?, _ action: Int32, _ first: UnsafePointer<CChar>?,
  _ second: UnsafePointer<CChar>?, _ database: UnsafePointer<CChar>?, _ trigger: UnsafePointer<CChar>?
) -> Int32 {
  let connection = Unmanaged<SQLiteConnection>.fromOpaque(context!).takeUnretainedValue()
  guard connection.guarding else { return SQLITE_OK }
  let name = first.map { String(cString: $0) } ?? ""
  switch action {
  case SQLITE_SELECT, SQLITE_READ, SQLITE_FUNCTION, SQLITE_RECURSIVE, SQLITE_TRANSACTION, SQLITE_SAVEPOINT:
    return SQLITE_OK
  case SQLITE_PRAGMA:
    let pragma = name.lowercased()
    if writingPragmas.contains(pragma) { break }
    if second == nil || readingPragmasWithArgument.contains(pragma) { return SQLITE_OK }
  default:
    break
  }
  if connection.refused == nil { connection.refused = describe(action, name, second.map { String(cString: $0) }) }
  return SQLITE_DENY
}

private func describe(_ action: Int32, _ first: String, _ second: String?) -> String {
  switch action {
  case SQLITE_INSERT: return "INSERT into \(first)"
  case SQLITE_UPDATE: return "UPDATE of \(first)"
  case SQLITE_DELETE: return "DELETE from \(first)"
  case SQLITE_ATTACH: return "ATTACH of \(first.isEmpty ? "a file" : first)"
  case SQLITE_DETACH: return "DETACH"
  case SQLITE_PRAGMA: return "PRAGMA \(first)\(second.map { " = \($0)" } ?? "")"
  case SQLITE_ALTER_TABLE: return "ALTER TABLE \(second ?? first)"
  case SQLITE_REINDEX: return "REINDEX"
  case SQLITE_ANALYZE: return "ANALYZE"
  case SQLITE_CREATE_INDEX, SQLITE_CREATE_TABLE, SQLITE_CREATE_TEMP_INDEX, SQLITE_CREATE_TEMP_TABLE,
    SQLITE_CREATE_TEMP_TRIGGER, SQLITE_CREATE_TEMP_VIEW, SQLITE_CREATE_TRIGGER, SQLITE_CREATE_VIEW,
    SQLITE_CREATE_VTABLE:
    return "CREATE \(first)"
  case SQLITE_DROP_INDEX, SQLITE_DROP_TABLE, SQLITE_DROP_TEMP_INDEX, SQLITE_DROP_TEMP_TABLE,
    SQLITE_DROP_TEMP_TRIGGER, SQLITE_DROP_TEMP_VIEW, SQLITE_DROP_TRIGGER, SQLITE_DROP_VIEW, SQLITE_DROP_VTABLE:
    return "DROP \(first)"
  default: return "a statement that changes the database"
  }
}
