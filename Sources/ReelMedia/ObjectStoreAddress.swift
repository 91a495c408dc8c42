import ReelCore

/// `s3://BUCKET[/PREFIX]`: the bucket as S3 names them, and a prefix of plain path
/// components, so every object Reel writes has a key a person can read and none climbs out.
extension MediaAddress {
  static func objectStore(parsing text: String) throws -> MediaAddress {
    guard text.hasPrefix("s3://") else { throw objectStoreUsage(text, "it does not start with s3://") }
    let rest = text.dropFirst(5)
    let bucket = String(rest.prefix { $0 != "/" })
    guard isValidBucket(bucket) else {
      throw objectStoreUsage(
        text, "\"\(bucket)\" is not a bucket name (3 to 63 lower-case letters, digits, dots and hyphens)")
    }
    let components = rest.dropFirst(bucket.count).split(separator: "/", omittingEmptySubsequences: true)
    for component in components where !isValidPrefixComponent(component) {
      throw objectStoreUsage(
        text, "the prefix component \"\(component)\" is not allowed (letters, digits, . _ - only; not . or ..)")
    }
    guard components.count <= 16 else { throw objectStoreUsage(text, "the prefix has more than 16 components") }
    let prefix = components.map { $0 + "/" }.joined()
    return .objectStore(bucket: bucket, prefix: prefix)
  }

  static func isValidBucket(_ name: String) -> Bool {
    let bytes = Array(name.utf8)
    guard (3...63).contains(bytes.count) else { return false }
    func alphanumeric(_ byte: UInt8) -> Bool {
      (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
    guard alphanumeric(bytes.first!), alphanumeric(bytes.last!) else { return false }
    return bytes.allSatisfy { alphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".") }
  }

  static func isValidPrefixComponent(_ component: Substring) -> Bool {
    guard component != ".", component != "..", component.utf8.count <= 128 else { return false }
    return component.utf8.allSatisfy { byte in
      (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
        || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-")
        || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
    }
  }

  private static func objectStoreUsage(_ text: String, _ reason: String) -> ReelError {
    ReelError(
      .usage, "cannot read \"\(text)\" as object-store media: \(reason)",
      remedy: "write s3://BUCKET or s3://BUCKET/PREFIX, e.g. s3://backups/reel/site-a")
  }

  /// True for `s3://` media.
  package var isObjectStore: Bool {
    if case .objectStore = self { return true }
    return false
  }
}
