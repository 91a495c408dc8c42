import Foundation
import ReelCore

/// A printable copy of a master key (docs/key-format.md, "Paper copy"): four numbered
/// lines of 16 characters in Crockford's base32, each carrying 8 key bytes and a CRC-16
/// of its own, and the key's fingerprint as the check of the whole.
package enum PaperKey {
  /// Crockford's base32: no I, L, O or U, so handwriting and OCR cannot confuse 1, I and L
  /// or 0 and O; reading maps those back.
  static let alphabet = Array("0123456789ABCDEFGHJKMNPQRSTVWXYZ".utf8)
  package static let lineCount = 4
  static let bytesPerLine = 8
  static let charactersPerLine = 16

  /// The lines that carry `key`: `1: 7ZQ4 0M3K XB2D 9HAT` … `4: …`.
  package static func lines(for key: SymmetricKey) -> [String] {
    (1...lineCount).map { number in
      let data = Array(key.bytes[(number - 1) * bytesPerLine..<number * bytesPerLine])
      let check = crc16([UInt8(number)] + data)
      let characters = base32(data + [UInt8(check >> 8), UInt8(check & 0xFF)])
      let groups = stride(from: 0, to: characters.count, by: 4).map {
        String(decoding: characters[$0..<$0 + 4], as: UTF8.self)
      }
      return "\(number): " + groups.joined(separator: " ")
    }
  }

  /// The page `reel key paper` prints.
  package static func page(for key: SymmetricKey, label: String, created: String, printed: Timestamp) -> String {
    var text = """
      REEL MASTER KEY - PAPER COPY

      fingerprint: \(key.fingerprint)
      label:       \(label)
      created:     \(created)
      printed:     \(printed.rfc3339)

      Whoever holds this page can read every archive sealed with this key.
      Keep it apart from the archives and from the key file's passphrase.


      """
    for line in lines(for: key) { text += "    " + line + "\n\n" }
    text += """

      To type the key back in:  reel key create --out FILE --from-paper
      Give the four numbered lines and the fingerprint line. Case, spaces and dashes do
      not matter; O is read as 0, and I and L as 1. The end of each line checks that
      line, so a mistyped line is named; the fingerprint checks the whole key.

      """
    return text
  }

  /// What a paper copy gives back.
  package struct Reading: Sendable, Equatable {
    package var key: SymmetricKey
    /// The `label:` line, when the text has one.
    package var label: String?
  }

  /// Reads the text of a paper copy: the numbered lines (`N:` then the characters) and the
  /// `fingerprint:` line, in any order among other text, which is ignored.
  package static func read(_ text: String) throws -> Reading {
    var bodies: [Int: String] = [:]
    var fingerprint: String?
    var label: String?
    for raw in text.split(omittingEmptySubsequences: true, whereSeparator: \.isNewline) {
      let line = raw.trimmingCharacters(in: .whitespaces)
      if let (number, body) = numbered(line) {
        guard (1...lineCount).contains(number) else {
          throw ReelError(.usage, "there is no line \(number) on a paper key", remedy: "type lines 1 to \(lineCount)")
        }
        if let earlier = bodies[number], normalized(earlier) != normalized(body) {
          throw ReelError(.usage, "line \(number) is given twice, differently", remedy: "give each line once")
        }
        bodies[number] = body
      } else if let value = field("fingerprint", of: line) {
        fingerprint = value
      } else if let value = field("label", of: line) {
        label = value
      }
    }
    guard !bodies.isEmpty else {
      throw ReelError(
        .usage, "no paper key lines found",
        remedy: "type each line with its number first, as printed: `1: 7ZQ4 0M3K XB2D 9HAT`")
    }
    var bytes: [UInt8] = []
    for number in 1...lineCount {
      guard let body = bodies[number] else {
        throw ReelError(.usage, "line \(number) of the paper key is missing", remedy: "type all \(lineCount) lines")
      }
      bytes += try decodeLine(body, number: number)
    }
    let key = SymmetricKey(bytes: bytes)
    guard let fingerprint else {
      throw ReelError(
        .usage, "the fingerprint line is missing",
        remedy: "type the `fingerprint:` line from the top of the page too; it checks the whole key")
    }
    let typed = normalized(fingerprint).lowercased()
    guard typed == key.fingerprint.replacingOccurrences(of: "-", with: "") else {
      throw ReelError(
        .usage,
        "the lines give a key with fingerprint \(key.fingerprint), not the fingerprint typed (\(fingerprint))",
        remedy: "compare every line and the fingerprint with the paper again")
    }
    return Reading(key: key, label: label)
  }

  /// The 8 key bytes of line `number` from its characters, with or without the `N:` in front.
  package static func decodeLine(_ typed: String, number: Int) throws -> [UInt8] {
    var body = typed
    if let (given, rest) = numbered(typed.trimmingCharacters(in: .whitespaces)) {
      guard given == number else {
        throw ReelError(.usage, "line \(given) was given where line \(number) belongs")
      }
      body = rest
    }
    let characters = normalized(body)
    var values: [UInt8] = []
    for character in characters.utf8 {
      guard let value = alphabet.firstIndex(of: character) else {
        throw ReelError(
          .usage, "line \(number): \"\(Character(Unicode.Scalar(character)))\" is not a paper key character",
          remedy: "the characters are 0-9 and A-Z without I, L, O and U")
      }
      values.append(UInt8(value))
    }
    guard values.count == charactersPerLine else {
      throw ReelError(
        .usage, "line \(number) has \(values.count) characters, not \(charactersPerLine)",
        remedy: "compare line \(number) with the paper again")
    }
    let payload = unbase32(values)
    let data = Array(payload.prefix(bytesPerLine))
    let check = UInt16(payload[8]) << 8 | UInt16(payload[9])
    guard crc16([UInt8(number)] + data) == check else {
      throw ReelError(
        .usage, "line \(number) does not match its check: a character on it is mistyped, or the lines are out of order",
        remedy: "compare line \(number) with the paper again")
    }
    return data
  }

  // MARK: - Private

  /// `N: body`, `N. body` or `N) body`.
  private static func numbered(_ line: String) -> (Int, String)? {
    let digits = line.prefix { $0.isASCII && $0.isNumber }
    guard !digits.isEmpty, digits.count <= 3, let number = Int(digits) else { return nil }
    let rest = line.dropFirst(digits.count).drop { $0 == " " || $0 == "\t" }
    guard let mark = rest.first, ":.)".contains(mark) else { return nil }
    return (number, String(rest.dropFirst()))
  }

  /// The value of a `name: value` line, matching the name in any case.
  private static func field(_ name: String, of line: String) -> String? {
    guard line.lowercased().hasPrefix(name) else { return nil }
    let rest = line.dropFirst(name.count).drop { $0 == " " || $0 == "\t" }
    guard rest.first == ":" else { return nil }
    return String(rest.dropFirst()).trimmingCharacters(in: .whitespaces)
  }

  /// Upper case without spaces and dashes; O read as 0, I and L as 1 (Crockford).
  private static func normalized(_ text: String) -> String {
    var out = ""
    for character in text.uppercased() where !character.isWhitespace && character != "-" {
      switch character {
      case "O": out.append("0")
      case "I", "L": out.append("1")
      default: out.append(character)
      }
    }
    return out
  }

  /// 80 bits, most significant first, as 16 alphabet characters.
  private static func base32(_ bytes: [UInt8]) -> [UInt8] {
    var characters: [UInt8] = []
    var buffer: UInt32 = 0
    var bits = 0
    for byte in bytes {
      buffer = buffer << 8 | UInt32(byte)
      bits += 8
      while bits >= 5 {
        bits -= 5
        characters.append(alphabet[Int(buffer >> UInt32(bits) & 31)])
      }
    }
    return characters
  }

  /// 16 five-bit values back to 10 bytes.
  private static func unbase32(_ values: [UInt8]) -> [UInt8] {
    var bytes: [UInt8] = []
    var buffer: UInt32 = 0
    var bits = 0
    for value in values {
      buffer = buffer << 5 | UInt32(value)
      bits += 5
      if bits >= 8 {
        bits -= 8
        bytes.append(UInt8(truncatingIfNeeded: buffer >> UInt32(bits)))
      }
    }
    return bytes
  }

  /// CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF). Any change confined to
  /// 16 consecutive bits is caught, so every single mistyped character, and every pair of
  /// neighbours swapped, fails the line's check.
  static func crc16(_ bytes: [UInt8]) -> UInt16 {
    var crc: UInt16 = 0xFFFF
    for byte in bytes {
      crc ^= UInt16(byte) << 8
      for _ in 0..<8 {
        crc = crc & 0x8000 != 0 ? crc << 1 ^ 0x1021 : crc << 1
      }
    }
    return crc
  }
}
