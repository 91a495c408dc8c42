import Foundation

/// Wall-clock time in nanoseconds since the Unix epoch, UTC.
package struct Timestamp: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
  package var nanoseconds: Int64

  package init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

  package static func now() -> Timestamp {
    var spec = timespec()
    clock_gettime(CLOCK_REALTIME, &spec)
    return Timestamp(nanoseconds: Int64(spec.tv_sec) * 1_000_000_000 + Int64(spec.tv_nsec))
  }

  package static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
    lhs.nanoseconds < rhs.nanoseconds
  }

  /// RFC 3339 in UTC with nanoseconds, e.g. `2026-11-27T07:22:02.123456789Z`.
  package var rfc3339: String {
    let seconds = nanoseconds.floorDivided(by: 1_000_000_000)
    let fraction = nanoseconds - seconds * 1_000_000_000
    var time = time_t(seconds)
    var parts = tm()
    gmtime_r(&time, &parts)
    let date = String(
      format: "%04d-%02d-%02dT%02d:%02d:%02d", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    return date + String(format: ".%09dZ", Int(fraction))
  }

  package var description: String { rfc3339 }

  /// Parses RFC 3339: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`; a space may replace `T`.
  package init?(rfc3339 text: String) {
    let chars = Array(text.utf8)
    func number(_ range: Range<Int>) -> Int? {
      guard range.upperBound <= chars.count else { return nil }
      var value = 0
      for index in range {
        let c = chars[index]
        guard c >= 48 && c <= 57 else { return nil }
        value = value * 10 + Int(c - 48)
      }
      return value
    }
    guard chars.count >= 20,
      let year = number(0..<4), chars[4] == 45, let month = number(5..<7), chars[7] == 45,
      let day = number(8..<10), chars[10] == 84 || chars[10] == 116 || chars[10] == 32,
      let hour = number(11..<13), chars[13] == 58, let minute = number(14..<16), chars[16] == 58,
      let second = number(17..<19),
      (1...12).contains(month), (1...Self.days(inMonth: month, of: year)).contains(day), hour < 24, minute < 60,
      second < 61
    else { return nil }
    var index = 19
    var fractionNanos: Int64 = 0
    if index < chars.count, chars[index] == 46 {
      index += 1
      var digits = 0
      while index < chars.count, chars[index] >= 48, chars[index] <= 57 {
        if digits < 9 { fractionNanos = fractionNanos * 10 + Int64(chars[index] - 48) }
        digits += 1
        index += 1
      }
      guard digits > 0 else { return nil }
      for _ in digits..<max(digits, 9) { fractionNanos *= 10 }
    }
    guard index < chars.count else { return nil }
    var offsetSeconds = 0
    if chars[index] == 90 || chars[index] == 122 {
      index += 1
    } else if chars[index] == 43 || chars[index] == 45 {
      let sign = chars[index] == 43 ? 1 : -1
      guard let oh = number((index + 1)..<(index + 3)), chars.count > index + 3,
        chars[index + 3] == 58, let om = number((index + 4)..<(index + 6)), oh < 24, om < 60
      else { return nil }
      offsetSeconds = sign * (oh * 3600 + om * 60)
      index += 6
    } else {
      return nil
    }
    guard index == chars.count else { return nil }
    var parts = tm()
    parts.tm_year = Int32(year - 1900)
    parts.tm_mon = Int32(month - 1)
    parts.tm_mday = Int32(day)
    parts.tm_hour = Int32(hour)
    parts.tm_min = Int32(minute)
    parts.tm_sec = Int32(second)
    let epoch = Int64(timegm(&parts)) - Int64(offsetSeconds)
    // Nanoseconds in an Int64 reach from 1677 to 2262: a year outside is no instant Reel
    // can hold (a label or catalog from a hostile medium may name one), not a trap.
    let (whole, overflowed) = epoch.multipliedReportingOverflow(by: 1_000_000_000)
    guard !overflowed else { return nil }
    let (total, overflowedAgain) = whole.addingReportingOverflow(fractionNanos)
    guard !overflowedAgain else { return nil }
    nanoseconds = total
  }
}

extension Timestamp {
  /// Days in `month` (1…12) of `year`, so that 2026-02-30 is refused rather than quietly
  /// read as March 2nd by `timegm`.
  static func days(inMonth month: Int, of year: Int) -> Int {
    switch month {
    case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
    case 4, 6, 9, 11: 30
    default: 31
    }
  }
}

extension Int64 {
  fileprivate func floorDivided(by divisor: Int64) -> Int64 {
    let quotient = self / divisor
    return (self % divisor < 0) ? quotient - 1 : quotient
  }
}

extension Duration {
  /// The whole duration in nanoseconds, for arithmetic with `Timestamp`.
  /// Saturates: a duration from a pipeline file may be years of seconds past Int64's
  /// nanoseconds, and arithmetic on it must not trap.
  package var nanoseconds: Int64 {
    let (whole, overflow) = components.seconds.multipliedReportingOverflow(by: 1_000_000_000)
    guard !overflow else { return components.seconds < 0 ? .min : .max }
    let (sum, overflowSum) = whole.addingReportingOverflow(components.attoseconds / 1_000_000_000)
    return overflowSum ? (whole < 0 ? .min : .max) : sum
  }
}
