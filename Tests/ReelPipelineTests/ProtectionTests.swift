import Foundation
import ReelArchive
import ReelCodec
import ReelCore
import ReelIO
import ReelJournal
import ReelMedia
import ReelStore
import Testing

/// Every volume of the store ends up on media, and the jobs say so when one does not.
@Suite("Every volume protected", .serialized)
struct ProtectionTests {
  /// Random bytes, whole logical blocks but not whole store blocks, with a run of zeros.
  static func makeImage(at path: String) throws -> [UInt8] {
    var generator = SystemRandomNumberGenerator()
    var bytes = (0..<(2 << 20) + 8192).map { _ in UInt8.random(in: 0...255, using: &generator) }
    bytes.replaceSubrange(300_000..<900_000, with: repeatElement(0, count: 600_000))
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return bytes
  }

  static func drill(_ sandbox: PipelineSandbox) throws -> String {
    try sandbox.pipeline(
      "drill", String(contentsOfFile: "\(PipelineTests.repository)/pipelines/dr-drill.yaml", encoding: .utf8))
  }

  @Test("a volume created from an image is on media after the first nightly run, and the drill rebuilds it")
  func imageVolumeIsProtectedAtOnce() throws {
    let sandbox = try PipelineSandbox()
    let image = try Self.makeImage(at: sandbox.root + "/gamma.img")
    try sandbox.check(sandbox.reel(["volume", "create", "gamma", "--from", sandbox.root + "/gamma.img"]))
    let nightly = try sandbox.pipeline("nightly", PipelineSandbox.nightly)
    let run = try sandbox.reel(["pipeline", "run", nightly, "--json"])
    #expect(run.status == 0, "\(run.output)")
    let stages = try sandbox.json(run.stdout)["stages"] as? [[String: Any]] ?? []
    #expect(stages.first { $0["name"] as? String == "seal" }?["items"] as? Int == 3, "\(run.stdout)")
    #expect(stages.first { $0["name"] as? String == "export" }?["items"] as? Int == 3, "\(run.stdout)")

    let store = try sandbox.openStore()
    let archives = try LiveStore(store: store).sealedArchives(of: try store.layout.descriptor(of: "gamma"))
    #expect(archives.map { "\($0.fromSeq)-\($0.untilSeq)#\($0.chainIndex)" } == ["0-0#0"])
    #expect(try archives.map { try store.catalog.archiveCopies(archiveID: $0.id, mediaSet: "primary").count } == [1])

    let drill = try sandbox.reel(["pipeline", "run", try Self.drill(sandbox)])
    #expect(drill.status == 0, "\(drill.output)")
    #expect(drill.stdout.contains("gamma: restored seq 0"), "\(drill.stdout)")
    #expect(drill.stdout.contains("3 volume(s) restored and identical to the live store"), "\(drill.stdout)")

    // From the cartridges and the key alone, the image comes back bit for bit.
    let target = sandbox.root + "/rebuilt"
    let rehydrated = try sandbox.reel(
      [
        "rehydrate", "--from", "vtape:" + sandbox.library, "--key", sandbox.key, "--store", target, "--volume", "gamma",
      ],
      environment: ["REEL_STORE": target])
    #expect(rehydrated.status == 0, "\(rehydrated.output)")
    #expect(rehydrated.stdout.contains("the state at seq 0"), "\(rehydrated.stdout)")
    #expect(rehydrated.stdout.contains("restorable: any point up to seq 0"), "\(rehydrated.stdout)")
    let output = sandbox.root + "/gamma-restored.img"
    let restored = try sandbox.reel(
      ["restore", "gamma", "--at", "latest", "--output", output], environment: ["REEL_STORE": target])
    #expect(restored.status == 0, "\(restored.output)")
    let back = Array(FileManager.default.contents(atPath: output) ?? Data())
    #expect(back.count == image.count && SHA256Digest.hash(back) == SHA256Digest.hash(image))
  }

  @Test("the nightly run fails and names a volume that has no verified archive on the media set")
  func unprotectedVolumeFailsTheNightlyRun() throws {
    let sandbox = try PipelineSandbox()
    // Written but never flushed: there is no crash-consistent point to seal at.
    try sandbox.check(sandbox.reel(["volume", "create", "delta", "--size", "1M"]))
    let store = try sandbox.openStore()
    let descriptor = try store.layout.descriptor(of: "delta")
    let (writer, _) = try JournalWriter.open(
      directory: store.layout.journalDirectory("delta"), volume: descriptor.id, options: JournalOptions())
    _ = try writer.append(.write(offset: 0, data: [UInt8](repeating: 7, count: 4096)))
    try writer.close()

    let nightly = try sandbox.pipeline("nightly", PipelineSandbox.nightly)
    let run = try sandbox.reel(["pipeline", "run", nightly, "--json"])
    #expect(run.status == 1, "\(run.output)")
    let report = try sandbox.json(run.stdout)
    #expect(report["status"] as? String == "failed")
    let stages = report["stages"] as? [[String: Any]] ?? []
    let check = stages.first { $0["name"] as? String == "verify-on-media" }
    #expect(check?["status"] as? String == "failed", "\(run.stdout)")
    let message = check?["message"] as? String ?? ""
    #expect(message.contains("delta") && message.contains("media set primary"), "\(message)")
    #expect(!message.contains("alpha") && !message.contains("beta"), "\(message)")
    // The other volumes still went to media.
    #expect(stages.first { $0["name"] as? String == "export" }?["items"] as? Int == 2)
  }

