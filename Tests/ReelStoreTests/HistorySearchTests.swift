import Foundation
import ReelCore
import ReelStore
import Testing

/// The bisection both `reel files history` and `reel bisect` use, on made-up histories
/// whose answers are known at every point.
@Suite struct HistorySearchTests {
  func points(_ count: Int) -> [VolumeChange] {
    (0..<count).map { VolumeChange(seq: Seq(10 + 3 * $0), time: Timestamp(nanoseconds: Int64($0) * 1000)) }
  }

  /// ⌈log₂(records)⌉ + 2, computed here independently of the code under test.
  func bound(_ records: Int) -> Int {
    records == 0 ? 1 : Int(log2(Double(records)).rounded(.up)) + 2
  }

  @Test func firstDifferenceFindsEveryPositionWithinTheBound() throws {
    for count in [1, 2, 3, 4, 5, 7, 8, 9, 16, 17, 100, 1000, 4097] {
      let positions =
        count == 1 ? [] : Array(Set([1, 2, count / 2, count - 2, count - 1].filter { $0 >= 1 && $0 < count }))
      for change in positions {
        var asked: [Int] = []
        let search = HistorySearch(points: points(count)) { index -> Bool in
          asked.append(index)
          return index >= change
        }
        #expect(try search.firstDifference() == change, "\(count) points, change at \(change)")
        #expect(search.evaluations == asked.count)
        #expect(Set(asked).count == asked.count, "a point was asked twice: \(asked)")
        #expect(asked.count <= bound(count - 1), "\(count) points, change at \(change): \(asked.count) asks")
        #expect(asked.prefix(2) == [0, count - 1], "the ends are asked first")
      }
      let unchanged = HistorySearch(points: points(count)) { _ in "same" }
      #expect(try unchanged.firstDifference() == nil)
      #expect(unchanged.evaluations == min(count, 2))
    }
  }

  @Test func aChangeAndAChangeBackAreInvisibleToFirstDifference() throws {
    let search = HistorySearch(points: points(64)) { index in index >= 20 && index < 40 }
    #expect(try search.firstDifference() == nil)
  }

  @Test func changesFindsEveryChangeBetweenDifferingEnds() throws {
    let answers = Array(repeating: 0, count: 30) + Array(repeating: 1, count: 50) + Array(repeating: 2, count: 20)
    let search = HistorySearch(points: points(answers.count)) { answers[$0] }
    #expect(try search.changes() == [30, 80])
    #expect(search.evaluations < answers.count / 2)
  }

  @Test func errorsOfTheQuestionStopTheSearch() throws {
    struct Refused: Error {}
    let search = HistorySearch(points: points(8)) { index -> Int in
      if index == 7 { throw Refused() }
      return 0
    }
    #expect(throws: Refused.self) { try search.firstDifference() }
  }
}
