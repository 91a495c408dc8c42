import Foundation
import ReelCore

#if canImport(FoundationXML)
  import FoundationXML
#endif

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

  /// The root element of `bytes`; throws `corrupt` for anything but one well-formed,
  /// bounded document.
  package static func parse(_ bytes: [UInt8], what: String) throws -> S3XMLElement {
    guard bytes.count <= 16 << 20 else {
      throw ReelError(.protocolViolation, "the S3 server's \(what) is \(bytes.count) bytes, more than any S3 reply")
    }
    try screen(bytes, what: what)
    let builder = Builder()
    let parser = XMLParser(data: Data(bytes))
    parser.shouldResolveExternalEntities = false
    parser.shouldProcessNamespaces = false
    parser.delegate = builder
    let parsed = parser.parse()
    // FoundationXML reports no error for a document cut short; an element left open is one.
    if builder.failure == nil, let open = builder.stack.last { builder.failure = "cut short inside <\(open.name)>" }
    guard parsed, builder.failure == nil, let root = builder.root else {
      throw ReelError(
        .protocolViolation,
        "the S3 server's \(what) is not a readable XML document (\(builder.failure ?? parser.parserError.map { "\($0)" } ?? "empty"))",
        remedy: "check that --s3-endpoint names an S3-compatible service")
    }
    return root
  }

  /// S3 replies are UTF-8 elements, attributes and text after an optional XML declaration.
  /// Anything else is refused before FoundationXML sees it: DTDs and entities (expansion
  /// bombs), and processing instructions, on which its Linux parser dereferences a null
  /// pointer (`<?m?>`, found by `reel-fuzz run s3reply`).
  private static func screen(_ bytes: [UInt8], what: String) throws {
    // FoundationXML traps on names that are not UTF-8 (`<\u{F6}e>`, found the same way).
    let controls = bytes.contains { $0 < 0x20 && $0 != 0x09 && $0 != 0x0A && $0 != 0x0D }
    guard !controls, String(validating: bytes, as: UTF8.self) != nil else {
      throw ReelError(
        .protocolViolation, "the S3 server's \(what) is not UTF-8 text",
        remedy: "check that --s3-endpoint names an S3-compatible service")
    }
    var start = 0
    let declaration = Array("<?xml".utf8)
    if bytes.starts(with: declaration) {
      var index = declaration.count
      while index + 1 < bytes.count, !(bytes[index] == UInt8(ascii: "?") && bytes[index + 1] == UInt8(ascii: ">")) {
        index += 1
      }
      start = index + 2
    }
    var index = start
    while index + 1 < bytes.count {
      if bytes[index] == UInt8(ascii: "<"),
        bytes[index + 1] == UInt8(ascii: "?") || bytes[index + 1] == UInt8(ascii: "!")
      {
        throw ReelError(
          .protocolViolation,
          "the S3 server's \(what) holds a DTD, comment or processing instruction, which no S3 reply has",
          remedy: "check that --s3-endpoint names an S3-compatible service")
      }
      index += 1
    }
  }

  private final class Builder: NSObject, XMLParserDelegate {
    var root: S3XMLElement?
    var stack: [S3XMLElement] = []
    var count = 0
    var textBytes = 0
    var failure: String?

    func parser(
      _ parser: XMLParser, didStartElement elementName: String, namespaceURI: String?, qualifiedName: String?,
      attributes: [String: String] = [:]
    ) {
      count += 1
      guard count <= 200_000, stack.count < 16 else {
        failure = "too many or too deeply nested elements"
        parser.abortParsing()
        return
      }
      let local = elementName.split(separator: ":").last.map(String.init) ?? elementName
      let element = S3XMLElement(name: local)
      if let parent = stack.last {
        parent.children.append(element)
      } else if root == nil {
        root = element
      }
      stack.append(element)
    }

    func parser(_ parser: XMLParser, didEndElement elementName: String, namespaceURI: String?, qualifiedName: String?) {
      _ = stack.popLast()
    }

    func parser(_ parser: XMLParser, foundCharacters string: String) {
      textBytes += string.utf8.count
      guard textBytes <= 32 << 20 else {
        failure = "too much text"
        parser.abortParsing()
        return
      }
      stack.last?.text += string
    }

    func parser(_ parser: XMLParser, resolveExternalEntityName name: String, systemID: String?) -> Data? { nil }
  }
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
