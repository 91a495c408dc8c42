import Foundation
import ReelCodec
import ReelCore
import ReelIO
import ReelJournal
import ReelStore
import ReelTestSupport
import Testing

@testable import ReelArchive

/// Runs the built `reel` against a fixture's store with a passphrase in the environment.
func reel(
  _ arguments: [String], store: String, passphrase: String = "correct horse", in directory: String? = nil
) throws -> CommandResult {
  try run(
    reelExecutable, arguments, environment: ["REEL_STORE": store, "REEL_PASSPHRASE": passphrase, "REEL_KEY": nil],
    directory: directory)
}

@Suite struct SealCommandTests {
  @Test func sealInspectVerifyFromTheCommandLine() throws {
    let fixture = try StoreFixture(size: 1 << 20)
    for _ in 0..<30 { try fixture.randomChange() }
    try fixture.append(.bookmark("before-upgrade"))
    for _ in 0..<5 { try fixture.randomChange() }  // after the bookmark: not sealed by default
    let store = fixture.store.layout.root
    let keyPath = fixture.root + "/master.key"
    let key = try KeyFile.create(at: keyPath, passphrase: "correct horse")
    let out = fixture.root + "/sealed"

    let wrong = try reel(["seal", "--out", out, "--key", keyPath], store: store, passphrase: "wrong")
    #expect(wrong.status == 77, "\(wrong.stderr)")
    #expect(wrong.stderr.contains(keyPath))
    // The key is unlocked while the packs are built: the folder and its seal lock may exist,
    // but nothing sealed, staged or partly written is left.
    let leftAfterWrongKey = (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []
    #expect(leftAfterWrongKey.allSatisfy { $0 == ".reel-seal.lock" }, "\(leftAfterWrongKey)")

    let sealed = try reel(["seal", "disk", "--out", out, "--key", keyPath, "--json"], store: store)
    #expect(sealed.status == 0, "\(sealed.stderr)")
    let report = try JSONSerialization.jsonObject(with: Data(sealed.stdout.utf8)) as! [String: Any]
    let path = try #require(report["archive"] as? String)
    #expect(report["until_seq"] as? Int == Int(fixture.bookmarks["before-upgrade"]!), "cut at the bookmark")
    #expect(report["bookmarks"] as? [String] == ["before-upgrade"])
    #expect(try archives(in: out) == [path], "only the archive; no staging or partial files are left")
    #expect(try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.hasPrefix(".reel-seal-") }.isEmpty)

    let again = try reel(["seal", "disk", "--out", out, "--key", keyPath], store: store)
    #expect(again.status == 0 && again.stdout.contains("nothing sealed"), "\(again.stdout)")
    // The default writes format 4 (parity, pack layout 2); --format 1 --parity 0 writes
    // format 1; one chain may hold both. --parity out of range is refused.
    let tooMuch = try reel(
      ["seal", "disk", "--out", out, "--key", keyPath, "--until", "latest", "--parity", "51"], store: store)
    #expect(tooMuch.status == 64 && tooMuch.stderr.contains("--parity 51"), "\(tooMuch.stderr)")
    let unknown = try reel(
      ["seal", "disk", "--out", out, "--key", keyPath, "--until", "latest", "--format", "3"], store: store)
    #expect(unknown.status != 0 && unknown.stderr.contains("--format 3"), "\(unknown.stderr)")
    let rest = try reel(
      ["seal", "disk", "--out", out, "--key", keyPath, "--until", "latest", "--format", "1", "--parity", "0"],
      store: store)
    #expect(rest.status == 0 && rest.stdout.contains("sealed seq"), "\(rest.stdout) \(rest.stderr)")
    let sealedManifest = try ArchiveVerifier.readManifest(path: path)
    #expect(sealedManifest.formatVersion == 4 && sealedManifest.packFormat == 2 && sealedManifest.parity?.percent == 5)
    let carried = try #require(try archives(in: out).first { $0 != path })
    #expect(try ArchiveVerifier.readManifest(path: carried).formatVersion == 1)

    let inspect = try reel(["inspect", path], store: store)
    #expect(inspect.status == 0)
    #expect(inspect.stdout.contains(key.fingerprint) && inspect.stdout.contains("before-upgrade"))
    let keyless = try reel(["verify", path], store: store)
    #expect(keyless.status == 0 && keyless.stdout.contains("no key given"), "\(keyless.stdout)")
    let full = try reel(["verify", "--key", keyPath] + (try archives(in: out)), store: store)
    #expect(full.status == 0, "\(full.stdout) \(full.stderr)")

    let otherKey = fixture.root + "/other.key"
    try KeyFile.create(at: otherKey, passphrase: "correct horse")
    let foreign = try reel(["verify", "--key", otherKey, path], store: store)
    #expect(foreign.status == 77, "\(foreign.stdout) \(foreign.stderr)")

    // A flipped byte in the middle of the file is found and named by member.
    var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    let map = TarMap(bytes)
    let pack = try #require(map.entry("packs/000001.pack"))
    bytes[pack.dataOffset + pack.size / 3] ^= 0x20
    let damaged = fixture.root + "/damaged.reel.tar"
    try Data(bytes).write(to: URL(fileURLWithPath: damaged))
    let broken = try reel(["verify", "--key", keyPath, damaged], store: store)
    #expect(broken.status == 65)
    #expect(broken.stdout.contains("packs/000001.pack at offset"), "\(broken.stdout)")
    #expect(broken.stdout.contains("repairable with margin: 1 of "), "\(broken.stdout)")
    // reel repair writes the sealed archive back, byte for byte, and verify passes it.
    let repairedPath = fixture.root + "/repaired.reel.tar"
    let repair = try reel(["repair", damaged, "--out", repairedPath], store: store)
    #expect(repair.status == 0 && repair.stdout.contains("repaired into"), "\(repair.stdout) \(repair.stderr)")
    #expect(try Data(contentsOf: URL(fileURLWithPath: repairedPath)) == Data(contentsOf: URL(fileURLWithPath: path)))
    #expect(try reel(["verify", "--key", keyPath, repairedPath], store: store).status == 0)
  }

  @Test func aMissingParentFailsChainVerification() throws {
    let fixture = try StoreFixture(size: 1 << 20)
    let keyPath = fixture.root + "/master.key"
    try KeyFile.create(at: keyPath, passphrase: "correct horse")
    let out = fixture.root + "/sealed"
    let store = fixture.store.layout.root
    for label in ["a", "b"] {
      for _ in 0..<10 { try fixture.randomChange() }
      try fixture.append(.bookmark(label))
      #expect(try reel(["seal", "--out", out, "--key", keyPath], store: store).status == 0)
    }
    let files = try archives(in: out)
    #expect(files.count == 2)
    let first = try #require(files.first { $0.contains("-0-") })
    try FileManager.default.removeItem(atPath: first)
    let verify = try reel(["verify", "--key", keyPath] + files.filter { $0 != first }, store: store)
    #expect(verify.status == 65)
    #expect(verify.stdout.contains("parent archive") && verify.stdout.contains("missing"), "\(verify.stdout)")
  }
}

func archives(in folder: String) throws -> [String] {
  try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.hasSuffix(".reel.tar") }.sorted().map {
    folder + "/" + $0
  }
}

