import Foundation
import ReelCodec
import ReelCore
import ReelIO
import ReelStore
import ReelTestSupport
import Testing

@testable import ReelArchive

/// A fixture's history sealed into a chain of archives in a temporary folder.
final class SealedChain: @unchecked Sendable {
  let fixture: StoreFixture
  let key = SymmetricKey.random()
  let output: String
  var archives: [String] = []

  init(size: Int = 2 << 20, seed: UInt64 = UInt64.random(in: 0...UInt64.max)) throws {
    var base = [UInt8](repeating: 0, count: size)
    for index in stride(from: 0, to: size / 2, by: 4096) { base[index] = UInt8(truncatingIfNeeded: index / 4096 + 1) }
    fixture = try StoreFixture(size: size, base: base, seed: seed)
    output = fixture.root + "/archives"
  }

  /// Appends `changes` random records and a bookmark, snapshotting the model there.
  func history(_ changes: Int, bookmark: String) throws {
    for _ in 0..<changes { try fixture.randomChange() }
    let appended = try fixture.append(.bookmark(bookmark))
    fixture.snapshot(appended.seq)
  }

  /// `count` 4 KiB writes into the first two store blocks, each the page as it was with
  /// 16 bytes changed: consolidations become delta records in the live store.
  func edits(_ count: Int, bookmark: String) throws {
    let blockSize = Int(fixture.descriptor.storeBlockSize)
    for _ in 0..<count {
      let page = Int(fixture.rng.next() % UInt64(2 * blockSize / 4096))
      var data = Array(fixture.model[(page * 4096)..<(page * 4096 + 4096)])
      let at = Int(fixture.rng.next() % (4096 - 16))
      for index in at..<(at + 16) { data[index] = UInt8(truncatingIfNeeded: fixture.rng.next()) }
      try fixture.append(.write(offset: UInt64(page * 4096), data: data))
    }
    let appended = try fixture.append(.bookmark(bookmark))
    fixture.snapshot(appended.seq)
  }

  @discardableResult
  func seal(
    until: Point? = nil, memberLimit: UInt64 = ArchiveFormat.defaultMemberLimit,
    formatVersion: Int = SealRequest.defaultFormatVersion, parity: Int = ParityGeometry.defaultPercent
  ) throws -> SealedArchive? {
    var request = SealRequest(
      volume: fixture.name, until: until, outputDirectory: output, masterKeys: [key], memberLimit: memberLimit,
      formatVersion: formatVersion)
    request.parityPercent = parity
    let outcome = try Sealer.seal(request, live: fixture.live)
    guard case .sealed(let archive) = outcome else { return nil }
    archives.append(archive.path)
    return archive
  }

  /// `live` (restored from this chain's archives) reads every bookmark as the fixture's
  /// model, and every `step`th seq up to `last` as the fixture's own store.
  func expectSameHistory(in live: LiveStore, through last: Seq, every step: Int) throws {
    for (label, seq) in fixture.bookmarks {
      let view = try VolumeView(live: live, volume: fixture.name, at: .bookmark(label))
      #expect(view.resolved.seq == seq)
      #expect(
        difference(try view.read(offset: 0, length: Int(view.size)), fixture.snapshots[seq]) == nil, "bookmark \(label)"
      )
    }
    for seq in stride(from: Seq(0), through: last, by: step) {
      let restored = try VolumeView(live: live, volume: fixture.name, at: .seq(seq))
      let original = try VolumeView(live: fixture.live, volume: fixture.name, at: .seq(seq))
      #expect(
        difference(
          try restored.read(offset: 0, length: Int(restored.size)),
          try original.read(offset: 0, length: Int(original.size))) == nil, "seq \(seq)")
    }
  }
}

