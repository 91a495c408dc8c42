import ReelCore
import ReelFiles

/// `reel bisect --sql "SELECT …" --db PATH`: the rows of a read-only query on a SQLite
/// database read in place at the point (`SQLiteAtPoint`: WAL and hot journal as SQLite would
/// recover them). Answers compare by `QueryResult.canonicalText`: column names, then every
/// value as a SQL literal, in the order the query returned them.
package struct BisectSQLQuestion: BisectQuestion {
  package let database: String
  package let sql: String
  /// Seconds one evaluation's query may run.
  package let timeout: Double?

  package init(database: String, sql: String, timeout: Double? = nil) {
    self.database = database
    self.sql = sql
    self.timeout = timeout
  }

  package var description: String { "SQLite \(database): \(sql)" }

  package func answer(at point: FilesAtPoint) throws -> BisectAnswer {
    let opened = try SQLiteAtPoint.open(point, path: database)
    defer { opened.close() }
    let result = try opened.query(sql, timeout: timeout)
    return BisectAnswer(bytes: Array(result.canonicalText.utf8), summary: Self.summary(result))
  }

  /// `count(*) = 300`; `3 rows: id = 1, name = 'a' …`; `no rows`.
  static func summary(_ result: QueryResult) -> String {
    guard let first = result.rows.first else { return "no rows" }
    let row = zip(result.columns, first).map { "\($0) = \($1.sqlLiteral)" }.joined(separator: ", ")
    return result.rows.count == 1 ? row : "\(result.rows.count) rows: \(row) …"
  }

  package func command(volume: String, seq: Seq) -> String {
    "reel sql \(shellQuoted(volume)) --at seq:\(seq) --db \(shellQuoted(database)) \(shellQuoted(sql))"
  }
}
