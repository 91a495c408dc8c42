import Foundation
import GRDB
import ReelArchive
import ReelCore
import ReelPipeline
import ReelStore
import ReelTestSupport
import Testing

@Suite("Pipelines", .serialized)
struct PipelineTests {
  @Test("nightly: seal, export, verify on media, record the catalog, prune only protected segments")
  func nightly() throws {
    let sandbox = try PipelineSandbox()
    let before = try sandbox.segmentRanges()
    let file = try sandbox.pipeline("nightly", PipelineSandbox.nightly)
    let metrics = sandbox.root + "/metrics/reel.prom"
    let run = try sandbox.reel(["pipeline", "run", file, "--json", "--metrics-file", metrics])
    #expect(run.status == 0, "\(run.output)")
    let report = try sandbox.json(run.stdout)
    #expect(report["status"] as? String == "success")
    let stages = report["stages"] as? [[String: Any]] ?? []
    #expect(stages.map { $0["status"] as? String } == Array(repeating: "done", count: 7))
    #expect(stages.first { $0["name"] as? String == "seal" }?["items"] as? Int == 2)
    #expect(stages.first { $0["name"] as? String == "export" }?["items"] as? Int == 2)
    #expect(stages.first { $0["name"] as? String == "verify-on-media" }?["items"] as? Int == 2)
    let pruned = stages.first { $0["name"] as? String == "prune-journal" }?["items"] as? Int ?? 0
    #expect(pruned > 0)
    #expect(try sandbox.prunedSegmentsAreProtected(before, copies: 1).isEmpty)
    // Sealed up to the last bookmark of each volume; only the newest segment is left.
    for volume in sandbox.volumes {
      #expect(sandbox.segments()[volume]?.count == 1)
      #expect(before[volume]!.count > 2)
    }
    // A catalog copy that SQLite opens, and the media list.
    let copies = try FileManager.default.contentsOfDirectory(atPath: sandbox.store + "/catalog-copies")
    #expect(copies.contains { $0.hasSuffix(".sqlite") } && copies.contains { $0.hasSuffix(".media.json") })
    let copy = try DatabaseQueue(path: sandbox.store + "/catalog-copies/" + copies.first { $0.hasSuffix(".sqlite") }!)
    #expect(try copy.read { try Int.fetchOne($0, sql: "SELECT COUNT(*) FROM sealed_archive") } == 2)
    // Metrics for the textfile collector.
    let text = try String(contentsOfFile: metrics, encoding: .utf8)
    #expect(text.contains("reel_pipeline_last_success_timestamp_seconds{pipeline=\"nightly\"}"))
    #expect(text.contains("reel_pipeline_stage_bytes{pipeline=\"nightly\",stage=\"export\",kind=\"export\"}"))
    #expect(text.contains("reel_pipeline_stage_failures_total{pipeline=\"nightly\",stage=\"seal\",kind=\"seal\"} 0"))

    // The journal still reads, restores still work, and a second run has nothing to do.
    let verify = try sandbox.reel(["journal", "verify", "alpha"])
    #expect(verify.status == 0, "\(verify.output)")
    let again = try sandbox.reel(["pipeline", "run", file, "--json"])
    #expect(again.status == 0, "\(again.output)")
    let second = try sandbox.json(again.stdout)["stages"] as? [[String: Any]] ?? []
    #expect(second.allSatisfy { ($0["name"] as? String == "record-catalog") || ($0["items"] as? Int == 0) })

    let status = try sandbox.reel(["pipeline", "status", "--json"])
    let runs = (try sandbox.json(status.stdout))["runs"] as? [[String: Any]] ?? []
    #expect(runs.count == 2)
    #expect(runs.allSatisfy { $0["status"] as? String == "success" })
    let plain = try sandbox.reel(["pipeline", "status"])
    #expect(plain.stdout.contains("nightly run 1: SUCCESS"))
  }

