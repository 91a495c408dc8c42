import ReelCore

/// Version chains that a reader going through a volume in order will want next. A read
/// that starts near where a recent read ended fetches the chains of the next `window`
/// blocks in the same catalog transaction, so a sequential reader (nbdcopy of a lazy
/// clone, a restore through NBD) pays one transaction per window instead of one per
/// request; scattered readers (file reads) fetch only what they ask for.
///
/// A view's point is fixed, so its chains never change; only where their chunks are
/// stored can (prune moves them), and a read that fails then calls `forget` and asks the
/// catalog again.
final class ChainReadAhead: Sendable {
  /// Blocks fetched per window: 16 MiB of 256 KiB store blocks.
  static let window: UInt64 = 64
  /// How far from a recent read's end a read may start and still count as in order: the
  /// concurrent requests of one sequential client arrive a little out of order.
  static let slack: UInt64 = 64
  static let keptWindows = 8
  static let keptEnds = 32

  private struct Window {
    var range: Range<UInt64>
    var chains: [[BlockVersion]]
  }

  private struct State {
    var windows: [Window] = []  // oldest first
    /// Windows being fetched: a read inside one waits for it rather than asking the
    /// catalog for the same rows.
    var pending: [Range<UInt64>] = []
    var recentEnds: [UInt64] = []  // oldest first

    func cached(_ range: Range<UInt64>) -> [[BlockVersion]]? {
      var result: [[BlockVersion]] = []
      result.reserveCapacity(range.count)
      var block = range.lowerBound
      while block < range.upperBound {
        guard let window = windows.last(where: { $0.range.contains(block) }) else { return nil }
        let stop = min(range.upperBound, window.range.upperBound)
        result += window.chains[Int(block - window.range.lowerBound)..<Int(stop - window.range.lowerBound)]
        block = stop
      }
      return result
    }

    func inOrder(_ range: Range<UInt64>) -> Bool {
      recentEnds.contains { end in
        end <= range.lowerBound
          ? range.lowerBound - end <= ChainReadAhead.slack : end - range.lowerBound <= ChainReadAhead.slack
      }
    }

    mutating func noteRead(_ range: Range<UInt64>) {
      recentEnds.append(range.upperBound)
      if recentEnds.count > ChainReadAhead.keptEnds { recentEnds.removeFirst() }
    }
  }

  private let state = Locked(State())

  /// The chains of `range`'s blocks, from a window fetched earlier, or from `fetch`.
  func chains(
    _ range: Range<UInt64>, blockCount: UInt64, fetch: (Range<UInt64>) throws -> [[BlockVersion]]
  ) throws -> [[BlockVersion]] {
    enum Plan {
      case cached([[BlockVersion]])
      case fetchAhead(Range<UInt64>)
      case fetchOnly
    }
    let plan = state.withLock(when: { state in !state.pending.contains { $0.contains(range.lowerBound) } }) {
      state -> Plan in
      defer { state.noteRead(range) }
      if let cached = state.cached(range) { return .cached(cached) }
      guard state.inOrder(range) else { return .fetchOnly }
      let ahead = range.lowerBound..<max(range.upperBound, min(blockCount, range.lowerBound + Self.window))
      state.pending.append(ahead)
      return .fetchAhead(ahead)
    }
    switch plan {
    case .cached(let chains):
      return chains
    case .fetchOnly:
      return try fetch(range)
    case .fetchAhead(let ahead):
      let fetched = Result { try fetch(ahead) }
      state.withLock { state in
        state.pending.removeAll { $0 == ahead }
        if case .success(let chains) = fetched {
          state.windows.append(Window(range: ahead, chains: chains))
          if state.windows.count > Self.keptWindows { state.windows.removeFirst() }
        }
      }
      state.broadcast()
      return Array(try fetched.get()[0..<range.count])
    }
  }

  /// Drops every window that overlaps `range`.
  func forget(_ range: Range<UInt64>) {
    state.withLock { state in state.windows.removeAll { $0.range.overlaps(range) } }
  }
}
