import Foundation
import ReelArchive
import ReelCodec
import ReelCore
import ReelIO
import ReelJournal
import ReelMedia
import ReelStore
import ReelTestSupport
import Testing

/// An origin volume `disk` with history, a clone `copy` of it taken at bookmark "before"
/// with writes of its own, both sealed into one folder with a key.
final class ClonedHistory: @unchecked Sendable {
  let fixture: StoreFixture
  let keyPath: String
  static let passphrase = "correct horse"
  var store: String { fixture.store.layout.root }
  var archives: String { fixture.root + "/archives" }
  /// The clone point: the origin's seq at bookmark "before".
  let clonePoint: Seq
  /// Each clone's contents at its own seqs, from its clone point on.
  var images: [String: [Seq: [UInt8]]] = [:]
  var cloneImages: [Seq: [UInt8]] { images["copy"] ?? [:] }
  /// Bytes written to each clone so far.
  var bytesWritten: [String: Int] = [:]
  var cloneBytesWritten: Int { bytesWritten["copy"] ?? 0 }
  private var writers: [String: JournalWriter] = [:]
  private var models: [String: [UInt8]] = [:]

  init() throws {
    fixture = try StoreFixture(size: 2 << 20)
    keyPath = fixture.root + "/master.key"
    try KeyFile.create(at: keyPath, passphrase: Self.passphrase)
    for _ in 0..<30 { try fixture.randomChange() }
    clonePoint = try fixture.append(.bookmark("before")).seq
    fixture.snapshot(clonePoint)
    models["copy"] = fixture.model
    // The origin goes on after the clone point; none of this may show in the clone.
    for _ in 0..<30 { try fixture.randomChange() }
    fixture.snapshot(try fixture.append(.bookmark("after")).seq)
    try fixture.closeWriter()
    try expectSuccess(reel("clone", "disk", "--at", "before", "--as", "copy"))
    images["copy"] = [clonePoint: models["copy"]!]
  }

  /// Clones clone `origin` at its bookmark `label` as `name`.
  func cloneClone(_ origin: String, at label: String, as name: String) throws {
    try closeClones()
    try expectSuccess(reel("clone", origin, "--at", label, "--as", name))
    let seq = bookmarks[origin]![label]!
    models[name] = images[origin]![seq]
    images[name] = [seq: models[name]!]
  }

  var bookmarks: [String: [String: Seq]] = [:]

  @discardableResult
  func reel(_ arguments: String..., store: String? = nil) throws -> CommandResult {
    try run(
      reelExecutable, arguments,
      environment: ["REEL_STORE": store ?? self.store, "REEL_PASSPHRASE": Self.passphrase, "REEL_KEY": nil])
  }

  func expectSuccess(_ result: CommandResult, sourceLocation: SourceLocation = #_sourceLocation) {
    #expect(result.status == 0, "\(result.output)", sourceLocation: sourceLocation)
  }

  /// Writes to a clone through its own journal, then a bookmark; returns its seq.
  @discardableResult
  func writeToClone(_ name: String = "copy", changes: Int, bookmark: String) throws -> Seq {
    if writers[name] == nil {
      let clone = try fixture.store.layout.descriptor(of: name)
      writers[name] = try JournalWriter.open(
        directory: fixture.store.layout.journalDirectory(name), volume: clone.id
      ).0
    }
    var model = models[name]!
    for _ in 0..<changes {
      let length = 512 * Int(1 + fixture.rng.next() % 64)
      let offset = Int(fixture.rng.next() % UInt64((model.count - length) / 512)) * 512
      let data = (0..<length).map { _ in UInt8(truncatingIfNeeded: fixture.rng.next()) }
      try writers[name]!.append(.write(offset: UInt64(offset), data: data))
      model.replaceSubrange(offset..<(offset + length), with: data)
      bytesWritten[name, default: 0] += length
    }
    let seq = try writers[name]!.append(.bookmark(bookmark)).seq
    models[name] = model
    images[name, default: [:]][seq] = model
    bookmarks[name, default: [:]][bookmark] = seq
    return seq
  }