@Suite struct ArchiveRoundTripTests {
  @Test func chainRestoresEveryBookmarkAndInstantFromTheArchivesAlone() throws {
    let chain = try SealedChain()
    try chain.history(40, bookmark: "one")
    let first = try #require(try chain.seal())
    #expect(first.manifest.chainIndex == 0 && first.manifest.contents.base)
    // Incompressible data (9 MiB, more than one 8 MiB group), so the window spans several
    // frames and members.
    for index in 0..<36 {
      var data = [UInt8](repeating: 0, count: 256 << 10)
      for position in data.indices { data[position] = UInt8(truncatingIfNeeded: chain.fixture.rng.next()) }
      try chain.fixture.append(.write(offset: UInt64(index % 8) * (256 << 10), data: data))
    }
    try chain.history(60, bookmark: "two")
    try chain.history(30, bookmark: "three")
    // A small member limit forces several pack members.
    let second = try #require(try chain.seal(memberLimit: 1 << 20))
    #expect(second.manifest.parentID == first.manifest.archiveID)
    #expect(second.manifest.range.fromSeq == first.manifest.range.untilSeq)
    #expect(second.manifest.members.filter { $0.role == "pack" }.count > 1)
    #expect(try chain.seal() == nil, "nothing new to seal")

    let target = try Store.initialize(StoreLayout(root: chain.fixture.root + "/rehydrated")).store
    let live = LiveStore(store: target)
    for path in chain.archives {
      let report = try ArchiveImporter.importArchive(path: path, masterKeys: [chain.key], into: live)
      #expect(report.imported)
    }
    // Importing again changes nothing.
    #expect(!(try ArchiveImporter.importArchive(path: chain.archives[1], masterKeys: [chain.key], into: live)).imported)

    // Every bookmark, and every 13th seq of the history against the original store's view.
    try chain.expectSameHistory(in: live, through: second.manifest.range.untilSeq, every: 13)
    // Instants resolve the same way as in the original store.
    for (seq, time) in chain.fixture.times where seq % 11 == 0 {
      let restored = try VolumeView(live: live, volume: chain.fixture.name, at: .time(time))
      #expect(restored.resolved.seq == seq)
    }
  }

  /// The live store's delta records (docs/store-format.md, "Consolidations as deltas")
  /// leave it whole: archives of either format read on their own, and the rehydrated
  /// store reads every point as the original does.
  @Test(arguments: [1, 2]) func deltaRecordsAreSealedWhole(formatVersion: Int) throws {
    let chain = try SealedChain()
    try chain.edits(150, bookmark: "one")
    try chain.fixture.live.ingest(volume: chain.fixture.name)
    try chain.seal(formatVersion: formatVersion)
    try chain.edits(150, bookmark: "two")
    let second = try #require(try chain.seal(formatVersion: formatVersion))
    let deltas = try chain.fixture.store.catalog.database.read { db in
      try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chunk WHERE base_id IS NOT NULL") ?? 0
    }
    #expect(deltas >= 10, "the history should have made delta records: \(deltas)")

    let live = LiveStore(store: try Store.initialize(StoreLayout(root: chain.fixture.root + "/rehydrated")).store)
    for path in chain.archives {
      #expect(try ArchiveImporter.importArchive(path: path, masterKeys: [chain.key], into: live).imported)
    }
    try chain.expectSameHistory(in: live, through: second.manifest.range.untilSeq, every: 31)
    #expect(try live.check(readData: true).isClean)
  }

  @Test func importRefusesAChainWithoutItsParent() throws {
    let chain = try SealedChain()
    try chain.history(10, bookmark: "a")
    try chain.seal()
    try chain.history(10, bookmark: "b")
    try chain.seal()
    let live = LiveStore(store: try Store.initialize(StoreLayout(root: chain.fixture.root + "/other")).store)
    let error = #expect(throws: ReelError.self) {
      try ArchiveImporter.importArchive(path: chain.archives[1], masterKeys: [chain.key], into: live)
    }
    #expect(error?.message.contains("in order") == true || error?.remedy?.contains("in order") == true)
  }
}

