/// How `reel sql` prints results: an aligned table (the default), CSV or JSON Lines.
package enum SQLiteOutput {
  /// The whole table of a result (`SQLiteTablePrinter` without the row count).
  package static func table(_ result: QueryResult) -> [String] {
    var lines: [String] = []
    var printer = SQLiteTablePrinter(columns: result.columns) { lines.append($0) }
    for row in result.rows { printer.add(row) }
    printer.flush()
    return lines
  }

  /// One CSV record (RFC 4180): fields quoted when they hold a comma, quote or line break;
  /// NULL as an empty field, blobs as X'hex'.
  package static func csv(_ fields: [String?]) -> String {
    fields.map { field -> String in
      guard let field else { return "" }
      if field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
        return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
      }
      return field
    }.joined(separator: ",")
  }

  /// One JSON object per row, keys in column order (a repeated name gets `:2`, `:3`…):
  /// integers and reals as numbers (infinities as the strings "Infinity"/"-Infinity"),
  /// text as strings, blobs as {"hex": "…"}, NULL as null.
  package static func jsonLine(columns: [String], _ row: [SQLiteValue]) -> String {
    var seen: [String: Int] = [:]
    var fields: [String] = []
    for (index, value) in row.enumerated() {
      var key = index < columns.count ? columns[index] : "column\(index + 1)"
      seen[key, default: 0] += 1
      if let count = seen[key], count > 1 { key += ":\(count)" }
      fields.append(jsonString(key) + ":" + json(value))
    }
    return "{" + fields.joined(separator: ",") + "}"
  }

  private static func json(_ value: SQLiteValue) -> String {
    switch value {
    case .null: return "null"
    case .integer(let number): return String(number)
    case .real(let number):
      if number.isInfinite { return number < 0 ? "\"-Infinity\"" : "\"Infinity\"" }
      return number.isNaN ? "null" : SQLiteValue.realLiteral(number)
    case .text(let bytes): return jsonString(String(decoding: bytes, as: UTF8.self))
    case .blob(let bytes): return "{\"hex\":\"" + SQLiteValue.hex(bytes) + "\"}"
    }
  }

  static func jsonString(_ text: String) -> String {
    var out = "\""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\"": out += "\\\""
      case "\\": out += "\\\\"
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      default:
        if scalar.value < 0x20 {
          out +=
            "\\u" + String(repeating: "0", count: 4 - String(scalar.value, radix: 16).count)
            + String(scalar.value, radix: 16)
        } else {
          out.unicodeScalars.append(scalar)
        }
      }
    }
    return out + "\""
  }

  static func escapeControls(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7f }) else { return text }
    var out = ""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\n": out += "\\n"
      case "\r": out += "\\r"
      case "\t": out += "\\t"
      default:
        if scalar.value < 0x20 || scalar.value == 0x7f {
          out += "\\x" + SQLiteValue.hex([UInt8(scalar.value)])
        } else {
          out.unicodeScalars.append(scalar)
        }
      }
    }
    return out
  }
}

/// The default output: columns padded to their widest value, a rule under the names,
/// numbers right-aligned, NULL as `NULL`, control characters escaped so each row stays on
/// one line. The widths are measured on the first `measuredRows` rows; later rows are
/// printed as they come with the same widths (a longer value pushes its line out), so a
/// large result never has to be held in memory.
package struct SQLiteTablePrinter {
  package static let measuredRows = 1000
  private let columns: [String]
  private let emit: (String) -> Void
  private var pending: [[SQLiteValue]] = []
  private var widths: [Int]?
  package private(set) var rows = 0

  package init(columns: [String], emit: @escaping (String) -> Void) {
    self.columns = columns.map { SQLiteOutput.escapeControls($0) }
    self.emit = emit
  }

  package mutating func add(_ row: [SQLiteValue]) {
    rows += 1
    guard let widths else {
      pending.append(row)
      if pending.count >= Self.measuredRows { flush() }
      return
    }
    emit(line(row, widths))
  }

  /// Prints the header and the rows held back (call once all rows are added).
  package mutating func flush() {
    guard widths == nil else { return }
    var measured = columns.map(\.count)
    for row in pending {
      for (index, value) in row.enumerated() where index < measured.count {
        measured[index] = max(measured[index], Self.cell(value).count)
      }
    }
    widths = measured
    emit(Self.join(columns.enumerated().map { Self.pad($1, measured[$0], right: false) }))
    emit(Self.join(measured.map { String(repeating: "-", count: $0) }))
    for row in pending { emit(line(row, measured)) }
    pending = []
  }

  private func line(_ row: [SQLiteValue], _ widths: [Int]) -> String {
    Self.join(
      row.enumerated().map { index, value in
        let numeric: Bool
        switch value {
        case .integer, .real: numeric = true
        default: numeric = false
        }
        return Self.pad(Self.cell(value), index < widths.count ? widths[index] : 0, right: numeric)
      })
  }

  private static func cell(_ value: SQLiteValue) -> String {
    value.plainText.map(SQLiteOutput.escapeControls) ?? "NULL"
  }

  private static func pad(_ text: String, _ width: Int, right: Bool) -> String {
    let fill = String(repeating: " ", count: max(0, width - text.count))
    return right ? fill + text : text + fill
  }

  private static func join(_ fields: [String]) -> String {
    var line = fields.joined(separator: "  ")
    while line.last == " " { line.removeLast() }
    return line
  }
}
