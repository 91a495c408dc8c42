import ReelCore

/// Searches a range of a volume's history for where a question's answer changes, asking
/// it at as few points as bisection allows. `points[0]` is where the range starts; the
/// other points are the records that changed the volume's bytes after it (only there can
/// anything stored in the volume differ from the point before, `LiveStore.changes`), in
/// seq order. Each point is asked at most once; `evaluations` counts the asks.
///
/// Both searches compare answers only at the ends of intervals, so a change undone inside
/// an interval whose ends answer alike (A→B→A) is not seen.
package final class HistorySearch<Answer: Equatable> {
  package let points: [VolumeChange]
  private let ask: (Int) throws -> Answer
  private var answers: [Int: Answer] = [:]
  package private(set) var evaluations = 0

  /// `ask` answers the question at `points[index]`; it is called once per index at most,
  /// in the order the search needs them (so a caller can report each as it happens).
  package init(points: [VolumeChange], ask: @escaping (Int) throws -> Answer) {
    precondition(!points.isEmpty, "a history search needs the point its range starts at")
    self.points = points
    self.ask = ask
  }

  /// The answer at `points[index]`, asked once.
  package func answer(_ index: Int) throws -> Answer {
    if let known = answers[index] { return known }
    try Interrupt.check()
    let answer = try ask(index)
    evaluations += 1
    answers[index] = answer
    return answer
  }

  /// The first point whose answer differs from the answer at `points[0]`, assuming the
  /// answer changes once (then stays changed) in the range; nil when the last point
  /// answers as the first. Asks ⌈log₂(points.count − 1)⌉ + 2 points at most: both ends,
  /// then the middle of the interval whose low end answers as the start and whose high
  /// end does not. If the answer changes more than once, the point found is one where it
  /// turned from the start's answer to another, not necessarily the first such.
  package func firstDifference() throws -> Int? {
    let start = try answer(0)
    var high = points.count - 1
    guard high > 0, try answer(high) != start else { return nil }
    var low = 0
    while high - low > 1 {
      let middle = low + (high - low) / 2
      if try answer(middle) == start { low = middle } else { high = middle }
    }
    return high
  }

  /// Every point whose answer differs from the point before, found by splitting each
  /// interval whose ends differ at its middle until the change stands between neighbours;
  /// intervals are split lowest first, so points are asked in seq order of the search.
  /// Costs about (changes × log₂ points) asks.
  package func changes() throws -> [Int] {
    var changed: [Int] = []
    // An explicit stack instead of recursion: ranges are split in order, lowest first.
    var ranges = [(0, points.count - 1)]
    while let (low, high) = ranges.popLast() {
      guard high > low, try answer(low) != (try answer(high)) else { continue }
      if high == low + 1 {
        changed.append(high)
        continue
      }
      let middle = (low + high) / 2
      ranges.append((middle, high))
      ranges.append((low, middle))
    }
    return changed
  }
}
