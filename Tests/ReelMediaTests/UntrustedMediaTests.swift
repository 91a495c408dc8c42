import Foundation
import ReelArchive
import ReelCodec
import ReelCore
import ReelIO
import ReelStore
import ReelTestSupport
import Testing

@testable import ReelMedia

/// Media are written by whoever held them last: a catalog, a label or a tar header is
/// attacker input until the key has authenticated the manifest it should agree with.
@Suite struct UntrustedMediaTests {
  /// A cartridge `reel export` wrote, holding `archives` of one media set.
  private func cartridge(_ sandbox: MediaSandbox, _ archives: [SealedArchive], name: String = "T1") throws -> String {
    #expect(try sandbox.reel("init").status == 0)
    #expect(
      try sandbox.reel("media", "label", "vtape:" + sandbox.library, "--name", name, "--capacity", "64M").status == 0)
    let export = try run(
      reelExecutable,
      ["export"] + archives.map(\.path) + ["--to", "vtape:" + sandbox.cartridge(name), "--media-set", "s"],
      environment: ["REEL_STORE": sandbox.store])
    #expect(export.status == 0, "\(export.output)")
    return sandbox.cartridge(name)
  }

  /// What an attacker with the cartridge does: appends a catalog of their own, which is
  /// the newest one and so the one read.
  private func tamperCatalog(_ path: String, _ change: (inout CartridgeCatalog) -> Void) throws {
    let cartridge = TapeCartridge(drive: try VirtualTapeDrive(path: path))
    var catalog = try cartridge.readCatalog()
    change(&catalog)
    try cartridge.writeCatalog(&catalog)
  }

  private func rehydrate(_ sandbox: MediaSandbox, _ maker: ArchiveMaker, from media: String, into target: String)
    throws -> CommandResult
  {
    try run(
      reelExecutable, ["rehydrate", "--from", media, "--key", maker.keyPath, "--store", target],
      environment: ["REEL_STORE": target, "REEL_PASSPHRASE": ArchiveMaker.passphrase])
  }

  /// Every file under `folder`, for "nothing was created outside the store".
  private func files(under folder: String) -> [String] {
    (FileManager.default.enumerator(atPath: folder)?.allObjects as? [String]) ?? []
  }

  @Test func aCatalogNamingAVolumeOutsideTheStoreIsRefusedAndNothingIsCreatedThere() throws {
    let sandbox = try MediaSandbox()
    let maker = try ArchiveMaker()
    let archives = try ["a", "b", "c"].map { try maker.seal(randomBytes: 300_000, bookmark: $0) }
    let path = try cartridge(sandbox, archives)
    try tamperCatalog(path) { catalog in
      let last = catalog.files.lastIndex { $0.archive?.archiveID == archives[2].manifest.archiveID }!
      catalog.files[last].archive!.volume = "../../x/evil"
    }
    let outside = sandbox.root + "/x"
    try FileManager.default.createDirectory(atPath: outside, withIntermediateDirectories: true)
    let target = sandbox.root + "/rehydrated"

    let result = try rehydrate(sandbox, maker, from: "vtape:" + path, into: target)
    #expect(result.signal == nil)
    #expect(result.status == 3, "\(result.output)")
    #expect(result.stdout.contains("REFUSED") && result.stdout.contains("../../x/evil"), "\(result.output)")
    #expect(files(under: outside).isEmpty, "\(files(under: outside))")
    #expect(!files(under: sandbox.root).contains { $0.contains("evil") }, "\(files(under: sandbox.root))")
    // The genuine archives still came in; the store holds no volume of that name.
    #expect(result.stdout.contains("disk: 2 archive(s) imported"), "\(result.output)")
    #expect(try Store.open(StoreLayout(root: target)).layout.volumeNames() == ["disk"])
  }

  @Test func aCatalogHidingThatAnArchiveIsACloneIsCaughtByItsManifestAndNothingIsImported() throws {
    let history = try ClonedHistory()
    try history.writeToClone(changes: 4, bookmark: "mine")
    try history.seal("disk", "copy")
    let library = history.fixture.root + "/vtl"
    try FileManager.default.createDirectory(atPath: library, withIntermediateDirectories: true)
    history.expectSuccess(try history.reel("media", "label", "vtape:" + library, "--name", "T1", "--capacity", "64M"))
    let path = library + "/T1.vtape"
    let all = try history.archiveFiles(of: "disk") + history.archiveFiles(of: "copy")
    history.expectSuccess(
      try run(reelExecutable, ["export"] + all + ["--to", "vtape:" + path], environment: ["REEL_STORE": history.store]))
    // Without its origin in the catalog, the clone's archive looks like a volume of its own
    // that needs nothing else.
    try tamperCatalog(path) { catalog in
      for index in catalog.files.indices where catalog.files[index].archive?.volume == "copy" {
        catalog.files[index].archive!.origin = nil
      }
    }
    let target = history.fixture.root + "/dr-store"
    let result = try history.reel(
      "rehydrate", "--from", "vtape:" + path, "--key", history.keyPath, "--store", target, "--volume", "copy",
      store: target)
    #expect(result.status == 3, "\(result.output)")
    #expect(result.stdout.contains("DAMAGED") && result.stdout.contains("origin none on the media"), "\(result.output)")
    #expect(history.volumes(in: target).isEmpty, "nothing of the clone was imported")
  }

  @Test func anArchiveWhoseAuthenticatedManifestIsAnotherVolumesIsRefused() throws {
    let sandbox = try MediaSandbox()
    let maker = try ArchiveMaker()
    let archives = try ["a", "b"].map { try maker.seal(randomBytes: 300_000, bookmark: $0) }
    // Another volume, also called disk, sealed with the same key: a real archive, spliced
    // in where the catalog says the chain's second archive is.
    let other = try StoreFixture(size: 4 << 20)
    try other.append(.write(offset: 0, data: [UInt8](repeating: 0x5A, count: 128 << 10)))
    try other.append(.bookmark("other"))
    guard
      case .sealed(let stranger) = try Sealer.seal(
        SealRequest(volume: other.name, outputDirectory: other.root + "/archives", masterKeys: [maker.key]),
        live: other.live)
    else { throw SupportError("nothing sealed") }
    let path = try cartridge(sandbox, archives + [stranger])
    try tamperCatalog(path) { catalog in
      let second = catalog.files.firstIndex { $0.archive?.archiveID == archives[1].manifest.archiveID }!
      let spliced = catalog.files.firstIndex { $0.archive?.archiveID == stranger.manifest.archiveID }!
      catalog.files[second].file = catalog.files[spliced].file
      catalog.files[second].size = catalog.files[spliced].size
      catalog.files[second].sha256 = catalog.files[spliced].sha256
      catalog.files.remove(at: spliced)
    }
    let target = sandbox.root + "/rehydrated"

    let result = try rehydrate(sandbox, maker, from: "vtape:" + path, into: target)
    #expect(result.signal == nil)
    #expect(result.status == 3, "\(result.output)")
    #expect(
      result.stdout.contains("DAMAGED") && result.stdout.contains("does not describe the archive"), "\(result.output)")
    #expect(result.stdout.contains("volume ID \(archives[1].manifest.volume.id) on the media"), "\(result.output)")
    let store = try Store.open(StoreLayout(root: target))
    let descriptor = try store.layout.descriptor(of: "disk")
    #expect(descriptor.id.description == archives[0].manifest.volume.id)
    #expect(try LiveStore(store: store).historyBounds(of: descriptor).ingested == archives[0].manifest.range.untilSeq)
  }

  @Test func aSetWhoseNewestCartridgeIsWithheldIsReportedAsRolledBack() throws {
    let sandbox = try MediaSandbox()
    let maker = try ArchiveMaker()
    let archives = try sandbox.exportChainToThreeCartridges(maker)
    // The attacker keeps the cartridge with the newest archive back.
    try FileManager.default.moveItem(atPath: sandbox.cartridge("C3"), toPath: sandbox.root + "/C3.vtape")

    let target = sandbox.root + "/rehydrated"
    let result = try rehydrate(sandbox, maker, from: "vtape:" + sandbox.library, into: target)
    #expect(result.status == 3, "\(result.output)")
    #expect(result.stdout.contains("WITHHELD"), "\(result.output)")
    #expect(result.stdout.contains(archives[2].manifest.archiveID), "\(result.output)")
    #expect(result.stdout.contains("2 archive(s) imported"), "\(result.output)")
  }

  /// A cold-storage folder's label whose data-block-size was made negative: export sized
  /// its copy buffer by it and trapped; the label is refused as corrupt instead.
  @Test func aLabelWithANegativeBlockSizeIsRefusedNotACrash() throws {
    let sandbox = try MediaSandbox()
    let maker = try ArchiveMaker()
    let archive = try maker.seal(randomBytes: 300_000, bookmark: "p")
    #expect(try sandbox.reel("init").status == 0)
    let folder = sandbox.root + "/cold"
    #expect(try sandbox.reel("media", "label", "dir:" + folder, "--name", "COLD1").status == 0)
    let labelPath = folder + "/REEL-LABEL.txt"
    let text = String(decoding: sandbox.bytes(labelPath), as: UTF8.self)
    #expect(text.contains("data-block-size: 1048576"))
    _ = FileManager.default.createFile(
      atPath: labelPath,
      contents: Data(text.replacingOccurrences(of: "data-block-size: 1048576", with: "data-block-size: -1048576").utf8))

    let export = try sandbox.reel("export", archive.path, "--to", "dir:" + folder, "--media-set", "s")
    #expect(export.signal == nil, "\(export.output)")
    #expect(export.status != 0 && export.stderr.contains("data-block-size -1048576"), "\(export.output)")
    #expect((try? FileManager.default.contentsOfDirectory(atPath: folder + "/archives")) ?? [] == [])
  }

  /// `reel media label` gives only names a label read back may hold (one rule for both):
  /// a 65-character name, which the reader refuses, is refused before anything is created.
  @Test func aLabelNameTheReaderWouldRefuseIsNeverWritten() throws {
    let sandbox = try MediaSandbox()
    #expect(try sandbox.reel("init").status == 0)
    let tooLong = String(repeating: "A", count: 65)
    let refused = try sandbox.reel("media", "label", "vtape:" + sandbox.library, "--name", tooLong, "--capacity", "8M")
    #expect(refused.status == 64 && refused.stderr.contains("invalid label"), "\(refused.output)")
    #expect(!FileManager.default.fileExists(atPath: sandbox.cartridge(tooLong)))
    let longest = String(repeating: "A", count: 64)
    let labeled = try sandbox.reel("media", "label", "vtape:" + sandbox.library, "--name", longest, "--capacity", "8M")
    #expect(labeled.status == 0, "\(labeled.output)")
    let catalog = try sandbox.reel("media", "catalog", "vtape:" + sandbox.cartridge(longest))
    #expect(catalog.status == 0 && catalog.stdout.contains(longest), "\(catalog.output)")
  }

  /// A pax `size=` record made negative in the manifest's header on the cartridge: named
  /// as a damaged tape file, never a crash.
  @Test func aNegativePaxSizeOnACartridgeIsAClearErrorNotACrash() throws {
    let sandbox = try MediaSandbox()
    let maker = try ArchiveMaker()
    // Without parity: with it, rehydrate repairs the header (MediaDamageTests).
    let archive = try maker.seal(randomBytes: 300_000, bookmark: "p", parity: 0)
    let path = try cartridge(sandbox, [archive])
    var bytes = sandbox.bytes(path)
    // libarchive writes a pax header with the sub-second mtime before each member
    // ("LEN mtime=…\n"); the second is manifest.json's. It becomes a size record of the
    // same length, so the tape framing stays intact.
    let key = Array(" mtime=".utf8)
    let keys = bytes.indices.filter { index in
      index + key.count <= bytes.count && bytes[index] == key[0] && Array(bytes[index..<(index + key.count)]) == key
    }
    try #require(keys.count >= 2)
    var start = keys[1]
    while bytes[start - 1] >= 48 && bytes[start - 1] <= 57 { start -= 1 }
    let end = bytes[keys[1]...].firstIndex(of: 10)!
    let length = end + 1 - start
    let prefix = Array("\(length) size=-".utf8)
    let negative = prefix + [UInt8](repeating: 48, count: length - prefix.count - 2) + Array("1\n".utf8)
    bytes.replaceSubrange(start...end, with: negative)
    _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))

    let scan = try sandbox.reel("media", "catalog", "vtape:" + path, "--scan")
    #expect(scan.signal == nil, "\(scan.output)")
    #expect(scan.status == 65, "\(scan.output)")
    #expect(scan.output.contains("size attribute is negative"), "\(scan.output)")

    let target = sandbox.root + "/rehydrated"
    let rehydrated = try rehydrate(sandbox, maker, from: "vtape:" + path, into: target)
    #expect(rehydrated.signal == nil, "\(rehydrated.output)")
    #expect(rehydrated.status == 3, "\(rehydrated.output)")
    #expect(rehydrated.stdout.contains("DAMAGED") && rehydrated.stdout.contains("negative"), "\(rehydrated.output)")
  }
}