  func closeClones() throws {
    for writer in writers.values { try writer.close() }
    writers.removeAll()
  }

  func seal(_ volumes: String...) throws {
    try closeClones()
    let sealed = try run(
      reelExecutable, ["seal"] + volumes + ["--out", archives, "--key", keyPath],
      environment: ["REEL_STORE": store, "REEL_PASSPHRASE": Self.passphrase, "REEL_KEY": nil])
    expectSuccess(sealed)
  }

  func archiveFiles(of volume: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: archives).filter {
      $0.hasPrefix(volume + "-") && $0.hasSuffix(ArchiveFormat.fileSuffix)
    }.sorted().map { archives + "/" + $0 }
  }

  /// The image `reel restore` writes for `volume` at `point` from `store`.
  func restored(_ volume: String, at point: String, store: String) throws -> [UInt8]? {
    let output = fixture.root + "/restore-\(UUID().uuidString).img"
    defer { try? FileManager.default.removeItem(atPath: output) }
    let result = try reel("restore", volume, "--at", point, "--output", output, store: store)
    #expect(result.status == 0, "restore \(volume) at \(point): \(result.output)")
    return FileManager.default.contents(atPath: output).map { Array($0) }
  }

  func volumes(in store: String) -> [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: store + "/volumes")) ?? []).sorted()
  }
}

@Suite struct CloneArchiveTests {
  @Test func aClonesArchivesNameItsOriginAndHoldOnlyItsOwnVersions() throws {
    let history = try ClonedHistory()
    try history.writeToClone(changes: 10, bookmark: "clone-1")
    try history.seal("disk", "copy")
    let files = try history.archiveFiles(of: "copy")
    #expect(files.count == 1)
    let manifest = try ArchiveVerifier.readManifest(path: files[0])
    let origin = try #require(manifest.origin)
    // Version 3's lineage, with parity (the seal's default) version 4 (docs/archive-format.md).
    #expect(manifest.formatVersion == 4 && manifest.parity != nil && manifest.packLayout == 2)
    #expect(origin.volumeName == "disk" && origin.seq == history.clonePoint)
    #expect(origin.volumeID == history.fixture.descriptor.id.description)
    #expect(origin.time == history.fixture.times[history.clonePoint]!.rfc3339)
    #expect(manifest.range.fromSeq == history.clonePoint, "a clone's first archive covers seq P+1 on")
    // Its own versions only: the ten writes, none of the origin's data.
    #expect(manifest.contents.chunkBytes <= UInt64(history.cloneBytesWritten), "\(manifest.contents)")
    let clone = try history.fixture.store.layout.descriptor(of: "copy")
    var ownVersions = 0
    try history.fixture.live.versions(of: clone, after: 0, through: Seq(Int64.max)) { ownVersions += $0.count }
    #expect(ownVersions > 0 && manifest.contents.blockVersions == ownVersions)
    // The origin's archive names no origin (version 4 only for its parity).
    let disk = try ArchiveVerifier.readManifest(path: try history.archiveFiles(of: "disk")[0])
    #expect(disk.formatVersion == 4 && disk.origin == nil && disk.parity != nil)
    let verify = try history.reel("verify", files[0], "--key", history.keyPath)
    history.expectSuccess(verify)
    let inspect = try history.reel("inspect", files[0])
    #expect(inspect.stdout.contains("Origin      clone of disk"), "\(inspect.output)")
  }

  @Test func aFreshCloneIsSealedAsItsClonePointAlone() throws {
    let history = try ClonedHistory()
    try history.seal("copy")
    let files = try history.archiveFiles(of: "copy")
    #expect(files.count == 1)
    let manifest = try ArchiveVerifier.readManifest(path: files[0])
    #expect(manifest.range.fromSeq == history.clonePoint && manifest.range.untilSeq == history.clonePoint)
    #expect(manifest.contents.blockVersions == 0 && manifest.origin?.seq == history.clonePoint)
  }