/// Paths as people type them: relative to the folder they are in.
@Suite struct RelativePathTests {
  @Test func sealExportRehydrateAndRestoreWithRelativePaths() throws {
    let fixture = try StoreFixture(size: 1 << 20)
    for _ in 0..<10 { try fixture.randomChange() }
    try fixture.append(.bookmark("one"))
    let expected = fixture.model
    let store = fixture.store.layout.root
    _ = try KeyFile.create(at: fixture.root + "/master.key", passphrase: "correct horse")
    let work = fixture.root

    // The first archive of a chain creates the folder: it used to fail on syncing "" (its parent).
    let sealed = try reel(
      ["seal", "disk", "--out", "archives", "--key", "master.key", "--json"], store: store, in: work)
    #expect(sealed.status == 0, "\(sealed.output)")
    #expect(!sealed.output.contains("reel: :"), "\(sealed.output)")
    let report = try JSONSerialization.jsonObject(with: Data(sealed.output.utf8)) as? [String: Any]
    let archive = try #require(report?["archive"] as? String)
    #expect(archive.hasPrefix("/"), "the recorded path works from any folder: \(archive)")
    #expect(FileManager.default.fileExists(atPath: archive))
    let name = (archive as NSString).lastPathComponent

    #expect(try reel(["verify", "archives/" + name, "--key", "master.key"], store: store, in: work).status == 0)
    let label = try reel(["media", "label", "dir:media", "--name", "D1"], store: store, in: work)
    #expect(label.status == 0, "\(label.output)")
    let exported = try reel(["export", "archives/" + name, "--to", "dir:media"], store: store, in: work)
    #expect(exported.status == 0, "\(exported.output)")
    let rehydrated = try reel(
      ["rehydrate", "--from", "dir:media", "--store", "again", "--key", "master.key"], store: store, in: work)
    #expect(rehydrated.status == 0, "\(rehydrated.output)")
    let restored = try reel(
      ["restore", "disk", "--at", "one", "--output", "one.img", "--store", "again"], store: store, in: work)
    #expect(restored.status == 0, "\(restored.output)")
    #expect(FileManager.default.contents(atPath: work + "/one.img") == Data(expected))
  }
}