  @Test("prune keeps segments whose archives lack N verified copies")
  func pruneNeedsCopies() throws {
    let sandbox = try PipelineSandbox()
    let before = sandbox.segments()
    // Also seals archive format 1 (the other pipelines seal the default, 2), which the rest
    // of the chain (export, verify on media, offsite copy) handles like format 2.
    let file = try sandbox.pipeline(
      "two-copies",
      PipelineSandbox.nightly.replacingOccurrences(of: "copies: 1", with: "copies: 2")
        .replacingOccurrences(of: "- stage: seal", with: "- stage: seal\n    format: 1\n    parity: 0"))
    let run = try sandbox.reel(["pipeline", "run", file])
    #expect(run.status == 0, "\(run.output)")
    let sealed = try FileManager.default.contentsOfDirectory(atPath: sandbox.archives).filter {
      $0.hasSuffix(".reel.tar")
    }
    #expect(!sealed.isEmpty)
    for name in sealed {
      #expect(try ArchiveVerifier.readManifest(path: sandbox.archives + "/" + name).formatVersion == 1)
    }
    #expect(sandbox.segments() == before)
    #expect(run.stdout.contains("1 verified copy on media, 2 required"))
    // The offsite copy makes two: now they go.
    let offsite = try sandbox.pipeline(
      "offsite",
      """
      pipeline: offsite
      media-set: offsite
      stages:
        - stage: offsite-copy
          from-media-set: primary
          to:
            - vtape:${REEL_OFFSITE_VTL}
        - stage: verify-on-media
        - stage: list-cartridges
      """)
    let copied = try sandbox.reel(["pipeline", "run", offsite])
    #expect(copied.status == 0, "\(copied.output)")
    #expect(copied.stdout.contains("SEND OFFSITE: O1"))
    let rerun = try sandbox.reel(["pipeline", "run", file])
    #expect(rerun.status == 0, "\(rerun.output)")
    #expect(sandbox.segments().values.allSatisfy { $0.count == 1 })
  }

  @Test("offsite copy reads archives back from the primary set when their files are gone")
  func offsiteFromMedia() throws {
    let sandbox = try PipelineSandbox()
    let nightly = try sandbox.pipeline("nightly", PipelineSandbox.nightly)
    try sandbox.check(sandbox.reel(["pipeline", "run", nightly]))
    try FileManager.default.removeItem(atPath: sandbox.archives)
    let file = try sandbox.pipeline(
      "offsite", String(contentsOfFile: "\(Self.repository)/pipelines/offsite-tape.yaml", encoding: .utf8))
    let run = try sandbox.reel(["pipeline", "run", file, "--json"])
    #expect(run.status == 0, "\(run.output)")
    let stages = try sandbox.json(run.stdout)["stages"] as? [[String: Any]] ?? []
    #expect(stages.map { $0["items"] as? Int } == [2, 2, 1])
    #expect(!FileManager.default.fileExists(atPath: sandbox.store + "/run/offsite-staging"))
  }

  @Test("DR drill: rehydrate from the cartridges into a scratch store, restore, compare with the live store")
  func drill() throws {
    let sandbox = try PipelineSandbox()
    let nightly = try sandbox.pipeline("nightly", PipelineSandbox.nightly)
    try sandbox.check(sandbox.reel(["pipeline", "run", nightly]))
    let file = try sandbox.pipeline(
      "drill", String(contentsOfFile: "\(Self.repository)/pipelines/dr-drill.yaml", encoding: .utf8))
    let run = try sandbox.reel(["pipeline", "run", file])
    #expect(run.status == 0, "\(run.output)")
    #expect(run.stdout.contains("alpha: restored seq"))
    #expect(run.stdout.contains("= live store"))
    #expect(run.stdout.contains("2 volume(s) restored and identical to the live store"))
    #expect(!FileManager.default.fileExists(atPath: sandbox.store + "/drill/run-2"))
  }

