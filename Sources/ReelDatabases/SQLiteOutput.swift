/// How `reel sql` prints results: an aligned table (the default), CSV or JSON Lines.
package enum SQLiteOutput {
  /// Columns padded to their widest value, a rule under the names, numbers right-aligned,
  /// NULL as `NULL`, control characters escaped so each row stays on one line.
  package static func table(_ result: QueryResult) -> [String] {
    let header = result.columns.map { escapeControls($0) }
    let cells = result.rows.map { row in row.map { $0.plainText.map(escapeControls) ?? "NULL" } }
    var widths = header.map(\.count)
    for row in cells {
      for (index, cell) in row.enumerated() where index < widths.count {
        widths[index] = max(widths[index], cell.count)
      }
    }
    func pad(_ text: String, _ width: Int, right: Bool) -> String {
      let fill = String(repeating: " ", count: max(0, width - text.count))
      return right ? fill + text : text + fill
    }
    func join(_ fields: [String]) -> String {
      var line = fields.joined(separator: "  ")
      while line.last == " " { line.removeLast() }
      return line
    }
    var lines = [join(header.enumerated().map { pad($1, widths[$0], right: false) })]
    lines.append(join(widths.map { String(repeating: "-", count: $0) }))
    for (rowIndex, row) in cells.enumerated() {
      lines.append(
        join(
          row.enumerated().map { index, cell in
            let numeric: Bool
            switch result.rows[rowIndex][index] {
            case .integer, .real: numeric = true
            default: numeric = false
            }
            return pad(cell, widths[index], right: numeric)
          }))
    }
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

  private static func escapeControls(_ text: String) -> String {
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
