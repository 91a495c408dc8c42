import Foundation
import ReelCore
import ReelJournal
import ReelStore
import ReelTestSupport
import Testing

@Suite("Pipelines with clones", .serialized)
struct ClonePipelineTests {
  @Test("the nightly run seals a clone, prune keeps what it needs, and the drill rebuilds it from tape")
  func nightlyWithAClone() throws {
    let sandbox = try PipelineSandbox()
    try sandbox.check(sandbox.reel(["clone", "alpha", "--at", "session-1", "--as", "gamma"]))
    try writeToClone(sandbox, bookmark: "gamma-1")
    let nightly = try sandbox.pipeline("nightly", PipelineSandbox.nightly)
    let first = try sandbox.reel(["pipeline", "run", nightly, "--json"])
    #expect(first.status == 0, "\(first.output)")
    let stages = try sandbox.json(first.stdout)["stages"] as? [[String: Any]] ?? []
    #expect(stages.first { $0["name"] as? String == "seal" }?["items"] as? Int == 3, "alpha, beta and the clone")
    #expect(stages.first { $0["name"] as? String == "export" }?["items"] as? Int == 3)

    // The origin's history before now goes from the store, except what the clone reads.
    let pruned = try sandbox.reel(["prune", "alpha", "--keep-within", "0s"])
    #expect(pruned.status == 0, "\(pruned.output)")
    try writeToClone(sandbox, bookmark: "gamma-2")
    let second = try sandbox.reel(["pipeline", "run", nightly])
    #expect(second.status == 0, "\(second.output)")

    let drill = try sandbox.pipeline(
      "drill", String(contentsOfFile: "\(PipelineTests.repository)/pipelines/dr-drill.yaml", encoding: .utf8))
    let run = try sandbox.reel(["pipeline", "run", drill])
    #expect(run.status == 0, "\(run.output)")
    #expect(run.stdout.contains("gamma: restored seq"), "\(run.stdout)")
    #expect(run.stdout.contains("3 volume(s) restored and identical to the live store"), "\(run.stdout)")
  }

  /// Random writes to the clone through its own journal, then a bookmark.
  private func writeToClone(_ sandbox: PipelineSandbox, bookmark: String) throws {
    let store = try sandbox.openStore()
    let clone = try store.layout.descriptor(of: "gamma")
    let (writer, _) = try JournalWriter.open(directory: store.layout.journalDirectory("gamma"), volume: clone.id)
    var rng = SplitMix(seed: UInt64(bookmark.utf8.reduce(0) { $0 &* 31 &+ UInt64($1) }))
    for _ in 0..<8 {
      let data = (0..<(16 << 10)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
      _ = try writer.append(.write(offset: (rng.next() % 500) * 16 << 10, data: data))
    }
    _ = try writer.append(.bookmark(bookmark))
    try writer.close()
  }
}
