import Foundation
import ReelCodec
import ReelCore
import ReelStore
import ReelTestSupport
import Testing

@testable import ReelArchive

/// A history sealed by the `reel` binary into a folder, with a key file, for rehydration.
final class SealedFolder {
  let fixture: StoreFixture
  let keyPath: String
  let out: String
  var store: String { fixture.store.layout.root }

  init(size: Int = 2 << 20, windows: [String] = ["first", "second", "third"], randomBytes: Int = 0) throws {
    fixture = try StoreFixture(size: size)
    keyPath = fixture.root + "/master.key"
    try KeyFile.create(at: keyPath, passphrase: "correct horse")
    out = fixture.root + "/sealed"
    for label in windows {
      for _ in 0..<25 { try fixture.randomChange() }
      var remaining = randomBytes
      while remaining > 0 {
        let length = min(remaining, 256 << 10)
        let data = (0..<length).map { _ in UInt8(truncatingIfNeeded: fixture.rng.next()) }
        let offset = UInt64(fixture.rng.next() % UInt64(size / 4096 - length / 4096)) * 4096
        try fixture.append(.write(offset: offset, data: data))
        remaining -= length
      }
      let bookmark = try fixture.append(.bookmark(label))
      fixture.snapshot(bookmark.seq)
      let sealed = try reel(["seal", "--out", out, "--key", keyPath], store: store)
      precondition(sealed.status == 0, sealed.stderr)
    }
  }

  func image(_ seq: Seq) -> [UInt8] { fixture.snapshots[seq]! }
}

@Suite struct RehydrateTests {
  @Test func rehydratedStoreRestoresEveryBookmarkAndShowsItsTimeline() throws {
    let sealed = try SealedFolder()
    let target = sealed.fixture.root + "/dr-store"
    let run = try reel(
      ["rehydrate", "--from", "dir:" + sealed.out, "--key", sealed.keyPath, "--store", target, "--json"],
      store: target)
    #expect(run.status == 0, "\(run.stdout) \(run.stderr)")
    let report = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as! [String: Any]
    let volume = (report["volumes"] as! [[String: Any]])[0]
    #expect((volume["imported"] as! [String]).count == 3)
    #expect(volume["restorable_bookmarks"] as? [String] == ["first", "second", "third"])
    // Partial versions' chunks come in unnamed, as ingest stores them.
    let unnamed = try ReelTestSupport.run(
      try tool("sqlite3"),
      [
        target + "/catalog.sqlite",
        """
        SELECT SUM(v.full = 0 AND c.digest IS NULL), SUM(v.full = 0 AND c.digest IS NOT NULL)
        FROM block_version v JOIN chunk c ON c.id = v.chunk_id
        """,
      ]
    ).stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "|").compactMap { Int($0) }
    #expect(unnamed.count == 2 && unnamed[0] > 0 && unnamed[1] == 0, "\(unnamed)")

