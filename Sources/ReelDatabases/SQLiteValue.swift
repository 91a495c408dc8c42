import Foundation

/// One value of a SQLite result, with its storage class.
package enum SQLiteValue: Sendable, Hashable {
  case null
  case integer(Int64)
  case real(Double)
  /// SQLite text as stored (UTF-8 as SQLite hands it out; not necessarily valid).
  case text([UInt8])
  case blob([UInt8])

  package static func text(_ string: String) -> SQLiteValue { .text(Array(string.utf8)) }

  /// The value as a SQL literal that reads back as the same value and storage class:
  /// `NULL`, `42`, `1.5` (reals always with a point or an exponent, ±`1e999` for
  /// infinities, as sqlite3's `.dump` writes them), `'it''s'`, `X'00ff'`; text that is
  /// not valid UTF-8 or holds a NUL as `CAST(X'…' AS TEXT)`.
  package var sqlLiteral: String {
    switch self {
    case .null: return "NULL"
    case .integer(let value): return String(value)
    case .real(let value): return Self.realLiteral(value)
    case .blob(let bytes): return "X'" + Self.hex(bytes) + "'"
    case .text(let bytes):
      guard !bytes.contains(0), let string = String(bytes: bytes, encoding: .utf8) else {
        return "CAST(X'" + Self.hex(bytes) + "' AS TEXT)"
      }
      return "'" + string.replacingOccurrences(of: "'", with: "''") + "'"
    }
  }

  /// For people and CSV: text as it is (invalid UTF-8 as U+FFFD), blobs in hexadecimal as
  /// `X'…'`, reals as `sqlLiteral` writes them, NULL as nil.
  package var plainText: String? {
    switch self {
    case .null: nil
    case .integer(let value): String(value)
    case .real(let value): Self.realLiteral(value)
    case .text(let bytes): String(decoding: bytes, as: UTF8.self)
    case .blob(let bytes): "X'" + Self.hex(bytes) + "'"
    }
  }

  /// Shortest text that parses back to the same double (Swift's `description`), with a
  /// decimal point kept so SQLite reads it as REAL, not INTEGER.
  static func realLiteral(_ value: Double) -> String {
    if value.isInfinite { return value < 0 ? "-1e999" : "1e999" }
    if value.isNaN { return "NULL" }
    let text = value.description
    return text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) ? text : text + ".0"
  }

  static func hex(_ bytes: [UInt8]) -> String {
    let digits = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count * 2)
    for byte in bytes {
      out.append(digits[Int(byte >> 4)])
      out.append(digits[Int(byte & 15)])
    }
    return String(decoding: out, as: UTF8.self)
  }
}

/// The whole result of one statement: its column names and rows.
package struct QueryResult: Sendable, Equatable {
  package var columns: [String]
  package var rows: [[SQLiteValue]]

  package init(columns: [String], rows: [[SQLiteValue]]) {
    self.columns = columns
    self.rows = rows
  }

  /// A stable text of the result, equal for equal results and different otherwise: the
  /// column names, then one line per row of SQL literals (`SQLiteValue.sqlLiteral`), so
  /// `1`, `1.0`, `'1'` and `X'31'` all differ. What `reel bisect --sql` compares.
  package var canonicalText: String {
    var text = "(" + columns.map(SQLIdentifier.quote).joined(separator: ", ") + ")\n"
    for row in rows {
      text += "(" + row.map(\.sqlLiteral).joined(separator: ", ") + ")\n"
    }
    return text
  }
}

/// SQL identifiers, quoted so any name reads back (`"a ""b"""`).
package enum SQLIdentifier {
  package static func quote(_ name: String) -> String {
    "\"" + name.replacingOccurrences(of: "\"", with: "\"\"") + "\""
  }
}