  @Test func aCloneExportedToTapeComesBackWithItsOriginAndRestoresEveryPoint() throws {
    let history = try ClonedHistory()
    let first = try history.writeToClone(changes: 12, bookmark: "clone-1")
    try history.seal("disk", "copy")
    let second = try history.writeToClone(changes: 12, bookmark: "clone-2")
    try history.seal("copy")
    let library = history.fixture.root + "/vtl"
    try FileManager.default.createDirectory(atPath: library, withIntermediateDirectories: true)
    history.expectSuccess(try history.reel("media", "label", "vtape:" + library, "--name", "C1", "--capacity", "64M"))
    let all = try history.archiveFiles(of: "disk") + history.archiveFiles(of: "copy")
    history.expectSuccess(
      try run(
        reelExecutable, ["export"] + all + ["--to", "vtape:" + library, "--media-set", "weekly"],
        environment: ["REEL_STORE": history.store]))

    // Only the clone is asked for: its origin's archives up to the clone point come too.
    let target = history.fixture.root + "/dr-store"
    let rehydrated = try history.reel(
      "rehydrate", "--from", "vtape:" + library, "--key", history.keyPath, "--store", target, "--volume", "copy",
      "--json", store: target)
    history.expectSuccess(rehydrated)
    let report = try JSONSerialization.jsonObject(with: Data(rehydrated.stdout.utf8)) as! [String: Any]
    let volumes = report["volumes"] as! [[String: Any]]
    #expect(volumes.map { $0["volume"] as! String } == ["disk", "copy"], "origins come first")
    #expect(volumes[0]["needed_by"] as? [String] == ["copy"])
    #expect(history.volumes(in: target) == ["copy", "disk"])

    for (seq, image) in history.cloneImages {
      #expect(difference(try history.restored("copy", at: "seq:\(seq)", store: target), image) == nil, "seq \(seq)")
    }
    #expect(difference(try history.restored("copy", at: "clone-1", store: target), history.cloneImages[first]) == nil)
    #expect(difference(try history.restored("copy", at: "latest", store: target), history.cloneImages[second]) == nil)
    let before = history.fixture.snapshots[history.clonePoint]
    #expect(difference(try history.restored("disk", at: "before", store: target), before) == nil)
    // The rehydrated clone is linked to its origin, as the original was.
    let rebuilt = LiveStore(store: try Store.open(StoreLayout(root: target)))
    let link = try rebuilt.origin(of: try rebuilt.store.layout.descriptor(of: "copy"))
    #expect(link?.originVolumeID == history.fixture.descriptor.id.description && link?.originSeq == history.clonePoint)
  }

  @Test func withoutItsOriginsArchivesACloneIsRefusedNamingThemAndNothingIsImported() throws {
    let history = try ClonedHistory()
    try history.writeToClone(changes: 8, bookmark: "clone-1")
    try history.seal("disk", "copy")
    // Only the clone's archives reach the media.
    let media = history.fixture.root + "/cold"
    history.expectSuccess(try history.reel("media", "label", "dir:" + media, "--name", "CLONES", "--capacity", "64M"))
    history.expectSuccess(
      try run(
        reelExecutable, ["export"] + (try history.archiveFiles(of: "copy")) + ["--to", "dir:" + media],
        environment: ["REEL_STORE": history.store]))
    let target = history.fixture.root + "/dr-store"
    let refused = try history.reel(
      "rehydrate", "--from", "dir:" + media, "--key", history.keyPath, "--store", target, store: target)
    #expect(refused.status == 3, "\(refused.output)")
    #expect(refused.stdout.contains("cloned from disk (id \(history.fixture.descriptor.id))"), "\(refused.stdout)")
    #expect(refused.stdout.contains("at seq \(history.clonePoint)"), "\(refused.stdout)")
    #expect(refused.stdout.contains("nothing of copy was imported"), "\(refused.stdout)")
    #expect(history.volumes(in: target).isEmpty, "the store is as it was")

    #expect(refused.stdout.contains("load the media holding disk's archives"), "\(refused.stdout)")

    // With the origin's archives imported first, the clone follows.
    let originArchive = try history.archiveFiles(of: "disk")[0]
    history.expectSuccess(
      try history.reel(
        "rehydrate", "--from", originArchive, "--key", history.keyPath, "--store", target, store: target))
    let completed = try history.reel(
      "rehydrate", "--from", "dir:" + media, "--key", history.keyPath, "--store", target, "--merge", store: target)
    history.expectSuccess(completed)
    let latest = history.cloneImages[history.cloneImages.keys.max()!]
    #expect(difference(try history.restored("copy", at: "latest", store: target), latest) == nil)
  }