    for (label, seq) in sealed.fixture.bookmarks {
      let output = sealed.fixture.root + "/restored-\(label).img"
      let restore = try reel(["restore", "disk", "--at", label, "--output", output], store: target)
      #expect(restore.status == 0, "\(restore.stderr)")
      let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: output)))
      #expect(difference(bytes, sealed.image(seq)) == nil, "bookmark \(label)")
    }
    // Imported without re-hashing: unverified until a read-data check.
    let unverified = try reel(["timeline", "disk", "--json"], store: target)
    let before = try JSONSerialization.jsonObject(with: Data(unverified.stdout.utf8)) as! [String: Any]
    #expect((before["archives"] as! [[String: Any]]).allSatisfy { $0["verified"] as? Bool == false })
    let check = try reel(["store", "check", "--read-data"], store: target)
    #expect(check.status == 0 && check.stdout.contains("3 archive(s) imported without re-hashing are now verified"))
    let timeline = try reel(["timeline", "disk", "--json"], store: target)
    #expect(timeline.status == 0, "\(timeline.stderr)")
    let document = try JSONSerialization.jsonObject(with: Data(timeline.stdout.utf8)) as! [String: Any]
    #expect((document["bookmarks"] as! [[String: Any]]).count == 3)
    #expect((document["archives"] as! [[String: Any]]).count == 3)
    #expect((document["archives"] as! [[String: Any]]).allSatisfy { $0["verified"] as? Bool == true })

    // Again: nothing to do, nothing imported twice.
    let again = try reel(
      ["rehydrate", "--from", sealed.out, "--key", sealed.keyPath, "--store", target], store: target)
    #expect(again.status == 0 && again.stdout.contains("0 archive(s) imported"), "\(again.stdout)")
  }

  @Test func untilReadsOnlyWhatThePointNeeds() throws {
    let sealed = try SealedFolder()
    let target = sealed.fixture.root + "/dr-store"
    let run = try reel(
      ["rehydrate", "--from", sealed.out, "--key", sealed.keyPath, "--store", target, "--until", "second"],
      store: target)
    #expect(run.status == 0, "\(run.stdout) \(run.stderr)")
    #expect(run.stdout.contains("2 archive(s) imported"), "\(run.stdout)")
    let restore = try reel(["restore", "disk", "--at", "third", "--output", target + "/x.img"], store: target)
    #expect(restore.status == 66, "the third window was not imported")
  }

  @Test func wrongKeyOrForeignStoreWritesNothing() throws {
    let sealed = try SealedFolder(windows: ["only"])
    let otherKey = sealed.fixture.root + "/other.key"
    try KeyFile.create(at: otherKey, passphrase: "correct horse")
    let target = sealed.fixture.root + "/dr-store"
    let wrong = try reel(["rehydrate", "--from", sealed.out, "--key", otherKey, "--store", target], store: target)
    #expect(wrong.status == 77, "\(wrong.stderr)")
    #expect(wrong.stderr.contains("nothing was written"))
    let volumes = (try? FileManager.default.contentsOfDirectory(atPath: target + "/volumes")) ?? []
    #expect(volumes.isEmpty)

    // A store that already holds another volume is refused unless --merge.
    let busy = sealed.fixture.root + "/busy-store"
    #expect(try reel(["init"], store: busy).status == 0)
    #expect(try reel(["volume", "create", "other", "--size", "1M"], store: busy).status == 0)
    let foreign = try reel(["rehydrate", "--from", sealed.out, "--key", sealed.keyPath, "--store", busy], store: busy)
    #expect(foreign.status == 73, "\(foreign.stderr)")
    #expect(foreign.stderr.contains("--merge"))
    let merged = try reel(
      ["rehydrate", "--from", sealed.out, "--key", sealed.keyPath, "--store", busy, "--merge"], store: busy)
    #expect(merged.status == 0, "\(merged.stderr)")
  }

  @Test func aMissingOrDamagedArchiveIsNamedAndTheRestStillRestores() throws {
    let sealed = try SealedFolder()
    let files = try archives(in: sealed.out)
    #expect(files.count == 3)
    // Damage the third archive's pack; take the second away from another copy.
    let damagedFolder = sealed.fixture.root + "/damaged"
    try FileManager.default.createDirectory(atPath: damagedFolder, withIntermediateDirectories: true)
    for file in files {
      try FileManager.default.copyItem(atPath: file, toPath: damagedFolder + "/" + (file as NSString).lastPathComponent)
    }
    let third = damagedFolder + "/" + (files[2] as NSString).lastPathComponent
    var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: third)))
    let pack = try #require(TarMap(bytes).entry("packs/000001.pack"))
    bytes[pack.dataOffset + pack.size / 2] ^= 0x10
    try Data(bytes).write(to: URL(fileURLWithPath: third))

    let target = sealed.fixture.root + "/dr-damaged"
    let run = try reel(
      ["rehydrate", "--from", damagedFolder, "--key", sealed.keyPath, "--store", target], store: target)
    // The archive's parity (the seal's default) repairs the flipped byte on the way in;
    // the damage is still named and is never an exit 0 (docs/rehydrate.md, "Damaged media").
    #expect(run.status == 3, "\(run.stdout) \(run.stderr)")
    #expect(run.stdout.contains("REPAIRED") && run.stdout.contains("damaged, repairable from parity"), "\(run.stdout)")
    #expect(run.stdout.contains("bookmarks first, second, third"), "\(run.stdout)")
    let seq = sealed.fixture.bookmarks["second"]!
    let output = target + "/second.img"
    #expect(try reel(["restore", "disk", "--at", "second", "--output", output], store: target).status == 0)
    #expect(difference(Array(try Data(contentsOf: URL(fileURLWithPath: output))), sealed.image(seq)) == nil)

    let gapFolder = sealed.fixture.root + "/gap"
    try FileManager.default.createDirectory(atPath: gapFolder, withIntermediateDirectories: true)
    for file in [files[0], files[2]] {
      try FileManager.default.copyItem(atPath: file, toPath: gapFolder + "/" + (file as NSString).lastPathComponent)
    }
    let gapStore = sealed.fixture.root + "/dr-gap"
    let gap = try reel(
      ["rehydrate", "--from", gapFolder, "--key", sealed.keyPath, "--store", gapStore], store: gapStore)
    #expect(gap.status == 3)
    #expect(gap.stdout.contains("MISSING") && gap.stdout.contains("archive number 1"), "\(gap.stdout)")
    #expect(gap.stdout.contains("bookmarks first"), "\(gap.stdout)")
    // Below the gap works.
    let below = try reel(
      ["rehydrate", "--from", gapFolder, "--key", sealed.keyPath, "--store", gapStore, "--until", "first"],
      store: gapStore)
    #expect(below.status == 0, "\(below.stdout)")
  }

  @Test func killedAtAnyMomentItResumesAndImportsNothingTwice() throws {
    let sealed = try SealedFolder(size: 16 << 20, windows: ["a", "b"], randomBytes: 12 << 20)
    let target = sealed.fixture.root + "/dr-killed"
    for delay in [0.01, 0.05, 0.1, 0.2, 0.35, 0.5, 0.8, 1.2] {
      let child = try ChildProcess(
        reelExecutable, ["rehydrate", "--from", sealed.out, "--key", sealed.keyPath, "--store", target],
        environment: ["REEL_PASSPHRASE": "correct horse"])
      Thread.sleep(forTimeInterval: delay)
      child.signal(SIGKILL)
      child.wait()
    }
    let finish = try reel(
      ["rehydrate", "--from", sealed.out, "--key", sealed.keyPath, "--store", target], store: target)
    #expect(finish.status == 0, "\(finish.stdout) \(finish.stderr)")
    if finish.status != 0 { return }
    for (label, seq) in sealed.fixture.bookmarks {
      let output = target + "/\(label).img"
      #expect(try reel(["restore", "disk", "--at", label, "--output", output], store: target).status == 0)
      #expect(difference(Array(try Data(contentsOf: URL(fileURLWithPath: output))), sealed.image(seq)) == nil)
    }
    let check = try reel(["store", "check", "--read-data"], store: target)
    #expect(check.status == 0, "\(check.stdout) \(check.stderr)")
  }
}
