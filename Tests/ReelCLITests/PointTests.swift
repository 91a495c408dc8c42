import Foundation
import ReelCore
import Testing

/// How a POINT argument is read, and what `reel restore` makes of each kind.
@Suite struct PointTests {
  static let now = Timestamp(rfc3339: "2026-12-04T13:21:00Z")!

  @Test func relativeTimesCountBackFromNow() throws {
    let cases: [(String, String, String)] = [
      ("-10m", "2026-12-04T13:11:00.000000000Z", "10 minutes ago"),
      ("-2h", "2026-12-04T11:21:00.000000000Z", "2 hours ago"),
      ("-1d", "2026-12-03T13:21:00.000000000Z", "1 day ago"),
      ("-90s", "2026-12-04T13:19:30.000000000Z", "90 seconds ago"),
      ("-1d12h", "2026-12-03T01:21:00.000000000Z", "36 hours ago"),
      ("10 minutes ago", "2026-12-04T13:11:00.000000000Z", "10 minutes ago"),
      ("1 minute ago", "2026-12-04T13:20:00.000000000Z", "1 minute ago"),
      ("2 hours ago", "2026-12-04T11:21:00.000000000Z", "2 hours ago"),
      ("1 day ago", "2026-12-03T13:21:00.000000000Z", "1 day ago"),
      ("3 days ago", "2026-12-01T13:21:00.000000000Z", "3 days ago"),
      ("1 week ago", "2026-11-27T13:21:00.000000000Z", "1 week ago"),
      ("45 seconds ago", "2026-12-04T13:20:15.000000000Z", "45 seconds ago"),
    ]
    for (text, time, spoken) in cases {
      let parsed = try Point.parse(text, now: Self.now)
      #expect(parsed.point == .time(Timestamp(rfc3339: time)!), "\(text)")
      #expect(parsed.description == "\(spoken) = \(time)", "\(text)")
    }
  }

  @Test func timesWithOffsetsAndFractions() throws {
    let offset = try Point.parse("2026-12-04T14:00:00+01:00")
    #expect(offset.point == .time(Timestamp(rfc3339: "2026-12-04T13:00:00Z")!))
    #expect(offset.description == "2026-12-04T14:00:00+01:00 = 2026-12-04T13:00:00.000000000Z")
    let fraction = try Point.parse("2026-12-04T13:00:00.25-02:30")
    #expect(
      fraction.point
        == .time(Timestamp(nanoseconds: Timestamp(rfc3339: "2026-12-04T15:30:00Z")!.nanoseconds + 250_000_000)))
    #expect(try Point.parse("latest").point == .latest)
    #expect(try Point.parse("seq:12").point == .seq(12))
    #expect(try Point.parse("before upgrade").point == .bookmark("before upgrade"))
    #expect(try Point.parse("bookmark:-10m").point == .bookmark("-10m"))
  }

  @Test func thingsThatLookLikeTimesButAreNotAreUsageErrors() {
    for text in [
      "2026-12-04T25:00:00Z", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-12-04T10:00:00+25:00",
      "2026-12-04", "-10y", "-10", "3 fortnights ago", "99999999999999999999 days ago", "-99999999999999w",
    ] {
      let error = #expect(throws: ReelError.self, "\(text)") { try Point.parse(text) }
      #expect(error?.kind == .usage && error?.message == "not a valid time: \(text)", "\(text)")
    }
    // The non-throwing form still takes such text as a label, which resolving reports.
    #expect(Point(parsing: "2026-12-04T25:00:00Z") == .bookmark("2026-12-04T25:00:00Z"))
    #expect(Point.invalidTime(ifTimeLike: "2026-12-04T25:00:00Z") != nil)
    #expect(Point.invalidTime(ifTimeLike: "before upgrade") == nil)
  }

  @Test func restoreSaysWhichKindOfPointItUsed() throws {
    let sandbox = ReelSandbox()
    try sandbox.reel("init")
    try sandbox.reel("volume", "create", "disk", "--size", "64K")
    let output = sandbox.root + "/x.img"
    for text in ["2026-12-04T25:00:00Z", "2026-13-01T00:00:00Z", "-10y"] {
      let bad = try sandbox.reel("restore", "disk", "--at", text, "--output", output)
      #expect(bad.status == 64, "\(text): \(bad.stderr)")
      #expect(bad.stderr.contains("not a valid time: \(text)"), "\(bad.stderr)")
      #expect(!bad.stderr.contains("no bookmark"))
    }
    // Ten minutes ago the volume did not exist yet: read as a time, not as a label.
    let early = try sandbox.reel("restore", "disk", "--at", "-10m", "--output", output)
    #expect(early.status == 66 && early.stderr.contains("before volume disk existed"), "\(early.stderr)")
    let earlyWords = try sandbox.reel("restore", "disk", "--at", "10 minutes ago", "--output", output)
    #expect(earlyWords.status == 66 && earlyWords.stderr.contains("before volume disk existed"))
    #expect(!FileManager.default.fileExists(atPath: output))

    Thread.sleep(forTimeInterval: 1.1)
    let recent = try sandbox.reel("restore", "disk", "--at", "-1s", "--output", output)
    #expect(recent.status == 0, "\(recent.stderr)")
    #expect(recent.stdout.contains("as of 1 second ago = "), "\(recent.stdout)")

    let future = try sandbox.reel("restore", "disk", "--at", "2099-01-01T01:00:00+01:00", "--output", output, "--force")
    #expect(future.status == 0, "\(future.stderr)")
    #expect(future.stdout.contains("as of 2099-01-01T01:00:00+01:00 = 2099-01-01T00:00:00.000000000Z"))
    #expect(
      future.stderr.contains(
        "warning: 2099-01-01T00:00:00.000000000Z is in the future; using the latest state of volume disk: seq 0"),
      "\(future.stderr)")

    // A label that would read as a time could never be restored to.
    let label = try sandbox.reel("bookmark", "disk", "--", "-10m")
    #expect(label.status == 64, "\(label.stderr)")
  }
}