@Suite struct SealInterruptTests {
  /// SIGINT while sealing: exit 130, "interrupted", and no staging folder or partial archive.
  @Test func ctrlCDuringASealLeavesNothingHalfWritten() throws {
    let fixture = try StoreFixture(size: 64 << 20)
    var generator = SystemRandomNumberGenerator()
    for step in 0..<48 {
      let data = (0..<(1 << 20) / 8).flatMap { _ in withUnsafeBytes(of: generator.next()) { Array($0) } }
      try fixture.append(.write(offset: UInt64(step) << 20, data: data))
    }
    try fixture.append(.flush)
    try fixture.closeWriter()
    let keyPath = fixture.root + "/master.key"
    _ = try KeyFile.create(at: keyPath, passphrase: "correct horse")
    let out = fixture.root + "/sealed"
    #expect(try reel(["ingest"], store: fixture.store.layout.root).status == 0)

    let process = Process()
    process.executableURL = URL(fileURLWithPath: reelExecutable)
    process.arguments = ["seal", "disk", "--out", out, "--key", keyPath, "--until", "latest", "--format", "2"]
    var environment = ProcessInfo.processInfo.environment
    environment["REEL_STORE"] = fixture.store.layout.root
    environment["REEL_PASSPHRASE"] = "correct horse"
    process.environment = environment
    let errors = Pipe()
    process.standardError = errors
    process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
    try process.run()
    let deadline = Date().addingTimeInterval(60)
    func staged() -> Bool {
      ((try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []).contains { $0.hasPrefix(".reel-seal-") }
    }
    while !staged() && process.isRunning && Date() < deadline { usleep(200) }
    #expect(staged(), "the seal got as far as staging")
    kill(process.processIdentifier, SIGINT)
    let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    #expect(process.terminationStatus == 130, "\(stderr)")
    #expect(stderr.contains("reel: interrupted; nothing was sealed for volume disk"), "\(stderr)")
    let left = (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? []
    #expect(left.allSatisfy { $0 == ".reel-seal.lock" }, "\(left)")
  }
}

@Suite struct FirstArchiveTests {
  /// A volume made from an image and never written: its first seal holds the image alone
  /// (the state at seq 0), later seals continue that chain, and rehydrating gives the
  /// image back bit for bit.
  @Test func aVolumeCreatedFromAnImageIsSealableBeforeItsFirstWrite() throws {
    let folder = TemporaryDirectory("reel-first")
    let root = folder.path
    let store = root + "/store"
    let image = root + "/golden.img"
    var generator = SystemRandomNumberGenerator()
    // Whole logical blocks but not whole store blocks, with a run of zeros, so the tail and sparse
    // blocks are part of what must come back.
    var bytes = (0..<(3 << 20) + 12_288).map { _ in UInt8.random(in: 0...255, using: &generator) }
    bytes.replaceSubrange(1 << 20..<(2 << 20), with: repeatElement(0, count: 1 << 20))
    try Data(bytes).write(to: URL(fileURLWithPath: image))
    let keyPath = root + "/master.key"
    _ = try KeyFile.create(at: keyPath, passphrase: "correct horse")
    #expect(try reel(["init"], store: store).status == 0)
    let created = try reel(["volume", "create", "golden", "--from", image], store: store)
    #expect(created.status == 0, "\(created.stderr)")

    let out = root + "/sealed"
    let sealed = try reel(["seal", "golden", "--out", out, "--key", keyPath, "--json"], store: store)
    #expect(sealed.status == 0, "\(sealed.stdout)\(sealed.stderr)")
    let report = try JSONSerialization.jsonObject(with: Data(sealed.stdout.utf8)) as? [String: Any] ?? [:]
    #expect(report["sealed"] as? Bool == true, "\(sealed.stdout)")
    #expect(report["from_seq"] as? Int == 0 && report["until_seq"] as? Int == 0, "\(sealed.stdout)")
    #expect(report["chain_index"] as? Int == 0)
    // Sealed once: the next seal has nothing new to hold.
    let again = try reel(["seal", "golden", "--out", out, "--key", keyPath], store: store)
    #expect(again.status == 0 && again.stdout.contains("nothing sealed"), "\(again.stdout)\(again.stderr)")

    // The first write and flush go into the next archive of the same chain.
    let layout = StoreLayout(root: store)
    let (writer, _) = try JournalWriter.open(
      directory: layout.journalDirectory("golden"), volume: try layout.descriptor(of: "golden").id,
      options: JournalOptions())
    let written = [UInt8](repeating: 0xA5, count: 8192)
    _ = try writer.append(.write(offset: 1 << 20, data: written))
    _ = try writer.append(.flush)
    try writer.close()
    bytes.replaceSubrange(1 << 20..<(1 << 20) + written.count, with: written)
    let next = try reel(["seal", "golden", "--out", out, "--key", keyPath, "--json"], store: store)
    let second = try JSONSerialization.jsonObject(with: Data(next.stdout.utf8)) as? [String: Any] ?? [:]
    #expect(second["chain_index"] as? Int == 1 && second["from_seq"] as? Int == 0, "\(next.stdout)\(next.stderr)")
    #expect(second["parent_id"] as? String == report["archive_id"] as? String)

    let target = root + "/rehydrated"
    let rehydrated = try reel(
      ["rehydrate", "--from", "dir:" + out, "--key", keyPath, "--store", target], store: target)
    #expect(rehydrated.status == 0, "\(rehydrated.stdout)\(rehydrated.stderr)")
    let restored = root + "/restored.img"
    let restore = try reel(["restore", "golden", "--at", "latest", "--output", restored], store: target)
    #expect(restore.status == 0, "\(restore.stdout)\(restore.stderr)")
    let back = Array(FileManager.default.contents(atPath: restored) ?? Data())
    #expect(back.count == bytes.count)
    #expect(SHA256Digest.hash(back) == SHA256Digest.hash(bytes))
  }
}
