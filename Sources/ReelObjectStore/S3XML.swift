import Foundation
import ReelCore

/// An element of an S3 response document: its name (without namespace), its own text and
/// its children. Only the small, flat documents S3 returns; bounded in count and depth.
package final class S3XMLElement {
  package let name: String
  package var text = ""
  package var children: [S3XMLElement] = []

  init(name: String) { self.name = name }

  package func child(_ name: String) -> S3XMLElement? { children.first { $0.name == name } }
  package func children(_ name: String) -> [S3XMLElement] { children.filter { $0.name == name } }
  /// The text of the first child called `name`, trimmed.
  package func value(_ name: String) -> String? {
    child(name)?.text.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  /// The root element of `bytes`; throws `protocolViolation` for anything but one
  /// well-formed, bounded document.
  package static func parse(_ bytes: [UInt8], what: String) throws -> S3XMLElement {
    guard bytes.count <= S3XMLReader.maximumBytes else {
      throw ReelError(
        .protocolViolation, "the S3 server's \(what) is \(bytes.count) bytes, more than any S3 reply",
        remedy: S3XMLReader.remedy)
    }
    return try bytes.withUnsafeBufferPointer { buffer in
      var reader = S3XMLReader(buffer, what: what)
      return try reader.document()
    }
  }
}

/// Reads the XML S3 services send, and nothing more: UTF-8, an optional byte order mark
/// and XML declaration, one root element with attributes (checked, not kept), text with
/// the five predefined entities and character references, CDATA sections and comments.
/// DTDs are refused, so are unknown entities (no entity expansion: no billion laughs) and
/// processing instructions; input, element count, depth, attributes and text are bounded. Its own
/// reader rather than FoundationXML: that one made every `reel` command load libxml2 and
/// ICU at start-up, and trapped on hostile input twice (`reel-fuzz run s3reply`).
struct S3XMLReader {
  static let maximumBytes = 16 << 20
  static let maximumElements = 200_000
  static let maximumDepth = 16
  /// S3 sends at most a namespace or two; the bound keeps the duplicate check small.
  static let maximumAttributes = 64
  static let maximumTextBytes = 32 << 20
  static let remedy = "check that --s3-endpoint names an S3-compatible service"

  private let bytes: UnsafeBufferPointer<UInt8>
  private let what: String
  private var index = 0
  private var elements = 0
  private var textBytes = 0
  private var open: [OpenElement] = []

  /// An element whose end tag is still to come: its qualified name (where it is in the
  /// input) and its text so far, which may come in pieces around its children.
  private struct OpenElement {
    let element: S3XMLElement
    let name: Range<Int>
    var text: [UInt8] = []
  }

  init(_ bytes: UnsafeBufferPointer<UInt8>, what: String) {
    self.bytes = bytes
    self.what = what
  }

  mutating func document() throws -> S3XMLElement {
    try screen()
    if starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
    if starts(with: Array("<?xml".utf8)), index + 5 < bytes.count,
      isWhitespace(bytes[index + 5]) || bytes[index + 5] == .question
    {
      try declaration()
    }
    try skipMiscellany()
    guard index < bytes.count else { throw failure(index == 0 ? "nothing" : "no root element", at: index) }
    guard bytes[index] == .lessThan else { throw failure("text before the root element", at: index) }
    let root = try startTag()
    while !open.isEmpty { try content() }
    try skipMiscellany()
    guard index == bytes.count else {
      let second = bytes[index] == .lessThan && index + 1 < bytes.count && bytes[index + 1] != .slash
      throw failure(second ? "a second root element" : "more after the root element", at: index)
    }
    return root
  }

  // MARK: - Characters

  /// S3 replies are UTF-8 (checked here once, so names and text decode without loss)
  /// without control characters other than tab and line ends, which XML 1.0 refuses too.
  private func screen() throws {
    var parser = Unicode.UTF8.ForwardParser()
    var input = bytes.makeIterator()
    var at = 0
    while true {
      switch parser.parseScalar(from: &input) {
      case .emptyInput: return
      case .error:
        throw ReelError(
          .protocolViolation, "the S3 server's \(what) is not UTF-8 text (byte \(at) is \(hex(bytes[at])))",
          remedy: Self.remedy)
      case .valid(let encoded):
        let value = Unicode.UTF8.decode(encoded).value
        if value < 0x20 && value != 0x09 && value != 0x0A && value != 0x0D {
          throw ReelError(
            .protocolViolation,
            "the S3 server's \(what) holds control character \(hex(UInt8(value))) at byte \(at), which no S3 reply has",
            remedy: Self.remedy)
        }
        if value == 0xFFFE || value == 0xFFFF {
          throw ReelError(
            .protocolViolation,
            "the S3 server's \(what) holds U+FFF\(value == 0xFFFE ? "E" : "F") at byte \(at), not a character XML allows",
            remedy: Self.remedy)
        }
        at += encoded.count
      }
    }
  }

  /// The scalar starting at `at` and its length in bytes; the input is valid UTF-8.
  private func scalar(at: Int) -> (value: UInt32, length: Int) {
    let lead = UInt32(bytes[at])
    func continuation(_ offset: Int) -> UInt32 { UInt32(bytes[at + offset] & 0x3F) }
    switch lead {
    case ..<0x80: return (lead, 1)
    case ..<0xE0: return ((lead & 0x1F) << 6 | continuation(1), 2)
    case ..<0xF0: return ((lead & 0x0F) << 12 | continuation(1) << 6 | continuation(2), 3)
    default: return ((lead & 0x07) << 18 | continuation(1) << 12 | continuation(2) << 6 | continuation(3), 4)
    }
  }

  private func isWhitespace(_ byte: UInt8) -> Bool { byte == 0x20 || byte == 0x09 || byte == 0x0A || byte == 0x0D }

  /// Skips white space; whether there was any.
  @discardableResult private mutating func skipWhitespace() -> Bool {
    let start = index
    while index < bytes.count, isWhitespace(bytes[index]) { index += 1 }
    return index > start
  }

  private func starts(with prefix: [UInt8]) -> Bool {
    guard bytes.count - index >= prefix.count else { return false }
    for (offset, byte) in prefix.enumerated() where bytes[index + offset] != byte { return false }
    return true
  }

  // MARK: - Markup

  /// `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>`: a version 1.x, and no
  /// encoding other than the UTF-8 the input was checked to be.
  private mutating func declaration() throws {
    let start = index
    index += 5
    var version: String?
    var seen: Set<String> = []
    while true {
      let spaced = skipWhitespace()
      guard index < bytes.count else { throw failure("cut short inside the XML declaration", at: start) }
      if starts(with: Array("?>".utf8)) {
        index += 2
        break
      }
      guard spaced else { throw failure("no space before a setting of the XML declaration", at: index) }
      let nameStart = index
      let name = text(of: try self.name(what: "a setting of the XML declaration"))
      let value = text(of: try equalsAndValue(of: name))
      guard ["version", "encoding", "standalone"].contains(name), seen.insert(name).inserted else {
        throw failure("a setting \(name) the XML declaration cannot have", at: nameStart)
      }
      switch name {
      case "version":
        guard value.hasPrefix("1."), value.count > 2, value.dropFirst(2).allSatisfy({ ("0"..."9").contains($0) }) else {
          throw failure("XML version \(value)", at: nameStart)
        }
        version = value
      case "encoding":
        guard ["utf-8", "utf8", "us-ascii"].contains(value.lowercased()) else {
          throw failure("the encoding \(value), not UTF-8", at: nameStart)
        }
      default:
        guard value == "yes" || value == "no" else { throw failure("standalone=\"\(value)\"", at: nameStart) }
      }
    }
    guard version != nil else { throw failure("an XML declaration without a version", at: start) }
  }

  /// White space and comments; DTDs and processing instructions are refused.
  private mutating func skipMiscellany() throws {
    while true {
      skipWhitespace()
      guard index + 1 < bytes.count, bytes[index] == .lessThan else { return }
      switch bytes[index + 1] {
      case .exclamation: if starts(with: Array("<!--".utf8)) { try comment() } else { try refuseDeclaration() }
      case .question: throw failure("a processing instruction, which no S3 reply has", at: index)
      default: return
      }
    }
  }

  private mutating func refuseDeclaration() throws -> Never {
    if starts(with: Array("<!DOCTYPE".utf8)) {
      throw failure("a DTD, which no S3 reply has (nor its entities)", at: index)
    }
    throw failure("a markup declaration, which no S3 reply has", at: index)
  }

  /// `<!-- … -->`, skipped; `--` may not occur inside.
  private mutating func comment() throws {
    let start = index
    index += 4
    while index + 1 < bytes.count {
      if bytes[index] == .hyphen, bytes[index + 1] == .hyphen {
        guard index + 2 < bytes.count, bytes[index + 2] == .greaterThan else {
          throw failure(index + 2 < bytes.count ? "'--' inside a comment" : "cut short inside a comment", at: index)
        }
        index += 3
        return
      }
      index += 1
    }
    throw failure("cut short inside a comment", at: start)
  }

  /// A name: one XML name, or a prefix and a local name around one colon.
  private mutating func name(what: String) throws -> Range<Int> {
    let start = index
    var colon: Int?
    while index < bytes.count {
      let (value, length) = scalar(at: index)
      let allowed = index == start ? Self.startsName(value) : Self.continuesName(value)
      guard allowed else { break }
      if value == 0x3A {
        guard colon == nil, index > start else { throw failure("a colon where \(what) cannot have one", at: index) }
        colon = index
      }
      index += length
    }
    guard index > start else {
      throw failure(index < bytes.count ? "no name for \(what)" : "cut short before \(what)", at: start)
    }
    if let colon, colon == index - 1 { throw failure("a colon where \(what) cannot have one", at: colon) }
    return start..<index
  }

  /// NameStartChar of XML 1.0 (fifth edition).
  private static func startsName(_ value: UInt32) -> Bool {
    switch value {
    case 0x3A, 0x41...0x5A, 0x5F, 0x61...0x7A, 0xC0...0xD6, 0xD8...0xF6, 0xF8...0x2FF, 0x370...0x37D,
      0x37F...0x1FFF, 0x200C...0x200D, 0x2070...0x218F, 0x2C00...0x2FEF, 0x3001...0xD7FF, 0xF900...0xFDCF,
      0xFDF0...0xFFFD, 0x10000...0xEFFFF:
      return true
    default: return false
    }
  }

  /// NameChar of XML 1.0 (fifth edition).
  private static func continuesName(_ value: UInt32) -> Bool {
    switch value {
    case 0x2D, 0x2E, 0x30...0x39, 0xB7, 0x300...0x36F, 0x203F...0x2040: return true
    default: return startsName(value)
    }
  }

  /// `= "value"` or `= 'value'` after an attribute's name; the value's place in the input.
  /// References in it are checked like those in text; `<` is refused.
  private mutating func equalsAndValue(of attribute: String) throws -> Range<Int> {
    skipWhitespace()
    guard index < bytes.count, bytes[index] == .equals else {
      throw failure(index < bytes.count ? "no '=' after \(attribute)" : "cut short after \(attribute)", at: index)
    }
    index += 1
    skipWhitespace()
    guard index < bytes.count, bytes[index] == .quote || bytes[index] == .apostrophe else {
      throw failure(
        index < bytes.count ? "a value of \(attribute) not in quotes" : "cut short after \(attribute)=", at: index)
    }
    let quote = bytes[index]
    let start = index
    index += 1
    while index < bytes.count, bytes[index] != quote {
      switch bytes[index] {
      case .lessThan: throw failure("'<' inside the value of \(attribute)", at: index)
      case .ampersand: _ = try reference()
      default: index += 1
      }
    }
    guard index < bytes.count else { throw failure("cut short inside the value of \(attribute)", at: start) }
    index += 1
    return (start + 1)..<(index - 1)
  }

  /// `<name attribute="value" …>` or `<name … />`: a new element, open unless it closed
  /// itself. Attributes are checked (one of each name) but not kept: S3 replies carry
  /// nothing in them Reel reads.
  private mutating func startTag() throws -> S3XMLElement {
    let start = index
    index += 1
    let qualified = try name(what: "an element")
    var attributes: Set<[UInt8]> = []
    var closed: Bool
    while true {
      let spaced = skipWhitespace()
      guard index < bytes.count else {
        throw failure("cut short inside the start tag <\(text(of: qualified))>", at: start)
      }
      if bytes[index] == .greaterThan {
        index += 1
        closed = false
        break
      }
      if bytes[index] == .slash {
        guard index + 1 < bytes.count, bytes[index + 1] == .greaterThan else {
          throw failure("'/' not followed by '>' in <\(text(of: qualified))>", at: index)
        }
        index += 2
        closed = true
        break
      }
      guard spaced else { throw failure("no space before an attribute of <\(text(of: qualified))>", at: index) }
      let attribute = try name(what: "an attribute of <\(text(of: qualified))>")
      _ = try equalsAndValue(of: "attribute \(text(of: attribute))")
      guard attributes.insert(Array(bytes[attribute])).inserted else {
        throw failure("attribute \(text(of: attribute)) twice in <\(text(of: qualified))>", at: attribute.lowerBound)
      }
      guard attributes.count <= Self.maximumAttributes else {
        throw failure("more than \(Self.maximumAttributes) attributes in <\(text(of: qualified))>", at: start)
      }
    }
    elements += 1
    guard elements <= Self.maximumElements else {
      throw failure("more than \(Self.maximumElements) elements", at: start)
    }
    guard open.count < Self.maximumDepth else {
      throw failure("elements nested more than \(Self.maximumDepth) deep", at: start)
    }
    let local = qualified.lastIndex { bytes[$0] == .colon }.map { ($0 + 1)..<qualified.upperBound } ?? qualified
    let element = S3XMLElement(name: text(of: local))
    if let parent = open.last { parent.element.children.append(element) }
    if !closed { open.append(OpenElement(element: element, name: qualified)) }
    return element
  }

  /// `</name>`, which must name the innermost open element as its start tag did.
  private mutating func endTag() throws {
    let start = index
    index += 2
    let name = try self.name(what: "an end tag")
    skipWhitespace()
    guard index < bytes.count, bytes[index] == .greaterThan else {
      throw failure(
        index < bytes.count ? "no '>' after </\(text(of: name))" : "cut short inside </\(text(of: name))>", at: index)
    }
    index += 1
    let innermost = open.removeLast()
    guard bytes[name].elementsEqual(bytes[innermost.name]) else {
      throw failure("</\(text(of: name))> closing <\(text(of: innermost.name))>", at: start)
    }
    innermost.element.text = String(decoding: innermost.text, as: UTF8.self)
  }

  /// What follows inside the innermost open element: a child, its end tag, a comment, a
  /// CDATA section, a reference, or a run of text.
  private mutating func content() throws {
    guard index < bytes.count else {
      throw failure("cut short inside <\(text(of: open[open.count - 1].name))>", at: index)
    }
    switch bytes[index] {
    case .lessThan:
      guard index + 1 < bytes.count else {
        throw failure("cut short inside <\(text(of: open[open.count - 1].name))>", at: index)
      }
      switch bytes[index + 1] {
      case .slash: try endTag()
      case .question: throw failure("a processing instruction, which no S3 reply has", at: index)
      case .exclamation:
        if starts(with: Array("<!--".utf8)) {
          try comment()
        } else if starts(with: Array("<![CDATA[".utf8)) {
          try characterData()
        } else {
          try refuseDeclaration()
        }
      default: _ = try startTag()
      }
    case .ampersand: appendText(try reference())
    default: try characters()
    }
    guard textBytes <= Self.maximumTextBytes else { throw failure("more than 32 MiB of text", at: index) }
  }

  /// Text up to the next `<` or `&`; line ends become line feeds, as XML reads them.
  private mutating func characters() throws {
    let start = index
    while index < bytes.count, bytes[index] != .lessThan, bytes[index] != .ampersand {
      if bytes[index] == .closingBracket, starts(with: Array("]]>".utf8)) {
        throw failure("']]>' in text", at: index)
      }
      index += 1
    }
    appendText(start..<index)
  }

  /// `<![CDATA[ … ]]>`: text as it stands.
  private mutating func characterData() throws {
    let start = index
    index += 9
    let text = index
    while index < bytes.count {
      if bytes[index] == .closingBracket, starts(with: Array("]]>".utf8)) {
        appendText(text..<index)
        index += 3
        return
      }
      index += 1
    }
    throw failure("cut short inside a CDATA section", at: start)
  }

  /// Appends the input at `range` to the innermost open element's text, each carriage
  /// return (alone or before a line feed) as a line feed, as XML reads line ends.
  private mutating func appendText(_ range: Range<Int>) {
    var run = range.lowerBound
    var at = range.lowerBound
    while at < range.upperBound {
      guard bytes[at] == 0x0D else {
        at += 1
        continue
      }
      open[open.count - 1].text.append(contentsOf: bytes[run..<at])
      open[open.count - 1].text.append(0x0A)
      at += at + 1 < range.upperBound && bytes[at + 1] == 0x0A ? 2 : 1
      run = at
    }
    open[open.count - 1].text.append(contentsOf: bytes[run..<range.upperBound])
    textBytes += range.count
  }

  private mutating func appendText(_ scalar: Unicode.Scalar) {
    open[open.count - 1].text.append(contentsOf: UTF8.encode(scalar)!)
    textBytes += UTF8.width(scalar)
  }

  /// `&lt;`, `&gt;`, `&amp;`, `&quot;`, `&apos;`, `&#decimal;` or `&#xhex;`: the character
  /// it stands for. Any other entity is refused: without a DTD none can be defined, and no
  /// expansion means no expansion bomb.
  private mutating func reference() throws -> Unicode.Scalar {
    let start = index
    index += 1
    guard index < bytes.count else { throw failure("cut short inside a reference", at: start) }
    if bytes[index] == .hash {
      index += 1
      let hexadecimal = index < bytes.count && bytes[index] == UInt8(ascii: "x")
      if hexadecimal { index += 1 }
      let digits = index
      var value: UInt32 = 0
      while index < bytes.count, let digit = Self.digit(bytes[index], hexadecimal: hexadecimal) {
        // Past U+10FFFF it is refused anyway; stop growing before UInt32 overflows.
        value = min(value * (hexadecimal ? 16 : 10) + digit, 0x11_0000)
        index += 1
      }
      guard index > digits, index < bytes.count, bytes[index] == .semicolon else {
        throw failure(
          index < bytes.count ? "a malformed character reference" : "cut short inside a reference", at: start)
      }
      index += 1
      guard Self.isCharacter(value), let scalar = Unicode.Scalar(value) else {
        throw failure(
          "a character reference to U+\(String(value, radix: 16, uppercase: true)), not a character XML allows",
          at: start)
      }
      return scalar
    }
    let name = try self.name(what: "an entity reference")
    guard index < bytes.count, bytes[index] == .semicolon else {
      throw failure(
        index < bytes.count ? "no ';' after &\(text(of: name))" : "cut short inside a reference", at: start)
    }
    index += 1
    switch text(of: name) {
    case "lt": return "<"
    case "gt": return ">"
    case "amp": return "&"
    case "quot": return "\""
    case "apos": return "'"
    default: throw failure("the unknown entity &\(text(of: name));", at: start)
    }
  }

  private static func digit(_ byte: UInt8, hexadecimal: Bool) -> UInt32? {
    switch byte {
    case 0x30...0x39: return UInt32(byte - 0x30)
    case 0x61...0x66 where hexadecimal: return UInt32(byte - 0x61 + 10)
    case 0x41...0x46 where hexadecimal: return UInt32(byte - 0x41 + 10)
    default: return nil
    }
  }

  /// Char of XML 1.0: no NUL, other controls, surrogates, U+FFFE or U+FFFF.
  private static func isCharacter(_ value: UInt32) -> Bool {
    switch value {
    case 0x09, 0x0A, 0x0D, 0x20...0xD7FF, 0xE000...0xFFFD, 0x10000...0x10FFFF: return true
    default: return false
    }
  }

  // MARK: - Errors

  /// The input at `range` for a message, cut at 64 bytes: names can be as long as the reply.
  private func text(of range: Range<Int>) -> String {
    let shown = range.lowerBound..<min(range.upperBound, range.lowerBound + 64)
    return String(decoding: bytes[shown], as: UTF8.self) + (shown == range ? "" : "…")
  }

  private func hex(_ byte: UInt8) -> String {
    "0x" + (byte < 0x10 ? "0" : "") + String(byte, radix: 16, uppercase: true)
  }

  private func failure(_ problem: String, at offset: Int) -> ReelError {
    ReelError(
      .protocolViolation, "the S3 server's \(what) is not a readable XML document (\(problem) at byte \(offset))",
      remedy: Self.remedy)
  }
}

extension UInt8 {
  fileprivate static let lessThan = UInt8(ascii: "<")
  fileprivate static let greaterThan = UInt8(ascii: ">")
  fileprivate static let slash = UInt8(ascii: "/")
  fileprivate static let question = UInt8(ascii: "?")
  fileprivate static let exclamation = UInt8(ascii: "!")
  fileprivate static let hyphen = UInt8(ascii: "-")
  fileprivate static let ampersand = UInt8(ascii: "&")
  fileprivate static let semicolon = UInt8(ascii: ";")
  fileprivate static let hash = UInt8(ascii: "#")
  fileprivate static let equals = UInt8(ascii: "=")
  fileprivate static let quote = UInt8(ascii: "\"")
  fileprivate static let apostrophe = UInt8(ascii: "'")
  fileprivate static let colon = UInt8(ascii: ":")
  fileprivate static let closingBracket = UInt8(ascii: "]")
}

/// Times in S3 documents (ISO 8601 with or without fractional seconds) and headers (RFC 1123).
enum S3Time {
  static func parse(iso text: String?) -> Date? {
    guard let text else { return nil }
    let fractional = ISO8601DateFormatter()
    fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    if let date = fractional.date(from: text) { return date }
    return ISO8601DateFormatter().date(from: text)
  }

  static func parse(http text: String?) -> Date? {
    guard let text else { return nil }
    let formatter = DateFormatter()
    formatter.locale = Locale(identifier: "en_US_POSIX")
    formatter.timeZone = TimeZone(identifier: "GMT")
    formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
    return formatter.date(from: text)
  }

  static func iso(_ date: Date) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime]
    return formatter.string(from: date)
  }
}
