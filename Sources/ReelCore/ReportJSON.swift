import Foundation

/// The one way reports become JSON: `reel … --json` output and the JSON files stages write.
///
/// Sorted keys and unescaped slashes, so the text matches what `JSONSerialization` wrote
/// with `[.sortedKeys, .withoutEscapingSlashes]` before the reports were `Encodable`.
/// `JSONEncoder` sorts keys by code unit where `JSONSerialization` sorted them
/// case-insensitively and numerically; for lower-case snake_case keys (every report key)
/// the two orders are the same.
package enum ReportJSON {
  /// The encoded bytes; `pretty` indents them (for files a person may read).
  package static func encode(_ value: some Encodable, pretty: Bool = false) throws -> Data {
    let encoder = JSONEncoder()
    encoder.outputFormatting =
      pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
    return try encoder.encode(value)
  }

  /// One line of JSON (JSON Lines and single reports alike).
  package static func text(_ value: some Encodable) throws -> String {
    String(decoding: try encode(value), as: UTF8.self)
  }
}

/// An optional report field that is written as `null` when absent (synthesized `Encodable`
/// leaves a plain optional out instead).
@propertyWrapper
package struct NullIfAbsent<Value: Encodable>: Encodable {
  package var wrappedValue: Value?

  package init(wrappedValue: Value?) {
    self.wrappedValue = wrappedValue
  }

  package func encode(to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    if let wrappedValue {
      try container.encode(wrappedValue)
    } else {
      try container.encodeNil()
    }
  }
}
