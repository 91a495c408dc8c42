import Foundation
import ReelCore
import ReelIO
import ReelTestSupport
import Testing

@testable import ReelCapture

/// The pending map against a byte-by-byte model: random overlapping inserts (writes and
/// zeroings, at any byte offset, across zone edges), records applied oldest first, and
/// random reads, with 4 KiB zones so that a small volume has many of them.
@Suite struct PendingMapTests {
  static let size = 24_000
  /// Stands in for journal segments; only identity and offsets matter here.
  let segments = [
    try! PosixFile(path: "/dev/null", flags: O_RDONLY), try! PosixFile(path: "/dev/null", flags: O_RDONLY),
  ]

  /// What the map must say about one byte: the record deciding it and where its value is
  /// (segment index and offset, or -1 for zeros).
  struct Owner: Equatable {
    var seq: Seq
    var segment: Int
    var offset: UInt64
  }

  func owners(of pieces: [PendingPiece], from start: Int, to end: Int) throws -> [Owner?] {
    var found = [Owner?](repeating: nil, count: end - start)
    var previousEnd = UInt64(start)
    for piece in pieces {
      try #require(piece.start >= previousEnd && piece.start < piece.end && piece.end <= UInt64(end))
      previousEnd = piece.end
      for byte in piece.start..<piece.end {
        let owner: Owner
        switch piece.source.advanced(by: byte - piece.start) {
        case .zeros: owner = Owner(seq: piece.seq, segment: -1, offset: 0)
        case .journal(let file, let offset):
          owner = Owner(seq: piece.seq, segment: segments.firstIndex { $0 === file }!, offset: offset)
        }
        found[Int(byte) - start] = owner
      }
    }
    return found
  }

  @Test(arguments: [1, 2, 3])
  func matchesAByteModel(seed: UInt64) throws {
    var random = SplitMix(seed: seed)
    var map = PendingMap(zoneShift: 12)
    var model = [Owner?](repeating: nil, count: Self.size)
    var pending: [(seq: Seq, start: Int, end: Int)] = []
    var seq: Seq = 0
    for step in 0..<2000 {
      let choice = Int.random(in: 0..<10, using: &random)
      if choice < 5 || pending.isEmpty {
        seq += 1
        let start = Int.random(in: 0..<Self.size - 1, using: &random)
        let length = Int.random(
          in: 1...min(Self.size - start, Bool.random(using: &random) ? 300 : 9000), using: &random)
        let zeros = Int.random(in: 0..<4, using: &random) == 0
        let segment = Int.random(in: 0..<2, using: &random)
        let base = UInt64.random(in: 0..<1 << 30, using: &random)
        map.insert(
          start: UInt64(start), end: UInt64(start + length), seq: seq,
          source: zeros ? .zeros : .journal(segments[segment], base))
        for byte in start..<(start + length) {
          model[byte] =
            zeros
            ? Owner(seq: seq, segment: -1, offset: 0)
            : Owner(seq: seq, segment: segment, offset: base + UInt64(byte - start))
        }
        pending.append((seq, start, start + length))
      } else if choice < 8 {
        // Apply the oldest record: exactly the bytes it still decides, then forget them.
        let oldest = pending.removeFirst()
        let live = map.pieces(of: oldest.seq, from: UInt64(oldest.start), to: UInt64(oldest.end))
        let owned = try owners(of: live, from: oldest.start, to: oldest.end)
        for byte in oldest.start..<oldest.end {
          let expected = model[byte]?.seq == oldest.seq ? model[byte] : nil
          try #require(owned[byte - oldest.start] == expected, "step \(step): byte \(byte) of seq \(oldest.seq)")
        }
        map.remove(seq: oldest.seq, from: UInt64(oldest.start), to: UInt64(oldest.end))
        for byte in oldest.start..<oldest.end where model[byte]?.seq == oldest.seq { model[byte] = nil }
      } else {
        let start = Int.random(in: 0..<Self.size, using: &random)
        let end = Int.random(in: start...min(Self.size, start + 9000), using: &random)
        let found = try owners(of: map.pieces(from: UInt64(start), to: UInt64(end)), from: start, to: end)
        try #require(Array(model[start..<end]) == found, "step \(step): read \(start)..<\(end)")
      }
      if step % 25 == 0 {
        try #require(map.pieceCount == map.pieces(from: 0, to: UInt64(Self.size)).count)
        try #require(map.isEmpty == model.allSatisfy { $0 == nil })
      }
    }
    for record in pending { map.remove(seq: record.seq, from: UInt64(record.start), to: UInt64(record.end)) }
    #expect(map.isEmpty && map.pieceCount == 0)
  }

  @Test func aWriteInsideAnotherSplitsItAndMergesBackWhenApplied() {
    var map = PendingMap()
    map.insert(start: 0, end: 3 << 20, seq: 1, source: .journal(segments[0], 1000))
    map.insert(start: 1 << 20, end: (1 << 20) + 10, seq: 2, source: .zeros)
    let pieces = map.pieces(from: 0, to: 3 << 20)
    #expect(pieces.map(\.seq) == [1, 2, 1, 1])
    let live = map.pieces(of: 1, from: 0, to: 3 << 20)
    #expect(live.map(\.start) == [0, (1 << 20) + 10])
    #expect(live.map(\.end) == [1 << 20, 3 << 20], "continuing pieces across zones merge")
    guard case .journal(_, let offset) = live[1].source else {
      Issue.record("the second piece lost its source")
      return
    }
    #expect(offset == 1000 + (1 << 20) + 10)
  }
}
