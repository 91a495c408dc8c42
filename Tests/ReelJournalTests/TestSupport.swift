import Foundation
import ReelCore
import ReelTestSupport

@testable import ReelJournal

/// A clock the test steers; each read advances it by `step` unless told otherwise.
final class ManualClock: @unchecked Sendable {
  private let lock = NSLock()
  private var current: Int64
  var step: Int64

  init(start: Int64 = 1_800_000_000_000_000_000, step: Int64 = 1_000) {
    current = start
    self.step = step
  }

  func set(_ value: Int64) { lock.withLock { current = value } }

  func read() -> Timestamp {
    lock.withLock {
      defer { current += step }
      return Timestamp(nanoseconds: current)
    }
  }
}

/// Deterministic bytes for record `index`, so a test can check content without keeping it.
func pattern(_ index: Int, count: Int) -> [UInt8] {
  var state = UInt64(index) &* 0x9E37_79B9_7F4A_7C15 | 1
  return (0..<count).map { _ in
    state ^= state << 13
    state ^= state >> 7
    state ^= state << 17
    return UInt8(truncatingIfNeeded: state)
  }
}

func readAll(_ directory: String, _ volume: VolumeID) throws -> [JournalRecord] {
  var records: [JournalRecord] = []
  try JournalReader(directory: directory, volume: volume).forEachRecord {
    records.append($0); return true
  }
  return records
}

func segmentFiles(_ directory: String) -> [String] {
  ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
    .filter { $0.hasSuffix(".rjs") }.sorted().map { directory + "/" + $0 }
}

func fileBytes(_ path: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path)!) }

func writeBytes(_ path: String, _ bytes: [UInt8]) {
  _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
}

func copyDirectory(_ from: String, _ to: String) throws {
  try? FileManager.default.removeItem(atPath: to)
  try FileManager.default.copyItem(atPath: from, toPath: to)
}
