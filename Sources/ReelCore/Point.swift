import Foundation

/// A point in a volume's history that a user can name: an instant, a bookmark label,
/// a journal sequence number, or the latest state.
package enum Point: Hashable, Sendable, CustomStringConvertible {
  case latest
  case time(Timestamp)
  case bookmark(String)
  case seq(Seq)

  /// Parses what a user types like `parse`, but never fails: text that is not a valid
  /// point is taken as a bookmark label, and resolving that label reports it (see
  /// `invalidTime`), so callers that cannot throw here still fail with the right words.
  package init(parsing text: String) {
    self = (try? Point.parse(text).point) ?? .bookmark(text)
  }

  /// Parses what a user types: `latest`, `seq:N`, an RFC 3339 time (`Z` or a numeric
  /// offset, fractions allowed), a relative time (`-10m`, `-2h`, `-1d`, `-90s`, `-1d12h`,
  /// `10 minutes ago`, `1 day ago`), `bookmark:LABEL`, or else a bookmark label. Relative
  /// times count back from `now`. Text that looks like a time but is not one is a usage
  /// error rather than a bookmark nobody could have created.
  package static func parse(_ text: String, now: Timestamp = .now()) throws -> ParsedPoint {
    if text == "latest" { return ParsedPoint(text: text, point: .latest, form: .latest) }
    if text.hasPrefix("seq:"), let seq = Seq(text.dropFirst(4)) {
      return ParsedPoint(text: text, point: .seq(seq), form: .seq)
    }
    if text.hasPrefix("bookmark:") {
      let label = String(text.dropFirst(9))
      return ParsedPoint(text: text, point: .bookmark(label), form: .bookmark)
    }
    if let time = Timestamp(rfc3339: text) {
      return ParsedPoint(text: text, point: .time(time), form: .time)
    }
    if let seconds = try secondsAgo(text) {
      guard seconds <= Int64.max / 1_000_000_000 else { throw invalidTime(text) }
      let (back, overflow) = now.nanoseconds.subtractingReportingOverflow(seconds * 1_000_000_000)
      guard !overflow else { throw invalidTime(text) }
      return ParsedPoint(text: text, point: .time(Timestamp(nanoseconds: back)), form: .relative(seconds: seconds))
    }
    if let error = invalidTime(ifTimeLike: text) { throw error }
    return ParsedPoint(text: text, point: .bookmark(text), form: .bookmark)
  }

  /// The usage error for `text` when it looks like a time (a date, `-10m`, `… ago`) but is
  /// not a valid one; nil when it could only be a bookmark label.
  package static func invalidTime(ifTimeLike text: String) -> ReelError? {
    let looksDated = text.wholeMatch(of: /[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ].*)?/) != nil
    let looksRelative = text.wholeMatch(of: /-[0-9].*/) != nil || text.wholeMatch(of: /[0-9]+\s*\S+\s+ago/) != nil
    guard looksDated || looksRelative else { return nil }
    return invalidTime(text)
  }

  static func invalidTime(_ text: String) -> ReelError {
    ReelError(
      .usage, "not a valid time: \(text)",
      remedy:
        "write an RFC 3339 time such as 2026-11-27T07:22:02Z or 2026-11-27T08:22:02.5+01:00, a relative time such as -10m, -2h, -1d or \"10 minutes ago\", a bookmark label, seq:N or latest"
    )
  }

  /// Seconds back for `-10m`, `-1d12h` or `10 minutes ago`; nil when `text` is neither form.
  private static func secondsAgo(_ text: String) throws -> Int64? {
    if text.hasPrefix("-"), text.dropFirst().first?.isNumber == true {
      guard let duration = try? DurationText.parse(String(text.dropFirst())) else { throw invalidTime(text) }
      return duration.components.seconds
    }
    guard let match = text.wholeMatch(of: /([0-9]+)\s+([A-Za-z]+)\s+ago/) else { return nil }
    let units: [String: Int64] = [
      "second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400,
    ]
    var unit = match.2.lowercased()
    if unit.hasSuffix("s") { unit.removeLast() }
    guard let seconds = units[unit], let count = Int64(match.1) else { throw invalidTime(text) }
    let (total, overflow) = count.multipliedReportingOverflow(by: seconds)
    guard !overflow else { throw invalidTime(text) }
    return total
  }

  package var description: String {
    switch self {
    case .latest: "latest"
    case .time(let time): time.rfc3339
    case .bookmark(let label): "bookmark \"\(label)\""
    case .seq(let seq): "seq:\(seq)"
    }
  }
}

/// A point as the user typed it and what it was read as, so a command can say which
/// kind of point it used ("10 minutes ago = 2026-12-04T13:11:00Z").
package struct ParsedPoint: Sendable, Equatable, CustomStringConvertible {
  package enum Form: Sendable, Equatable {
    case latest
    case seq
    case bookmark
    /// An absolute RFC 3339 time.
    case time
    /// A time counted back from when the command started.
    case relative(seconds: Int64)
  }

  package var text: String
  package var point: Point
  package var form: Form

  package init(text: String, point: Point, form: Form) {
    self.text = text
    self.point = point
    self.form = form
  }

  package var description: String {
    switch (form, point) {
    case (.relative(let seconds), .time(let time)):
      "\(Self.ago(seconds)) = \(time.rfc3339)"
    case (.time, .time(let time)) where text != time.rfc3339:
      "\(text) = \(time.rfc3339)"
    default:
      point.description
    }
  }

  /// A warning for a time after `now`: it is read as the latest state, which is rarely
  /// what a mistyped date meant, so the command says so.
  package func futureWarning(now: Timestamp = .now(), using state: String) -> String? {
    guard isFuture(now: now) else { return nil }
    return "\(text) is in the future (now is \(now.rfc3339)); using \(state)"
  }

  func isFuture(now: Timestamp = .now()) -> Bool {
    guard case .time(let time) = point else { return false }
    return time > now
  }

  /// The point for code that has no notion of "now": a time still to come is `latest`.
  package func pastOrLatest(now: Timestamp = .now()) -> Point {
    isFuture(now: now) ? .latest : point
  }

  /// `90` → "90 seconds ago", `600` → "10 minutes ago", `86400` → "1 day ago": the largest
  /// unit that divides the span evenly, the way a person would say it.
  static func ago(_ seconds: Int64) -> String {
    let units: [(Int64, String)] = [(7 * 86400, "week"), (86400, "day"), (3600, "hour"), (60, "minute")]
    let (size, name) = units.first { seconds > 0 && seconds % $0.0 == 0 } ?? (1, "second")
    let count = seconds / size
    return "\(count) \(name)\(count == 1 ? "" : "s") ago"
  }
}

/// A byte range of a volume.
struct BlockExtent: Hashable, Sendable, Codable {
  package var offset: UInt64
  package var length: UInt64

  package init(offset: UInt64, length: UInt64) {
    self.offset = offset
    self.length = length
  }

  package var end: UInt64 { offset + length }
}