  @Test func rollbacksTravelThroughArchivesAndARehydratedTimelineShowsThem() throws {
    let history = try ClonedHistory()
    history.expectSuccess(try history.reel("rollback", "disk", "--to", "before"))
    let fixture = history.fixture
    fixture.model = fixture.snapshots[history.clonePoint]!
    for _ in 0..<10 { try fixture.randomChange() }
    let later = try fixture.append(.bookmark("later")).seq
    fixture.snapshot(later)
    try fixture.closeWriter()
    history.expectSuccess(try history.reel("seal", "disk", "--out", history.archives, "--key", history.keyPath))
    let file = try #require(try history.archiveFiles(of: "disk").first)
    let manifest = try ArchiveVerifier.readManifest(path: file)
    let rollbacks = try #require(manifest.rollbacks)
    #expect(manifest.formatVersion == 4 && manifest.parity != nil && manifest.origin == nil)
    #expect(rollbacks.map(\.targetSeq) == [history.clonePoint])
    history.expectSuccess(try history.reel("verify", file, "--key", history.keyPath))

    let target = fixture.root + "/dr-store"
    history.expectSuccess(
      try history.reel(
        "rehydrate", "--from", history.archives, "--key", history.keyPath, "--store", target, "--volume", "disk",
        store: target))
    let timeline = try history.reel("timeline", "disk", "--json", store: target)
    history.expectSuccess(timeline)
    let document = try JSONSerialization.jsonObject(with: Data(timeline.stdout.utf8)) as! [String: Any]
    let shown = document["rollbacks"] as? [[String: Any]] ?? []
    #expect(shown.map { $0["seq"] as? Int } == rollbacks.map { Int($0.seq) }, "\(timeline.stdout)")
    #expect(shown.map { $0["target_seq"] as? Int } == [Int(history.clonePoint)])
    #expect(difference(try history.restored("disk", at: "later", store: target), fixture.snapshots[later]) == nil)
    let afterSeq = fixture.bookmarks["after"]!
    #expect(difference(try history.restored("disk", at: "after", store: target), fixture.snapshots[afterSeq]) == nil)
  }

  @Test func aCloneOfACloneComesBackWithBothOriginsInOrder() throws {
    let history = try ClonedHistory()
    try history.writeToClone(changes: 6, bookmark: "copy-1")
    try history.cloneClone("copy", at: "copy-1", as: "grandchild")
    try history.writeToClone("grandchild", changes: 6, bookmark: "grand-1")
    try history.writeToClone("copy", changes: 6, bookmark: "copy-2")
    try history.seal("disk", "copy", "grandchild")
    let manifest = try ArchiveVerifier.readManifest(path: try history.archiveFiles(of: "grandchild")[0])
    #expect(manifest.origin?.volumeName == "copy" && manifest.origin?.seq == history.bookmarks["copy"]!["copy-1"])

    let target = history.fixture.root + "/dr-store"
    let rehydrated = try history.reel(
      "rehydrate", "--from", history.archives, "--key", history.keyPath, "--store", target, "--volume", "grandchild",
      "--json", store: target)
    history.expectSuccess(rehydrated)
    let report = try JSONSerialization.jsonObject(with: Data(rehydrated.stdout.utf8)) as! [String: Any]
    let volumes = report["volumes"] as! [[String: Any]]
    #expect(volumes.map { $0["volume"] as! String } == ["disk", "copy", "grandchild"])
    for (seq, image) in history.images["grandchild"]! {
      #expect(
        difference(try history.restored("grandchild", at: "seq:\(seq)", store: target), image) == nil, "seq \(seq)")
    }
  }
}