  @Test("dry run changes nothing")
  func dryRun() throws {
    let sandbox = try PipelineSandbox()
    let file = try sandbox.pipeline("nightly", PipelineSandbox.nightly)
    let before = sandbox.fingerprint()
    let run = try sandbox.reel(["pipeline", "run", file, "--dry-run"])
    #expect(run.status == 0, "\(run.output)")
    #expect(run.stdout.contains("dry run, nothing was changed"))
    #expect(run.stdout.contains("alpha: would cut at seq"))
    #expect(sandbox.fingerprint() == before)
    // Also after a real run, with segments to prune next time.
    try sandbox.check(sandbox.reel(["pipeline", "run", file]))
    let after = sandbox.fingerprint()
    let again = try sandbox.reel(["pipeline", "run", file, "--dry-run", "--json"])
    #expect(again.status == 0, "\(again.output)")
    #expect(sandbox.fingerprint() == after)
  }

  @Test("a second run of the same pipeline is refused while one holds the lock")
  func lock() throws {
    let sandbox = try PipelineSandbox()
    let file = try sandbox.pipeline("nightly", PipelineSandbox.nightly)
    try FileManager.default.createDirectory(atPath: sandbox.store + "/run", withIntermediateDirectories: true)
    let lock = open(sandbox.store + "/run/pipeline-nightly.lock", O_RDWR | O_CREAT, 0o644)
    defer { close(lock) }
    #expect(flock(lock, LOCK_EX | LOCK_NB) == 0)
    let run = try sandbox.reel(["pipeline", "run", file])
    #expect(run.status == 73)
    #expect(run.stderr.contains("pipeline nightly is already running"))
    #expect(try sandbox.openStore().catalog.pipelineRuns().isEmpty)
    flock(lock, LOCK_UN)
    try sandbox.check(sandbox.reel(["pipeline", "run", file]))
  }

  @Test("an archive sealed by a killed run but never recorded is adopted, not sealed twice")
  func adoptsOrphan() throws {
    let sandbox = try PipelineSandbox()
    // `reel seal` writes and records it; forgetting the record is what a kill between the
    // rename and the catalog write leaves.
    try sandbox.check(sandbox.reel(["seal", "alpha", "--out", sandbox.archives]))
    let store = try sandbox.openStore()
    let catalog = try DatabaseQueue(path: store.layout.catalogPath)
    try catalog.write { db in
      try db.execute(sql: "DELETE FROM sealed_archive")
      try db.execute(sql: "DELETE FROM seal_state")
    }
    let file = try sandbox.pipeline("nightly", PipelineSandbox.nightly)
    let run = try sandbox.reel(["pipeline", "run", file])
    #expect(run.status == 0, "\(run.output)")
    #expect(run.stdout.contains("sealed and verified by a killed run, never recorded"))
    let files = try FileManager.default.contentsOfDirectory(atPath: sandbox.archives).filter {
      $0.hasSuffix(".reel.tar")
    }
    #expect(files.count == 2)
  }

