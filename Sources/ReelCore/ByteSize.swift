/// Sizes as users type them: `512`, `64K`, `16M`, `1G`, `2T` (powers of 1024; a trailing
/// `iB` or `B` is accepted: `16MiB`, `16MB` both mean 16 × 1024²).
package enum ByteSize {
  package static func parse(_ text: String) throws -> UInt64 {
    var digits = Substring(text.trimmingPrefixAndSuffixSpaces())
    var multiplier: UInt64 = 1
    for suffix in ["iB", "B"] where digits.hasSuffix(suffix) && digits.count > suffix.count {
      digits = digits.dropLast(suffix.count)
      break
    }
    if let last = digits.last, let power = "KMGTP".firstIndex(of: Character(last.uppercased())) {
      multiplier = UInt64(1) << (10 * UInt64("KMGTP".distance(from: "KMGTP".startIndex, to: power) + 1))
      digits = digits.dropLast()
    }
    guard let value = UInt64(digits), value.multipliedReportingOverflow(by: multiplier).overflow == false
    else {
      throw ReelError(.usage, "cannot read \"\(text)\" as a size", remedy: "write a size like 512, 64K, 16M or 1G")
    }
    return value * multiplier
  }

  /// `1.5 GiB`-style text for people.
  package static func describe(_ bytes: UInt64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    var value = Double(bytes)
    var unit = 0
    while value >= 1024 && unit < units.count - 1 {
      value /= 1024
      unit += 1
    }
    if unit == 0 { return "\(bytes) B" }
    let rounded = (value * 10).rounded() / 10
    return rounded == rounded.rounded() ? "\(Int(rounded)) \(units[unit])" : "\(rounded) \(units[unit])"
  }
}

extension String {
  fileprivate func trimmingPrefixAndSuffixSpaces() -> String {
    String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
  }
}

/// Durations as users type them: `90s`, `30m`, `12h`, `7d`, `2w`, or combined `1d12h`.
package enum DurationText {
  package static func parse(_ text: String) throws -> Duration {
    var total: Int64 = 0
    var digits = ""
    var sawUnit = false
    for character in text {
      if character.isASCII, character.isNumber {
        digits.append(character)
        continue
      }
      let unit: Int64
      switch character {
      case "s": unit = 1
      case "m": unit = 60
      case "h": unit = 3600
      case "d": unit = 86400
      case "w": unit = 7 * 86400
      default: unit = 0
      }
      guard unit > 0, let value = Int64(digits) else { throw invalid(text) }
      // A typo of many digits must be an error, not a crash.
      let (part, overflow) = value.multipliedReportingOverflow(by: unit)
      let (sum, overflowSum) = total.addingReportingOverflow(part)
      guard !overflow, !overflowSum else { throw invalid(text) }
      total = sum
      digits = ""
      sawUnit = true
    }
    guard digits.isEmpty, sawUnit else { throw invalid(text) }
    return .seconds(total)
  }

  private static func invalid(_ text: String) -> ReelError {
    ReelError(.usage, "cannot read \"\(text)\" as a duration", remedy: "write e.g. 90s, 30m, 12h, 7d, 2w or 1d12h")
  }
}
