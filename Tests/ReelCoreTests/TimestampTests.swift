import ReelCore
import Testing

@Suite struct TimestampTests {
  /// A timestamp is Int64 nanoseconds since 1970: the last instant it holds parses to
  /// exactly Int64.max, and anything later is refused rather than trapping (a hostile
  /// label's `labeled: 2823-…` crashed `reel media catalog` with signal 4 before).
  @Test func instantsPastWhatInt64NanosecondsHoldAreRefusedNotTrapped() {
    #expect(Timestamp(rfc3339: "2262-04-11T23:47:16.854775807Z")?.nanoseconds == Int64.max)
    #expect(Timestamp(rfc3339: "2262-04-11T23:47:16.854775808Z") == nil)
    #expect(Timestamp(rfc3339: "2823-11-14T22:13:20.000000000Z") == nil)
    #expect(Timestamp(rfc3339: "9999-12-31T23:59:59Z") == nil)
    #expect(Timestamp(rfc3339: "0001-01-01T00:00:00Z") == nil)
    #expect(Timestamp(rfc3339: "2026-12-04T21:40:00+01:00")?.description.hasPrefix("2026-12-04T20:40:00") == true)
  }
}
