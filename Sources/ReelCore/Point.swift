/// A point in a volume's history that a user can name: an instant, a bookmark label,
/// a journal sequence number, or the latest state.
public enum Point: Hashable, Sendable, CustomStringConvertible {
  case latest
  case time(Timestamp)
  case bookmark(String)
  case seq(Seq)

  /// Parses what a user types: `latest`, `seq:N`, an RFC 3339 time, or else a bookmark label.
  public init(parsing text: String) {
    if text == "latest" {
      self = .latest
    } else if text.hasPrefix("seq:"), let seq = Seq(text.dropFirst(4)) {
      self = .seq(seq)
    } else if let time = Timestamp(rfc3339: text) {
      self = .time(time)
    } else if text.hasPrefix("bookmark:") {
      self = .bookmark(String(text.dropFirst(9)))
    } else {
      self = .bookmark(text)
    }
  }

  public var description: String {
    switch self {
    case .latest: "latest"
    case .time(let time): time.rfc3339
    case .bookmark(let label): "bookmark \"\(label)\""
    case .seq(let seq): "seq:\(seq)"
    }
  }
}

/// A byte range of a volume.
public struct BlockExtent: Hashable, Sendable, Codable {
  public var offset: UInt64
  public var length: UInt64

  public init(offset: UInt64, length: UInt64) {
    self.offset = offset
    self.length = length
  }

  public var end: UInt64 { offset + length }
}
