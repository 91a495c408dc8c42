import ReelCore

/// `reel sql --dump TABLE [--where EXPR]`: SQL a user pipes into `sqlite3 LIVE.db` to put
/// rows back. A transaction holding the table's `CREATE TABLE IF NOT EXISTS` (so an empty
/// database works too), one `INSERT` per row with its columns named (so a live table whose
/// columns were reordered or added to still takes them), then the table's indexes with
/// `IF NOT EXISTS`. A row whose key already exists in the live table fails alone with a
/// UNIQUE constraint error; sqlite3 goes on with the others and commits them.
package enum SQLiteDump {
  package static func dump(
    _ database: SQLiteAtPoint, table: String, where condition: String?, timeout: Double? = nil,
    _ line: (String) throws -> Void
  ) throws {
    let schema = try database.query(
      "SELECT name, sql FROM sqlite_schema WHERE type = 'table' AND name = \(SQLiteValue.text(table).sqlLiteral) COLLATE NOCASE",
      timeout: timeout)
    guard let found = schema.rows.first, case .text(let nameBytes) = found[0] else {
      let tables = try database.query(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name")
      let names = tables.rows.compactMap { $0.first?.plainText }
      throw ReelError(
        .notFound, "no table \(table) in \(database.displayPath) in \(database.place)",
        remedy: names.isEmpty
          ? "the database holds no tables at that point" : "its tables: \(names.joined(separator: ", "))")
    }
    let name = String(decoding: nameBytes, as: UTF8.self)
    let quotedName = SQLIdentifier.quote(name)
    // hidden: 0 a column, 1 a virtual table's hidden column, 2 and 3 generated columns.
    let info = try database.query("PRAGMA table_xinfo(\(quotedName))", timeout: timeout)
    guard let nameColumn = info.columns.firstIndex(of: "name"), let hiddenColumn = info.columns.firstIndex(of: "hidden")
    else { throw ReelError(.io, "PRAGMA table_xinfo gave no name or hidden column") }
    let columns = info.rows.filter { $0[hiddenColumn] == .integer(0) }.compactMap { $0[nameColumn].plainText }
    let columnList = columns.map(SQLIdentifier.quote).joined(separator: ",")

    try line("-- Rows of table \(name) in \(database.displayPath), \(database.place)")
    if let condition { try line("-- where \(condition.replacingOccurrences(of: "\n", with: " "))") }
    try line("-- Put them back: pipe this into `sqlite3 LIVE.db`.")
    try line("BEGIN TRANSACTION;")
    if case .text(let sql) = found[1] {
      try line(
        ifNotExists(String(decoding: sql, as: UTF8.self), keywords: ["CREATE TABLE ", "CREATE VIRTUAL TABLE "]) + ";")
    }
    let select =
      "SELECT \(columnList) FROM \(quotedName)" + (condition.map { " WHERE (\($0)\n)" } ?? "")
    let insert = "INSERT INTO \(quotedName)(\(columnList)) VALUES("
    var rows = 0
    try database.run(select, timeout: timeout, columns: { _ in }) { values in
      try line(insert + values.map(\.sqlLiteral).joined(separator: ",") + ");")
      rows += 1
      return true
    }
    let indexes = try database.query(
      "SELECT sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = \(SQLiteValue.text(name).sqlLiteral) AND sql IS NOT NULL ORDER BY name",
      timeout: timeout)
    for index in indexes.rows {
      guard let sql = index[0].plainText else { continue }
      try line(ifNotExists(sql, keywords: ["CREATE INDEX ", "CREATE UNIQUE INDEX "]) + ";")
    }
    try line("COMMIT;")
    try line("-- \(rows) row\(rows == 1 ? "" : "s")")
  }

  /// SQLite keeps `CREATE TABLE name…` in sqlite_schema whatever was typed (no IF NOT EXISTS).
  private static func ifNotExists(_ sql: String, keywords: [String]) -> String {
    for keyword in keywords where sql.uppercased().hasPrefix(keyword) {
      return keyword + "IF NOT EXISTS " + sql.dropFirst(keyword.count)
    }
    return sql
  }
}
