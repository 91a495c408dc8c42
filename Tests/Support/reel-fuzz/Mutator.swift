import Foundation

/// A seeded generator (xorshift64*): the same seed gives the same inputs on every machine.
struct FuzzRandom {
  private var state: UInt64

  init(seed: UInt64) { state = seed == 0 ? 0x9E37_79B9_7F4A_7C15 : seed }

  mutating func next() -> UInt64 {
    state ^= state >> 12
    state ^= state << 25
    state ^= state >> 27
    return state &* 0x2545_F491_4F6C_DD1D
  }

  /// 0..<bound (bound > 0).
  mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }

  mutating func pick<T>(_ values: [T]) -> T { values[below(values.count)] }
}

/// Mutations of seed inputs: byte-level (bit flips, byte sets, interesting integers,
/// truncation, splicing) and field-aware ones for the text and tar formats Reel reads
/// (numbers in JSON, labels and pax records replaced by negative, huge or non-numeric ones).
struct Mutator {
  var random: FuzzRandom
  let seeds: [[UInt8]]

  static let interestingIntegers: [UInt64] = [
    0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0xFFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFFFF_FFFF, 0x0FFF_FFFF,
    0x1000_0000, 0x7FFF_FFFF_FFFF_FFFF, 0x8000_0000_0000_0000, 0xFFFF_FFFF_FFFF_FFFF, 512, 4096, 1 << 20,
  ]
  static let interestingNumbers = [
    "-1", "-0", "0", "-9223372036854775808", "9223372036854775807", "9223372036854775808",
    "18446744073709551615", "18446744073709551616", "99999999999999999999999999", "1e308", "abc", "", " ",
    "0x10", "-512", "4294967296", "2147483648", "1.5", "NaN",
  ]
  static let interestingStrings = [
    "../../x/evil", "", "/", "..", "/etc/passwd", String(repeating: "A", count: 300), "a\u{0}b", "x\ny",
    "00000000-0000-0000-0000-000000000000", "ZZZZZZZZ-ZZZZ-ZZZZ-ZZZZ-ZZZZZZZZZZZZ",
  ]

  init(seed: UInt64, seeds: [[UInt8]]) {
    random = FuzzRandom(seed: seed)
    self.seeds = seeds
  }

  /// One input: a seed with one to four mutations.
  mutating func input() -> [UInt8] {
    var bytes = random.pick(seeds)
    for _ in 0...random.below(4) { mutate(&bytes) }
    return bytes
  }

  /// A position, preferring bytes that are not zero: Reel's media are mostly padding.
  mutating func position(in bytes: [UInt8]) -> Int {
    var position = random.below(bytes.count)
    for _ in 0..<8 where bytes[position] == 0 { position = random.below(bytes.count) }
    return position
  }

