import Foundation
import ReelCodec
import ReelCore

/// Bucket names, keys, metadata and URLs as S3 spells them.
package enum S3Names {
  /// 3–63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or
  /// digit (S3's rules for new buckets; a host name label when virtual-hosted).
  package static func checkBucket(_ bucket: String) throws {
    let bytes = Array(bucket.utf8)
    let allowed = bytes.allSatisfy {
      (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
        || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-")
    }
    guard (3...63).contains(bytes.count), allowed, let first = bytes.first, let last = bytes.last,
      first != UInt8(ascii: "."), first != UInt8(ascii: "-"), last != UInt8(ascii: "."), last != UInt8(ascii: "-"),
      !bucket.contains("..")
    else {
      throw ReelError(
        .usage, "\"\(bucket)\" is not a valid S3 bucket name",
        remedy:
          "bucket names are 3 to 63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit"
      )
    }
  }

  /// Non-empty, at most 1024 bytes of UTF-8, no control characters, no `.`/`..` segments
  /// (which URL handling would fold away).
  package static func checkKey(_ key: String) throws {
    let segments = key.split(separator: "/", omittingEmptySubsequences: false)
    guard !key.isEmpty, key.utf8.count <= 1024,
      !key.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F }),
      !segments.contains(where: { $0 == "." || $0 == ".." })
    else {
      throw ReelError(
        .usage, "\"\(key)\" is not an object key Reel uses",
        remedy: "keys are 1 to 1024 bytes without control characters or . and .. segments")
    }
  }

  /// Metadata names are lower-case letters, digits and hyphens; values printable ASCII
  /// (HTTP headers carry them).
  package static func checkMetadata(name: String, value: String) throws {
    let nameOK =
      !name.isEmpty && name.utf8.count <= 128
      && name.utf8.allSatisfy {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0)
          || $0 == UInt8(ascii: "-")
      }
    let valueOK = value.utf8.count <= 1024 && value.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
    guard nameOK, valueOK else {
      throw ReelError(.usage, "object metadata \"\(name)\" is not a lower-case name with a printable ASCII value")
    }
  }

  /// The request URL: path style `endpoint/bucket/key`, else `scheme://bucket.host/key`;
  /// the query sorted by name and every name and value percent-encoded, as SigV4's
  /// canonical request has them (libcurl signs the query as it is written).
  package static func url(endpoint: S3Endpoint, bucket: String, key: String?, query: [(String, String)]) -> String {
    var url: String
    if endpoint.pathStyle {
      url = endpoint.url + "/" + bucket
      if let key { url += "/" + encode(key, keepSlash: true) }
    } else {
      let schemeEnd = endpoint.url.range(of: "://")!.upperBound
      let scheme = String(endpoint.url[..<schemeEnd])
      let authority = String(endpoint.url[schemeEnd...])
      url = "\(scheme)\(bucket).\(authority)/"
      if let key { url += encode(key, keepSlash: true) }
    }
    if !query.isEmpty {
      let pairs: [(name: String, value: String)] = query.map {
        (encode($0.0, keepSlash: false), encode($0.1, keepSlash: false))
      }
      let sorted = pairs.sorted { (left, right) -> Bool in
        left.name == right.name ? left.value < right.value : left.name < right.name
      }
      let text: [String] = sorted.map { "\($0.name)=\($0.value)" }
      url += "?" + text.joined(separator: "&")
    }
    return url
  }

  /// RFC 3986 percent-encoding of everything but the unreserved characters (and `/` in paths).
  package static func encode(_ text: String, keepSlash: Bool) -> String {
    var out = ""
    for byte in text.utf8 {
      switch byte {
      case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
        UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"),
        UInt8(ascii: "~"):
        out.unicodeScalars.append(Unicode.Scalar(byte))
      case UInt8(ascii: "/") where keepSlash:
        out += "/"
      default:
        out += "%" + Hex.encode([byte]).uppercased()
      }
    }
    return out
  }

  /// An ETag without the quotes S3 puts around it.
  /// The CRC-32C of `bytes` as S3's checksum headers carry it: base64 of its 4 bytes,
  /// big-endian.
  package static func crc32c(_ bytes: UnsafeRawBufferPointer) -> String {
    crc32c(value: CRC32C.checksum(bytes))
  }

  /// A CRC-32C already computed, as `x-amz-checksum-crc32c` carries it.
  package static func crc32c(value: UInt32) -> String {
    withUnsafeBytes(of: value.bigEndian) { Data($0).base64EncodedString() }
  }

  /// Whether `text` has the form of `crc32c(_:)`'s answer.
  package static func isCRC32C(_ text: String) -> Bool {
    text.utf8.count == 8 && Data(base64Encoded: text)?.count == 4
  }

  package static func unquoted(_ etag: String) -> String {
    var text = etag.trimmingCharacters(in: .whitespaces)
    if text.hasPrefix("W/") { text.removeFirst(2) }
    if text.hasPrefix("\""), text.hasSuffix("\""), text.count >= 2 { text = String(text.dropFirst().dropLast()) }
    return text.lowercased()
  }

  /// The ETag S3 gives an object completed from `parts`: MD5 of the parts' MD5s, "-", the
  /// count.
  package static func multipartETag(_ parts: [S3Part]) -> String {
    let hasher = MD5Hasher()
    for part in parts.sorted(by: { $0.number < $1.number }) {
      (Hex.decode(part.etag) ?? []).withUnsafeBytes { hasher.update($0) }
    }
    return Hex.encode(hasher.finish()) + "-\(parts.count)"
  }
}