  @Test("a damaged copy on media fails verify-on-media and does not count for prune")
  func damagedCopy() throws {
    let sandbox = try PipelineSandbox()
    let before = sandbox.segments()
    // Export only; then damage the cartridge inside the first archive, then verify and prune.
    let export = try sandbox.pipeline("export", sandbox.exportOnly)
    try sandbox.check(sandbox.reel(["pipeline", "run", export]))
    let cartridge = sandbox.library + "/c1.vtape"
    let handle = try #require(FileHandle(forUpdatingAtPath: cartridge))
    let size = try handle.seekToEnd()
    try handle.seek(toOffset: min(size / 3, 3 << 20))
    let original = handle.readData(ofLength: 64)
    try handle.seek(toOffset: min(size / 3, 3 << 20))
    handle.write(Data(original.map { ~$0 }))
    try handle.close()
    let check = try sandbox.pipeline(
      "check",
      """
      pipeline: check
      media-set: primary
      stages:
        - stage: verify-on-media
        - stage: prune-journal
          copies: 1
      """)
    let metrics = sandbox.root + "/metrics/check.prom"
    let run = try sandbox.reel(["pipeline", "run", check, "--metrics-file", metrics])
    #expect(run.status == 1, "\(run.output)")
    #expect(run.stdout.contains("FAILED"))
    #expect(run.stdout.contains("not run: an earlier stage failed"))
    // The copy is damaged either way; its parity still could repair it, and it says so,
    // also to monitoring.
    #expect(run.output.contains("repairable from its parity"), "\(run.output)")
    let text = try String(contentsOfFile: metrics, encoding: .utf8)
    #expect(
      text.contains(
        "reel_pipeline_stage_repaired_archives{pipeline=\"check\",stage=\"verify-on-media\",kind=\"verify-on-media\"} 1"
      ),
      "\(text)")
    #expect(sandbox.segments() == before)
    // Even run alone, prune does not count the damaged copy.
    let prune = try sandbox.pipeline(
      "prune", "pipeline: prune\nstages:\n  - stage: prune-journal\n    copies: 1\n")
    try sandbox.check(sandbox.reel(["pipeline", "run", prune]))
    let after = sandbox.segments()
    let damagedVolume = try sandbox.openStore().catalog.mediaChecks().filter { !$0.ok }.count
    #expect(damagedVolume >= 1)
    #expect(after.values.map(\.count).reduce(0, +) > sandbox.volumes.count)
  }

  @Test("after the journal is pruned, serve starts a lost live image over the live store")
  func rebuildAfterPrune() throws {
    let sandbox = try PipelineSandbox()
    let file = try sandbox.pipeline("nightly", PipelineSandbox.nightly)
    try sandbox.check(sandbox.reel(["pipeline", "run", file]))
    #expect(sandbox.segments()["alpha"]?.count == 1)
    let folder = sandbox.store + "/volumes/alpha"
    try? FileManager.default.removeItem(atPath: folder + "/live.img")
    try? FileManager.default.removeItem(atPath: folder + "/live.state")
    let logPath = sandbox.root + "/serve.log"
    let server = try ChildProcess(
      reelExecutable, ["serve", "alpha", "--socket", sandbox.root + "/nbd.sock"], stderr: logPath,
      environment: sandbox.environment)
    for _ in 0..<200 where !FileManager.default.fileExists(atPath: sandbox.root + "/nbd.sock") {
      usleep(50_000)
    }
    // The live image is lazy (docs/capture.md): what the journal no longer has is read from
    // the store, so the volume is checked through NBD, not as the file.
    let served = sandbox.root + "/served.img"
    let copy = try run(try tool("nbdcopy"), ["nbd+unix:///alpha?socket=\(sandbox.root)/nbd.sock", served])
    server.signal(SIGTERM)
    let status = server.wait()
    let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    #expect(copy.succeeded, "\(copy.stderr)")
    #expect(status == 0, "\(log)")
    #expect(log.contains("rebuilt the live image lazily over the live store"), "\(log)")
    let restored = sandbox.root + "/latest.img"
    try sandbox.check(sandbox.reel(["restore", "alpha", "--at", "latest", "--output", restored]))
    #expect(FileManager.default.contents(atPath: served) == FileManager.default.contents(atPath: restored))
  }

  @Test("a cartridge not at hand makes verify-on-media partial: exit 3, later stages still run")
  func partialRun() throws {
    let sandbox = try PipelineSandbox()
    let export = try sandbox.pipeline("export", sandbox.exportOnly)
    try sandbox.check(sandbox.reel(["pipeline", "run", export]))
    // The cartridge went offsite before its copies were read back.
    try FileManager.default.moveItem(atPath: sandbox.library + "/c1.vtape", toPath: sandbox.root + "/c1-away.vtape")
    let check = try sandbox.pipeline(
      "check",
      """
      pipeline: check
      media-set: primary
      stages:
        - stage: verify-on-media
        - stage: record-catalog
      """)
    let run = try sandbox.reel(["pipeline", "run", check, "--json"])
    #expect(run.status == 3, "\(run.output)")
    let report = try sandbox.json(run.stdout)
    #expect(report["status"] as? String == "partial")
    let stages = report["stages"] as? [[String: Any]] ?? []
    #expect(stages.map { $0["status"] as? String } == ["partial", "done"])
    #expect((stages[0]["details"] as? [String] ?? []).contains { $0.contains("C1: not at hand") })
  }

  static var repository: String {
    var url = URL(fileURLWithPath: #filePath)
    for _ in 0..<3 { url.deleteLastPathComponent() }
    return url.path
  }
}
