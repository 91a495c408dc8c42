import Foundation
import ReelCore
import Testing

@testable import ReelCodec

@Suite struct PaperKeyTests {
  static let key = SymmetricKey(bytes: (0..<32).map { UInt8($0) })

  /// Pinned: paper copies printed today must type back in with every later release. The
  /// lines were checked with an independent few lines of Python (docs/key-format.md).
  @Test func linesOfAKnownKey() {
    #expect(
      PaperKey.lines(for: Self.key) == [
        "1: 000G 40R4 0M30 FNF2", "2: 104G M2RC 1M70 YQKX", "3: 208H 44RM 2MB1 EKGJ", "4: 30CH M6RW 3MF1 YPB2",
      ])
  }

  @Test func crc16IsCCITTFalse() {
    #expect(PaperKey.crc16(Array("123456789".utf8)) == 0x29B1)
    #expect(PaperKey.crc16([]) == 0xFFFF)
  }

  @Test func aPrintedPageTypesBackIn() throws {
    for _ in 0..<20 {
      let key = SymmetricKey.random()
      let page = PaperKey.page(for: key, label: "office", created: "2026-01-02T03:04:05Z", printed: .now())
      #expect(page.contains("fingerprint: \(key.fingerprint)"))
      let reading = try PaperKey.read(page)
      #expect(reading.key == key)
      #expect(reading.label == "office")
    }
  }

  @Test func typingIsForgiving() throws {
    let lines = PaperKey.lines(for: Self.key)
    let fingerprint = "fingerprint: " + Self.key.fingerprint
    func variant(_ change: (String) -> String) -> String {
      (lines.reversed().map(change) + [fingerprint]).joined(separator: "\r\n")
    }
    let variants = [
      variant { $0.lowercased() },
      variant { $0.replacingOccurrences(of: " ", with: "-").replacingOccurrences(of: ":-", with: ": ") },
      variant { $0.replacingOccurrences(of: " ", with: "").replacingOccurrences(of: ":", with: ": ") },
      variant { "   " + $0.replacingOccurrences(of: ":", with: ".") + "  " },
      variant { $0.replacingOccurrences(of: ":", with: ")").replacingOccurrences(of: "0", with: "o") },
      variant { $0.replacingOccurrences(of: "1", with: "l") }.replacingOccurrences(of: "l:", with: "1:"),
      variant { $0.replacingOccurrences(of: "1", with: "I") }.replacingOccurrences(of: "I:", with: "1:"),
      (lines + ["FINGERPRINT: " + Self.key.fingerprint.uppercased().replacingOccurrences(of: "-", with: " ")])
        .joined(separator: "\n"),
    ]
    for text in variants {
      do {
        #expect(try PaperKey.read(text).key == Self.key)
      } catch {
        Issue.record("\(error) reading:\n\(text)")
      }
    }
  }

  /// The check is a CRC-16 over each line, so it catches every single mistyped character and
  /// every swap of two neighbours, and the error names the line.
  @Test func everySingleMistakeNamesItsLine() {
    let lines = PaperKey.lines(for: Self.key)
    let fingerprint = "fingerprint: " + Self.key.fingerprint
    for number in 1...PaperKey.lineCount {
      let characters = Array(lines[number - 1].dropFirst(3).filter { $0 != " " })
      func read(_ typed: [Character]) -> ReelError? {
        var text = lines
        text[number - 1] = "\(number): " + String(typed)
        return reelError { _ = try PaperKey.read((text + [fingerprint]).joined(separator: "\n")) }
      }
      for position in characters.indices {
        for replacement in PaperKey.alphabet.map({ Character(Unicode.Scalar($0)) })
        where replacement != characters[position] {
          var typed = characters
          typed[position] = replacement
          let error = read(typed)
          #expect(error?.message.hasPrefix("line \(number) does not match its check") == true, "\(typed)")
        }
        if position + 1 < characters.count, characters[position] != characters[position + 1] {
          var typed = characters
          typed.swapAt(position, position + 1)
          #expect(read(typed)?.message.hasPrefix("line \(number) does not match") == true, "swap at \(position)")
        }
      }
      #expect(read(characters.dropLast())?.message == "line \(number) has 15 characters, not 16")
      #expect(read(characters + ["U"])?.message.hasPrefix("line \(number): \"U\" is not a paper key character") == true)
    }
  }

  @Test func linesOutOfPlaceOrMissingAreNamed() {
    let lines = PaperKey.lines(for: Self.key)
    let fingerprint = "fingerprint: " + Self.key.fingerprint
    func body(_ index: Int) -> String { String(lines[index].dropFirst(3)) }
    let swapped = ["1: " + body(1), "2: " + body(0), lines[2], lines[3], fingerprint]
    #expect(reelError { _ = try PaperKey.read(swapped.joined(separator: "\n")) }?.message.hasPrefix("line 1") == true)
    let missing = [lines[0], lines[1], lines[3], fingerprint]
    #expect(
      reelError { _ = try PaperKey.read(missing.joined(separator: "\n")) }?.message
        == "line 3 of the paper key is missing")
    let twice = lines + ["2: " + body(2), fingerprint]
    #expect(
      reelError { _ = try PaperKey.read(twice.joined(separator: "\n")) }?.message
        == "line 2 is given twice, differently")
    #expect(reelError { _ = try PaperKey.read("nothing here\n") }?.message == "no paper key lines found")
    #expect(reelError { _ = try PaperKey.read((lines + ["5: 0000"]).joined(separator: "\n")) }?.kind == .usage)
  }

  @Test func theFingerprintChecksTheWholeKey() {
    let lines = PaperKey.lines(for: Self.key)
    let withoutFingerprint = reelError { _ = try PaperKey.read(lines.joined(separator: "\n")) }
    #expect(withoutFingerprint?.message == "the fingerprint line is missing")
    let otherFingerprint = "fingerprint: " + SymmetricKey.random().fingerprint
    let wrong = reelError { _ = try PaperKey.read((lines + [otherFingerprint]).joined(separator: "\n")) }
    #expect(wrong?.kind == .usage)
    #expect(wrong?.message.contains("the lines give a key with fingerprint \(Self.key.fingerprint)") == true)
  }
}
