import Foundation
import ReelCore
import ReelPipeline
import ReelStore
import Testing

@Suite("Pipeline kill and resume", .serialized)
struct KillResumeTests {
  /// The nightly pipeline is SIGKILLed at every event it reports — each stage boundary and
  /// each archive sealed, verified, exported and checked, each segment deleted — then run
  /// again. Every time: the second run succeeds, no archive exists twice, no segment was
  /// deleted without a verified copy, and the end state is the uninterrupted run's.
  @Test("killed at every event, a rerun finishes with the uninterrupted run's state")
  func killAtEveryEvent() throws {
    let reference = try PipelineSandbox()
    let file = try reference.pipeline("nightly", PipelineSandbox.nightly)
    let log = reference.root + "/events.log"
    try reference.check(reference.reel(["pipeline", "run", file], environment: ["REEL_PIPELINE_EVENT_LOG": log]))
    let expected = try reference.state()
    let events = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map(String.init)
    // Run start and end, 7 stage starts and ends, and the work inside the stages.
    #expect(events.count > 2 + 14 + 8)
    for stage in ["cut", "seal", "verify", "export", "verify-on-media", "record-catalog", "prune-journal"] {
      #expect(events.contains { $0.contains(" \(stage): stage start") })
    }
    #expect(events.contains { $0.contains("deleted alpha segment") })

    for kill in 1..<events.count {
      let sandbox = try PipelineSandbox()
      let path = try sandbox.pipeline("nightly", PipelineSandbox.nightly)
      let segments = try sandbox.segmentRanges()
      let killed = try sandbox.reel(["pipeline", "run", path], environment: ["REEL_PIPELINE_KILL_AFTER": String(kill)])
      #expect(killed.killed, "kill at event \(kill) (\(events[kill - 1])): the run was not killed: \(killed.output)")
      #expect(
        try sandbox.prunedSegmentsAreProtected(segments, copies: 1).isEmpty,
        "after a kill at \(events[kill - 1])")
      let status = try sandbox.reel(["pipeline", "status", "--json"])
      let runs = try sandbox.json(status.stdout)["runs"] as? [[String: Any]] ?? []
      #expect(runs.first?["status"] as? String == "running", "a killed run shows as running (to resume)")

      let rerun = try sandbox.reel(["pipeline", "run", path, "--json"])
      #expect(rerun.status == 0, "rerun after a kill at \(events[kill - 1]): \(rerun.output)")
      #expect(try sandbox.json(rerun.stdout)["resumed"] as? Bool == true)
      #expect(try sandbox.state() == expected, "after a kill at event \(kill): \(events[kill - 1])")
      #expect(try sandbox.prunedSegmentsAreProtected(segments, copies: 1).isEmpty)
    }
  }

  @Test("a changed pipeline file starts a new run instead of resuming the killed one")
  func changedFileSupersedes() throws {
    let sandbox = try PipelineSandbox()
    let path = try sandbox.pipeline("nightly", PipelineSandbox.nightly)
    let killed = try sandbox.reel(["pipeline", "run", path], environment: ["REEL_PIPELINE_KILL_AFTER": "6"])
    #expect(killed.killed)
    _ = try sandbox.pipeline("nightly", PipelineSandbox.nightly + "\n# edited\n")
    let rerun = try sandbox.reel(["pipeline", "run", path, "--json"])
    #expect(rerun.status == 0, "\(rerun.output)")
    #expect(try sandbox.json(rerun.stdout)["resumed"] as? Bool == false)
    let runs = try sandbox.openStore().catalog.pipelineRuns()
    #expect(runs.map(\.status) == [.success, .superseded])
  }
}