@Suite struct ArchiveToolsTests {
  @Test func gnuTarAndBsdtarListAndSha256sumChecksEveryMember() throws {
    let chain = try SealedChain()
    try chain.history(30, bookmark: "x")
    let archive = try #require(try chain.seal())
    let names = ["README.txt", "manifest.json", "manifest.hmac", "index.sqlite.enc", "packs/000001.pack", "SHA256SUMS"]
    for tool in ["tar", "bsdtar"] {
      let listing = try run("/usr/bin/env", [tool, "-tvf", archive.path])
      #expect(listing.status == 0, "\(tool): \(listing.output)")
      for name in names { #expect(listing.output.contains(name), "\(tool) lists \(name)") }
    }
    let folder = chain.fixture.root + "/extracted"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    #expect(try run("/usr/bin/env", ["tar", "-xf", archive.path, "-C", folder]).status == 0)
    let check = try run("/usr/bin/env", ["sha256sum", "-c", "SHA256SUMS"], directory: folder)
    #expect(check.status == 0, "\(check.output)")
    #expect(check.output.contains("packs/000001.pack: OK"))
    let readme = try String(contentsOfFile: folder + "/README.txt", encoding: .utf8)
    #expect(readme.contains("sha256sum -c SHA256SUMS") && readme.contains(archive.manifest.archiveID))
    #expect(archive.size % UInt64(ArchiveFormat.recordSize) == 0, "whole 1 MiB records")
  }
}

@Suite struct EscrowTests {
  @Test func anEscrowKeyAloneOpensTheArchive() throws {
    let chain = try SealedChain(size: 1 << 20)
    try chain.history(20, bookmark: "e")
    let escrow = SymmetricKey.random()
    let outcome = try Sealer.seal(
      SealRequest(volume: chain.fixture.name, outputDirectory: chain.output, masterKeys: [chain.key, escrow]),
      live: chain.fixture.live)
    guard case .sealed(let archive) = outcome else {
      Issue.record("nothing sealed")
      return
    }
    #expect(archive.manifest.keys.map(\.fingerprint) == [chain.key.fingerprint, escrow.fingerprint])
    let verification = try ArchiveVerifier.verify(path: archive.path, masterKeys: [escrow])
    #expect(verification.keyChecked && verification.problems.isEmpty)
    let live = LiveStore(store: try Store.initialize(StoreLayout(root: chain.fixture.root + "/escrowed")).store)
    #expect(try ArchiveImporter.importArchive(path: archive.path, masterKeys: [escrow], into: live).imported)
    let seq = chain.fixture.bookmarks["e"]!
    let view = try VolumeView(live: live, volume: chain.fixture.name, at: .bookmark("e"))
    #expect(difference(try view.read(offset: 0, length: Int(view.size)), chain.fixture.snapshots[seq]) == nil)
  }
}

@Suite struct SealKeysTests {
  /// The key is unlocked while the packs are built: an unlock that fails (a wrong
  /// passphrase) fails the seal with its own error, and leaves nothing sealed or staged;
  /// one that succeeds late still seals.
  @Test func aKeyUnlockedDuringTheSealFailsOrSealsIt() throws {
    let chain = try SealedChain(size: 1 << 20)
    try chain.history(20, bookmark: "k")
    let failing = SealKeys { throw ReelError(.wrongKey, "test key: wrong passphrase") }
    let error = #expect(throws: ReelError.self) {
      try Sealer.seal(
        SealRequest(volume: chain.fixture.name, outputDirectory: chain.output, masterKeys: failing),
        live: chain.fixture.live)
    }
    #expect(error?.kind == .wrongKey)
    let left = (try? FileManager.default.contentsOfDirectory(atPath: chain.output)) ?? []
    #expect(left.allSatisfy { $0 == ".reel-seal.lock" }, "\(left)")
    #expect(try chain.fixture.live.lastSealedArchive(of: chain.fixture.descriptor) == nil)

    let key = chain.key
    let late = SealKeys {
      Thread.sleep(forTimeInterval: 0.3)
      return [key]
    }
    let outcome = try Sealer.seal(
      SealRequest(volume: chain.fixture.name, outputDirectory: chain.output, masterKeys: late),
      live: chain.fixture.live)
    guard case .sealed(let archive) = outcome else {
      Issue.record("nothing sealed")
      return
    }
    #expect(try ArchiveVerifier.verify(path: archive.path, masterKeys: [key]).problems.isEmpty)
  }
}
