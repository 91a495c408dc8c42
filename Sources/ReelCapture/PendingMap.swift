import ReelCore
import ReelIO

/// Where the current bytes of a pending range are.
enum PendingSource {
  /// A trim or zeroing: the range reads as zeros.
  case zeros
  /// A write's payload in a journal segment, starting at this file offset.
  case journal(PosixFile, UInt64)

  /// The same source `count` bytes further on.
  func advanced(by count: UInt64) -> PendingSource {
    switch self {
    case .zeros: .zeros
    case .journal(let file, let offset): .journal(file, offset + count)
    }
  }

  /// True when `next` continues this source right after `count` bytes of it.
  func isContinued(by next: PendingSource, after count: UInt64) -> Bool {
    switch (self, next) {
    case (.zeros, .zeros): true
    case (.journal(let file, let offset), .journal(let nextFile, let nextOffset)):
      file === nextFile && offset + count == nextOffset
    default: false
    }
  }
}

/// A volume range `start..<end` whose current bytes come from record `seq`.
struct PendingPiece {
  var start: UInt64
  var end: UInt64
  var seq: Seq
  var source: PendingSource

  var count: UInt64 { end - start }

  /// The part of this piece inside `lower..<upper` (which must overlap it).
  func clipped(to lower: UInt64, _ upper: UInt64) -> PendingPiece {
    let from = max(start, lower)
    return PendingPiece(start: from, end: min(end, upper), seq: seq, source: source.advanced(by: from - start))
  }
}

/// Journaled changes that live.img does not have yet: for every byte they touch, the
/// newest record that wrote it and where that record's bytes are. Pieces are kept per
/// zone of the volume (1 MiB), sorted and never overlapping, so an operation costs in
/// proportion to the zones it touches and the pieces in them.
struct PendingMap {
  /// log2 of the zone size; tests use small zones.
  let zoneShift: UInt64

  init(zoneShift: UInt64 = 20) {
    self.zoneShift = zoneShift
  }

  private var zones: [UInt64: [PendingPiece]] = [:]
  private(set) var pieceCount = 0

  var isEmpty: Bool { zones.isEmpty }

  /// `seq`, newer than every record already here, now decides `start..<end`.
  mutating func insert(start: UInt64, end: UInt64, seq: Seq, source: PendingSource) {
    Self.forEachZone(start, end, zoneShift) { zone, lower, upper in
      let piece = PendingPiece(start: lower, end: upper, seq: seq, source: source.advanced(by: lower - start))
      var added = 0
      modifyZone(zone) { pieces in
        let first = Self.firstIndex(in: pieces, endingAfter: lower)
        var past = first
        while past < pieces.count && pieces[past].start < upper { past += 1 }
        var replacement: [PendingPiece] = []
        if first < past && pieces[first].start < lower {
          replacement.append(pieces[first].clipped(to: pieces[first].start, lower))
        }
        replacement.append(piece)
        if first < past && pieces[past - 1].end > upper {
          replacement.append(pieces[past - 1].clipped(to: upper, pieces[past - 1].end))
        }
        added = replacement.count - (past - first)
        pieces.replaceSubrange(first..<past, with: replacement)
      }
      pieceCount += added
    }
  }

  /// The pieces inside `start..<end`, clipped to it, in offset order.
  func pieces(from start: UInt64, to end: UInt64) -> [PendingPiece] {
    var found: [PendingPiece] = []
    Self.forEachZone(start, end, zoneShift) { zone, lower, upper in
      guard let pieces = zones[zone] else { return }
      var index = Self.firstIndex(in: pieces, endingAfter: lower)
      while index < pieces.count && pieces[index].start < upper {
        found.append(pieces[index].clipped(to: lower, upper))
        index += 1
      }
    }
    return found
  }

  /// The pieces record `seq` still decides inside its range `start..<end`, in offset
  /// order, with neighbours that continue each other merged.
  func pieces(of seq: Seq, from start: UInt64, to end: UInt64) -> [PendingPiece] {
    var found: [PendingPiece] = []
    Self.forEachZone(start, end, zoneShift) { zone, lower, upper in
      guard let pieces = zones[zone] else { return }
      var index = Self.firstIndex(in: pieces, endingAfter: lower)
      while index < pieces.count && pieces[index].start < upper {
        let piece = pieces[index]
        index += 1
        guard piece.seq == seq else { continue }
        if let last = found.last, last.end == piece.start, last.source.isContinued(by: piece.source, after: last.count)
        {
          found[found.count - 1].end = piece.end
        } else {
          found.append(piece)
        }
      }
    }
    return found
  }

  /// Forgets what record `seq` decides inside its range `start..<end`: it is in live.img.
  mutating func remove(seq: Seq, from start: UInt64, to end: UInt64) {
    Self.forEachZone(start, end, zoneShift) { zone, lower, upper in
      var removed = 0
      modifyZone(zone) { pieces in
        let before = pieces.count
        let first = Self.firstIndex(in: pieces, endingAfter: lower)
        var past = first
        while past < pieces.count && pieces[past].start < upper { past += 1 }
        pieces.replaceSubrange(first..<past, with: pieces[first..<past].filter { $0.seq != seq })
        removed = before - pieces.count
      }
      pieceCount -= removed
    }
  }

  /// Calls `body` with each zone `start..<end` touches and the part of the range in it.
  private static func forEachZone(
    _ start: UInt64, _ end: UInt64, _ zoneShift: UInt64, _ body: (UInt64, UInt64, UInt64) -> Void
  ) {
    guard start < end else { return }
    var lower = start
    while lower < end {
      let zone = lower >> zoneShift
      let upper = min(end, (zone + 1) << zoneShift)
      body(zone, lower, upper)
      lower = upper
    }
  }

  private mutating func modifyZone(_ zone: UInt64, _ body: (inout [PendingPiece]) -> Void) {
    body(&zones[zone, default: []])
    if zones[zone]?.isEmpty == true { zones[zone] = nil }
  }

  /// The first piece that ends after `offset` (pieces are sorted and disjoint, so their
  /// ends are sorted too).
  private static func firstIndex(in pieces: [PendingPiece], endingAfter offset: UInt64) -> Int {
    var low = 0
    var high = pieces.count
    while low < high {
      let middle = (low + high) / 2
      if pieces[middle].end <= offset { low = middle + 1 } else { high = middle }
    }
    return low
  }
}