  @Test("the drill fails and names a volume of the store it could not rebuild, after comparing the rest")
  func volumeNotRehydratedFailsTheDrill() throws {
    let sandbox = try PipelineSandbox()
    try sandbox.check(sandbox.reel(["pipeline", "run", try sandbox.pipeline("nightly", PipelineSandbox.nightly)]))
    // Created after the nightly run: nothing of it is on media yet.
    _ = try Self.makeImage(at: sandbox.root + "/gamma.img")
    try sandbox.check(sandbox.reel(["volume", "create", "gamma", "--from", sandbox.root + "/gamma.img"]))

    let run = try sandbox.reel(["pipeline", "run", try Self.drill(sandbox), "--json"])
    #expect(run.status == 1, "\(run.output)")
    let stages = try sandbox.json(run.stdout)["stages"] as? [[String: Any]] ?? []
    func stage(_ name: String) -> [String: Any] { stages.first { $0["name"] as? String == name } ?? [:] }
    let rehydrated = stage("rehydrate")["message"] as? String
    #expect(rehydrated?.contains("not rehydrated: gamma") == true, "\(run.stdout)")
    #expect(stage("compare")["status"] as? String == "failed", "\(run.stdout)")
    // alpha and beta were still restored and compared.
    let compared = stage("compare")["message"] as? String
    #expect(compared?.contains("gamma") == true, "\(run.stdout)")
    #expect(compared?.contains("the other 2 volume(s) were restored and identical") == true, "\(run.stdout)")
    #expect(!FileManager.default.fileExists(atPath: sandbox.store + "/drill/run-2"))
  }

  @Test("a store rehydrated from the cartridges knows the copies it read: the next nightly run finds them on media")
  func rehydratedStoreKnowsItsMedia() throws {
    let sandbox = try PipelineSandbox()
    let nightly = try sandbox.pipeline("nightly", PipelineSandbox.nightly)
    try sandbox.check(sandbox.reel(["pipeline", "run", nightly]))
    let source = try sandbox.openStore()
    let exported = try source.catalog.archiveCopies(mediaSet: "primary")
    #expect(exported.count == 2)

    let target = sandbox.root + "/rebuilt"
    let rehydrated = try sandbox.reel(
      ["rehydrate", "--from", "vtape:" + sandbox.library, "--key", sandbox.key, "--store", target],
      environment: ["REEL_STORE": target])
    #expect(rehydrated.status == 0, "\(rehydrated.output)")

    // The same copies: archive, set, cartridge, tape file, bytes.
    let rebuilt = try Store.open(StoreLayout(root: target))
    func identity(_ copy: ArchiveCopy) -> String {
      "\(copy.archiveID) \(copy.mediaSet)/\(copy.mediaSetID) \(copy.cartridgeLabel)/\(copy.cartridgeID) file \(copy.tapeFile) \(copy.size) \(copy.sha256)"
    }
    #expect(try rebuilt.catalog.archiveCopies().map(identity).sorted() == exported.map(identity).sorted())
    let cartridges = try rebuilt.catalog.cartridges()
    #expect(cartridges.map(\.label) == ["C1"], "\(cartridges)")
    #expect(cartridges.first?.address == "vtape:" + sandbox.library + "/c1.vtape")

    let list = try sandbox.reel(["media", "list", "--json"], environment: ["REEL_STORE": target])
    #expect(list.status == 0, "\(list.output)")
    let media = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]] ?? []
    let held = (media.first { $0["label"] as? String == "C1" }?["archives"] as? [[String: Any]] ?? [])
    #expect(Set(held.compactMap { $0["archive_id"] as? String }) == Set(exported.map(\.archiveID)), "\(list.stdout)")

    let dry = try sandbox.reel(["pipeline", "run", nightly, "--dry-run"], environment: ["REEL_STORE": target])
    #expect(dry.status == 0, "\(dry.output)")
    #expect(!dry.output.contains("no copy on media set"), "\(dry.output)")
    // And the real run: nothing to export, the copies read back with the key, success.
    let run = try sandbox.reel(["pipeline", "run", nightly, "--json"], environment: ["REEL_STORE": target])
    #expect(run.status == 0, "\(run.output)")
    let stages = try sandbox.json(run.stdout)["stages"] as? [[String: Any]] ?? []
    #expect(stages.first { $0["name"] as? String == "export" }?["items"] as? Int == 0, "\(run.stdout)")
  }
}