  mutating func mutate(_ bytes: inout [UInt8]) {
    guard !bytes.isEmpty else {
      bytes = Array(random.pick(Self.interestingNumbers).utf8)
      return
    }
    switch random.below(11) {
    case 0:
      let at = position(in: bytes)
      bytes[at] ^= 1 << UInt8(random.below(8))
    case 1:
      bytes[position(in: bytes)] = UInt8(truncatingIfNeeded: random.next())
    case 2:
      let width = random.pick([1, 2, 4, 8])
      var value = random.pick(Self.interestingIntegers)
      if random.below(2) == 0 { value = value.byteSwapped >> (64 - UInt64(width) * 8) }
      let at = position(in: bytes)
      for index in 0..<width where at + index < bytes.count {
        bytes[at + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(index)))
      }
    case 3:
      bytes.removeSubrange(random.below(bytes.count)...)
    case 4:
      let other = random.pick(seeds)
      guard !other.isEmpty else { return }
      let from = random.below(other.count)
      let count = min(random.below(4096) + 1, other.count - from)
      let at = position(in: bytes)
      bytes.replaceSubrange(at..<min(at + count, bytes.count), with: other[from..<(from + count)])
    case 5:
      let at = random.below(bytes.count)
      bytes.removeSubrange(at..<min(at + random.below(64) + 1, bytes.count))
    case 6:
      replaceNumber(&bytes)
    case 7:
      replaceFieldValue(&bytes)
    case 8:
      replaceString(&bytes)
    case 9:
      editPaxRecord(&bytes)
    default:
      editUstarField(&bytes)
    }
  }

  /// A run of ASCII digits (with a sign) replaced by an interesting number.
  mutating func replaceNumber(_ bytes: inout [UInt8]) {
    let isDigit = { (byte: UInt8) in byte >= 48 && byte <= 57 }
    var at = position(in: bytes)
    var tries = 0
    while !isDigit(bytes[at]) && tries < 64 {
      at = random.below(bytes.count)
      tries += 1
    }
    guard isDigit(bytes[at]) else { return }
    var start = at
    while start > 0 && (isDigit(bytes[start - 1]) || bytes[start - 1] == 45) { start -= 1 }
    var end = at
    while end < bytes.count && isDigit(bytes[end]) { end += 1 }
    bytes.replaceSubrange(start..<end, with: Array(random.pick(Self.interestingNumbers).utf8))
  }

  /// A field's number (after `": ` in JSON, `: ` in labels) replaced by an interesting one:
  /// digits inside IDs and digests are far more common and matter less.
  mutating func replaceFieldValue(_ bytes: inout [UInt8]) {
    var starts: [Int] = []
    var index = 1
    while index + 1 < bytes.count && starts.count < 4096 {
      if bytes[index] == 32 && bytes[index - 1] == 58
        && ((bytes[index + 1] >= 48 && bytes[index + 1] <= 57) || bytes[index + 1] == 45)
      {
        starts.append(index + 1)
      }
      index += 1
    }
    guard !starts.isEmpty else { return replaceNumber(&bytes) }
    let start = random.pick(starts)
    var end = start + 1
    while end < bytes.count && bytes[end] >= 48 && bytes[end] <= 57 { end += 1 }
    bytes.replaceSubrange(start..<end, with: Array(random.pick(Self.interestingNumbers).utf8))
  }

  /// The text between two double quotes replaced by an interesting string.
  mutating func replaceString(_ bytes: inout [UInt8]) {
    let quotes = bytes.indices.filter { bytes[$0] == 34 }
    guard quotes.count >= 2 else { return }
    let first = random.below(quotes.count - 1)
    let value = Self.interestingStrings[random.below(Self.interestingStrings.count)]
    let escaped = value.replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\u{0}", with: "\\u0000")
    bytes.replaceSubrange((quotes[first] + 1)..<quotes[first + 1], with: Array(escaped.utf8))
  }

  /// A pax record (`LEN key=value\n`) given a hostile value, its length prefix kept right
  /// and, when the value does not fit, the record rewritten with the tar header's size
  /// field and checksum updated, so libarchive reaches the value.
  mutating func editPaxRecord(_ bytes: inout [UInt8]) {
    let keys = ["size=", "path=", "mtime=", "uid=", "gid=", "linkpath=", "GNU.sparse.size=", "atime="]
    // Any record libarchive wrote ("mtime=" before every member) can become any key.
    let found = Array(" mtime=".utf8)
    var hits: [Int] = []
    var index = 0
    while index + found.count <= bytes.count && hits.count < 64 {
      if bytes[index] == found[0] && Array(bytes[index..<(index + found.count)]) == found { hits.append(index + 1) }
      index += 1
    }
    guard !hits.isEmpty else { return editUstarField(&bytes) }
    let key = Array(random.pick(keys).utf8)
    let keyAt = random.pick(hits)
    // The record's start: back over "LEN " from the key.
    var start = keyAt - 1
    guard start > 0, bytes[start] == 32 else { return }
    while start > 0 && bytes[start - 1] >= 48 && bytes[start - 1] <= 57 { start -= 1 }
    guard let end = bytes[keyAt...].prefix(200).firstIndex(of: 10) else { return }
    let oldLength = end + 1 - start
    let value =
      key == Array("path=".utf8) || key == Array("linkpath=".utf8)
      ? random.pick(["../../x/evil", "/etc/passwd", "", "a/../../b"]) : random.pick(Self.interestingNumbers)
    let body = Array(String(decoding: key, as: UTF8.self).utf8) + Array(value.utf8) + [10]
    var length = body.count + 2
    while String(length).count + 1 + body.count != length { length += 1 }
    let record = Array("\(length) ".utf8) + body
    if record.count <= oldLength {
      // Same length as the old record: the number padded with zeros after any sign.
      let pad = oldLength - record.count
      let digits = value.hasPrefix("-") ? Array(value.dropFirst().utf8) : Array(value.utf8)
      let padded =
        Array("\(oldLength) ".utf8) + key + (value.hasPrefix("-") ? [45] : [])
        + [UInt8](repeating: 48, count: pad) + digits + [10]
      if padded.count == oldLength {
        bytes.replaceSubrange(start...end, with: padded)
        return
      }
    }
    // Otherwise the record changes length: the header before the pax data gets the new
    // size and checksum, and the padding moves so the next header stays on a block.
    let header = start / 512 * 512 - 512
    guard header >= 0, header + 512 <= bytes.count else { return }
    let delta = record.count - oldLength
    let oldSize = Int(octal(bytes[(header + 124)..<(header + 136)]))
    let newSize = oldSize + delta
    guard newSize >= 0, oldSize < 1 << 20 else { return }
    bytes.replaceSubrange(start...end, with: record)
    let next = header + 512 + (oldSize + 511) / 512 * 512 + delta
    let wanted = header + 512 + (newSize + 511) / 512 * 512
    if wanted > next, next <= bytes.count {
      bytes.insert(contentsOf: [UInt8](repeating: 0, count: wanted - next), at: next)
    } else if wanted < next, next <= bytes.count {
      bytes.removeSubrange(wanted..<next)
    }
    writeOctal(&bytes, at: header + 124, width: 12, value: UInt64(newSize))
    fixChecksum(&bytes, header: header)
  }

  /// A field of a ustar header (one whose checksum is right) given an interesting value.
  mutating func editUstarField(_ bytes: inout [UInt8]) {
    var headers: [Int] = []
    var offset = 0
    while offset + 512 <= bytes.count && headers.count < 32 {
      if Array(bytes[(offset + 257)..<(offset + 262)]) == Array("ustar".utf8) { headers.append(offset) }
      offset += 512
    }
    guard !headers.isEmpty else { return replaceNumber(&bytes) }
    let header = random.pick(headers)
    let fields: [(at: Int, width: Int)] = [(124, 12), (100, 8), (108, 8), (116, 8), (136, 12), (156, 1), (0, 100)]
    let field = random.pick(fields)
    switch random.below(4) {
    case 0:
      // Base-256 (GNU) numbers: the high bit set, then big-endian bytes.
      for index in 0..<field.width { bytes[header + field.at + index] = index == 0 ? 0xFF : UInt8(random.below(256)) }
    case 1:
      writeOctal(&bytes, at: header + field.at, width: field.width, value: random.pick(Self.interestingIntegers))
    case 2:
      let text = Array(random.pick(Self.interestingNumbers + Self.interestingStrings).utf8.prefix(field.width))
      for index in 0..<field.width { bytes[header + field.at + index] = index < text.count ? text[index] : 0 }
    default:
      bytes[header + field.at + random.below(field.width)] = UInt8(random.below(256))
    }
    if random.below(8) != 0 { fixChecksum(&bytes, header: header) }
  }

  func octal(_ field: ArraySlice<UInt8>) -> UInt64 {
    var value: UInt64 = 0
    for byte in field where byte >= 48 && byte <= 55 { value = value &* 8 &+ UInt64(byte - 48) }
    return value
  }

  func writeOctal(_ bytes: inout [UInt8], at offset: Int, width: Int, value: UInt64) {
    let digits = Array(String(value, radix: 8).utf8)
    let count = width - 1
    for index in 0..<count {
      let digit = index - (count - digits.count)
      bytes[offset + index] = digit >= 0 && digit < digits.count ? digits[digit] : 48
    }
    bytes[offset + count] = 0
  }

  func fixChecksum(_ bytes: inout [UInt8], header: Int) {
    var sum = 0
    for index in 0..<512 { sum += (148..<156).contains(index) ? 32 : Int(bytes[header + index]) }
    let digits = Array(String(sum, radix: 8).utf8)
    for index in 0..<6 {
      let digit = index - (6 - digits.count)
      bytes[header + 148 + index] = digit >= 0 && digit < digits.count ? digits[digit] : 48
    }
    bytes[header + 154] = 0
    bytes[header + 155] = 32
  }
}
