import Foundation
import ReelArchive
import ReelCodec
import ReelCore
import ReelIO
import ReelStore
import ReelTestSupport
import Testing

@testable import ReelMedia

/// The st-driver behaviour the tape code relies on, on a vtape cartridge file.
@Suite struct VirtualTapeDriveTests {
  @Test func filemarksSpacingEarlyWarningEndOfTapeAndWriteProtect() throws {
    let sandbox = try MediaSandbox()
    let path = sandbox.cartridge("T")
    try VirtualTapeDrive.create(path: path, capacity: 4 << 20)
    try exerciseDrive(try VirtualTapeDrive(path: path), path: path)

    // A write-protected cartridge refuses writes and keeps its bytes.
    try VirtualTapeDrive.setWriteProtected(path: path, true)
    let before = sandbox.digest(path)
    let protected = try VirtualTapeDrive(path: path)
    #expect(protected.writeProtected)
    #expect(throws: ReelError.self) { try protected.writeFilemark() }
    #expect(sandbox.digest(path) == before)
  }

  private func exerciseDrive(_ drive: VirtualTapeDrive, path: String) throws {
    #expect(drive.earlyWarning == 2 << 20)
    let block = [UInt8](repeating: 7, count: 512 << 10)
    try drive.setBlockSize(512 << 10)
    // Three files of one block each.
    for _ in 0..<3 {
      #expect(try block.withUnsafeBytes { try drive.write($0) } == .written)
      try drive.writeFilemark()
    }
    #expect(try drive.status().fileNumber == 3)
    try drive.spaceBack(files: 2)
    #expect(try drive.status().fileNumber == 1)
    try drive.spaceForward(files: 1)
    try drive.setBlockSize(0)
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    #expect(try buffer.withUnsafeMutableBytes { try drive.read(into: $0) } == .data(512 << 10))
    #expect(try drive.status().fileNumber == 2)
    #expect(try buffer.withUnsafeMutableBytes { try drive.read(into: $0) } == .filemark)
    try drive.seekEndOfData()
    #expect(try drive.status().fileNumber == 3 && drive.status().atEndOfData)
    #expect(try buffer.withUnsafeMutableBytes { try drive.read(into: $0) } == .endOfData)

    // Writing after spacing back erases what followed, as on tape.
    try drive.rewind()
    try drive.spaceForward(files: 1)
    try drive.setBlockSize(512 << 10)
    _ = try block.withUnsafeBytes { try drive.write($0) }
    try drive.writeFilemark()
    try drive.seekEndOfData()
    #expect(try drive.status().fileNumber == 2)

    // Early warning first, then the physical end with nothing written.
    var outcomes: [WriteOutcome] = []
    var full: ReelError?
    while full == nil {
      do {
        outcomes.append(try block.withUnsafeBytes { try drive.write($0) })
      } catch let error as ReelError {
        full = error
      }
    }
    #expect(full?.kind == .mediaFull)
    #expect(outcomes.first == .written && outcomes.last == .earlyWarning)
    let sizeAtEnd = try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber
    #expect(sizeAtEnd!.uint64Value <= VirtualTapeDrive.headerSize + (4 << 20))
    try drive.writeFilemark()
  }
}

@Suite(.serialized) struct ExportTests {
  /// Three real archives of one chain on cartridges sized so that early warning falls in
  /// the middle of the second archive of each cartridge.
  @Test func setSpansThreeCartridgesRewritingTheCutArchiveWholeAndScanAgrees() throws {
    let sandbox = try MediaSandbox()
    let maker = try ArchiveMaker()
    let archives = try ["a", "b", "c"].map { try maker.seal(randomBytes: 2_600_000, bookmark: $0) }
    let sizes = archives.map(\.size)
    let largest = sizes.max()!
    #expect(sizes.min()! >= 3 << 20 && largest - sizes.min()! <= 1 << 20, "archive sizes \(sizes)")
    let capacity = largest + (512 << 10) + (64 << 10) + (2 << 20)
    #expect(try sandbox.reel("init").status == 0)
    for name in ["C1", "C2", "C3"] {
      let labeled = try sandbox.reel(
        "media", "label", "vtape:" + sandbox.library, "--name", name, "--capacity", "\(capacity)")
      #expect(labeled.status == 0, "\(labeled.output)")
    }
    let paths = archives.map(\.path)
    let export = try sandbox.reel(
      "export", paths[0], paths[1], paths[2], "--to", "vtape:" + sandbox.library, "--media-set", "weekly")
    #expect(export.status == 0, "\(export.output)")
    #expect(export.stdout.contains("C3 file 2, verified"))

    var catalogs: [[String: Any]] = []
    for name in ["C1", "C2", "C3"] {
      let fast = try sandbox.reel("media", "catalog", "vtape:" + sandbox.cartridge(name), "--json")
      #expect(fast.status == 0, "\(fast.output)")
      let scanned = try sandbox.reel("media", "catalog", "vtape:" + sandbox.cartridge(name), "--scan", "--json")
      #expect(scanned.status == 0, "\(scanned.output)")
      let catalog = try sandbox.json(fast.stdout) as! [String: Any]
      #expect(catalog as NSDictionary == (try sandbox.json(scanned.stdout) as! NSDictionary), "scan of \(name)")
      catalogs.append(catalog)
    }
    let ids = archives.map { String($0.manifest.archiveID.prefix(8)) }
    let files = catalogs.map { ($0["files"] as! [[String: Any]]).fileSummary }
    #expect(
      files[0] == [
        "0 label - -", "1 set-catalogs - -", "2 archive complete \(ids[0])", "3 archive incomplete \(ids[1])",
        "4 catalog - -",
      ])
    #expect(
      files[1] == [
        "0 label - -", "1 set-catalogs - -", "2 archive complete \(ids[1])", "3 archive incomplete \(ids[2])",
        "4 catalog - -",
      ])
    #expect(files[2] == ["0 label - -", "1 set-catalogs - -", "2 archive complete \(ids[2])", "3 catalog - -"])
    #expect(catalogs[0]["closed"] as? Bool == true && catalogs[2]["closed"] as? Bool == false)
    // The newest cartridge's set manifest says where everything is.
    let set = catalogs[2]["set"] as! [[String: Any]]
    #expect(set.map { $0["label"] as! String } == ["C1", "C2", "C3"])
    #expect(set.map { ($0["archives"] as! [String]).map { String($0.prefix(8)) } } == [[ids[0]], [ids[1]], [ids[2]]])

    // The bytes on tape are the archive's, byte for byte.
    do {
      let drive = try VirtualTapeDrive(path: sandbox.cartridge("C2"))
      try drive.spaceForward(files: 2)
      var onTape: [UInt8] = []
      var buffer = [UInt8](repeating: 0, count: 1 << 20)
      while case .data(let count) = try buffer.withUnsafeMutableBytes({ try drive.read(into: $0) }) {
        onTape += buffer[0..<count]
      }
      let same = Array(onTape.prefix(Int(archives[1].size))) == sandbox.bytes(archives[1].path)
      #expect(same, "tape file 2 of C2 holds the archive's bytes")
    }

    // The store counts one verified copy of each; a restore to "a" needs C1 only, latest all three.
    let store = try Store.open(StoreLayout(root: sandbox.store)).catalog
    for archive in archives { #expect(try store.verifiedCopyCount(archiveID: archive.manifest.archiveID) == 1) }
    let early = try sandbox.reel("media", "needed", "a", "--volume", "disk", "--json")
    #expect(early.status == 0, "\(early.output)")
    let earlySets = (try sandbox.json(early.stdout) as! [String: Any])["media_sets"] as! [[String: Any]]
    #expect((earlySets[0]["cartridges"] as! [[String: Any]]).map { $0["label"] as! String } == ["C1"])
    let latest = try sandbox.reel("media", "needed", "latest", "--volume", "disk")
    #expect(
      latest.status == 0 && latest.stdout.contains("media set weekly: C1 (file 2), C2 (file 2), C3 (file 2)"),
      "\(latest.output)")

    // Running the export again writes nothing.
    let again = try sandbox.reel(
      "export", paths[0], paths[1], paths[2], "--to", "vtape:" + sandbox.library, "--media-set", "weekly")
    #expect(
      again.status == 0 && again.stdout.contains("0 archive(s) to media set weekly; 3 already there"), "\(again.output)"
    )

    // A fourth archive fills the set: a clear error, earlier cartridges untouched; a new
    // blank cartridge and the same command finish the job.
    let fourth = try maker.seal(randomBytes: 2_600_000, bookmark: "d")
    let untouched = ["C1", "C2"].map { sandbox.digest(sandbox.cartridge($0)) }
    let full = try sandbox.reel("export", fourth.path, "--to", "vtape:" + sandbox.library, "--media-set", "weekly")
    #expect(full.status == 75 && full.stderr.contains("is full: no blank cartridge left"), "\(full.output)")
    #expect(["C1", "C2"].map { sandbox.digest(sandbox.cartridge($0)) } == untouched)
    #expect(
      try sandbox.reel("media", "label", "vtape:" + sandbox.library, "--name", "C4", "--capacity", "\(capacity)").status
        == 0)
    let resumed = try sandbox.reel("export", fourth.path, "--to", "vtape:" + sandbox.library, "--media-set", "weekly")
    #expect(resumed.status == 0 && resumed.stdout.contains("C4 file 2, verified"), "\(resumed.output)")
    let listed = try sandbox.json(try sandbox.reel("media", "list", "--json").stdout) as! [[String: Any]]
    #expect(listed.map { $0["label"] as! String } == ["C1", "C2", "C3", "C4"])
    #expect(listed.map { ($0["archives"] as! [Any]).count } == [1, 1, 1, 1])

    // Disaster: the library and the key alone give the volume back, as of its last write.
    let target = sandbox.root + "/rehydrated"
    let rehydrated = try run(
      reelExecutable,
      ["rehydrate", "--from", "vtape:" + sandbox.library, "--key", maker.keyPath, "--store", target],
      environment: ["REEL_STORE": target, "REEL_PASSPHRASE": ArchiveMaker.passphrase])
    #expect(rehydrated.status == 0, "\(rehydrated.output)")
    let image = sandbox.root + "/restored.img"
    let restored = try run(
      reelExecutable, ["restore", "disk", "--at", "latest", "--output", image],
      environment: ["REEL_STORE": target])
    #expect(restored.status == 0, "\(restored.output)")
    #expect(sandbox.digest(image) == SHA256Digest.hash(maker.fixture.model).hex, "the restored image is the last state")
  }

  @Test func coldStorageFoldersFillByCapacityAndTheNextFolderTakesOver() throws {
    let sandbox = try MediaSandbox()
    let maker = try ArchiveMaker()
    let archives = try ["p", "q"].map { try maker.seal(randomBytes: 600_000, bookmark: $0) }
    #expect(try sandbox.reel("init").status == 0)
    let capacity = archives.map(\.size).max()! + 4096
    for name in ["A", "B"] {
      let labeled = try sandbox.reel(
        "media", "label", "dir:\(sandbox.root)/\(name)", "--name", name, "--capacity", "\(capacity)")
      #expect(labeled.status == 0, "\(labeled.output)")
    }
    let export = try sandbox.reel(
      "export", archives[0].path, archives[1].path, "--to", "dir:\(sandbox.root)/A", "dir:\(sandbox.root)/B", "--json")
    #expect(export.status == 0, "\(export.output)")
    let report = try sandbox.json(export.stdout) as! [String: Any]
    let placed = (report["exported"] as! [[String: Any]]).map { "\($0["cartridge"]!) \($0["tape_file"]!)" }
    #expect(placed == ["A 2", "B 2"])
    #expect((report["abandoned"] as! [Any]).isEmpty, "nothing is cut off in a folder: it goes whole to the next")
    for name in ["A", "B"] {
      let fast = try sandbox.json(try sandbox.reel("media", "catalog", "dir:\(sandbox.root)/\(name)", "--json").stdout)
      let scanned = try sandbox.json(
        try sandbox.reel("media", "catalog", "dir:\(sandbox.root)/\(name)", "--scan", "--json").stdout)
      #expect((fast as! NSDictionary) == (scanned as! NSDictionary), "scan of \(name)")
    }
    let list = try sandbox.reel("media", "list")
    #expect(
      list.status == 0 && list.stdout.contains("media set default") && list.stdout.contains("A\t#1\tfull"),
      "\(list.output)")
  }

  @Test func labelIsPlainTextThatDdReads() throws {
    let sandbox = try MediaSandbox()
    #expect(
      try sandbox.reel(
        "media", "label", "vtape:" + sandbox.library, "--name", "MONDAY", "--media-set", "weekly", "--capacity", "8M"
      ).status == 0)
    let dd = try run(
      "/usr/bin/dd", ["if=" + sandbox.cartridge("MONDAY"), "bs=4096", "skip=1", "count=1", "status=none"])
    #expect(dd.status == 0)
    let text = dd.stdout
    #expect(text.hasPrefix("REEL MEDIA LABEL 1\n"))
    for line in ["label: MONDAY", "media-set: weekly", "sequence: 0", "data-block-size: 1048576", "mt -f /dev/nst0"] {
      #expect(text.contains(line), "label has \(line)")
    }
    #expect(text.utf8.count == 4096 && text.utf8.allSatisfy { $0 == 10 || (32..<127).contains($0) })
    // The cartridge file's own header is plain text too and says where the label is.
    let header = String(decoding: sandbox.bytes(sandbox.cartridge("MONDAY")).prefix(4092), as: UTF8.self)
    #expect(header.hasPrefix("REEL-VTAPE 1\ncapacity: 8388608\n") && header.contains("bs=4096 skip=1 count=1"))
  }

  @Test func afterLosingTheStoreAScanStillListsEveryArchiveWithItsTimeRange() throws {
    let sandbox = try MediaSandbox()
    let maker = try ArchiveMaker()
    let archives = try ["x", "y"].map { try maker.seal(randomBytes: 600_000, bookmark: $0) }
    #expect(try sandbox.reel("init").status == 0)
    let folder = sandbox.root + "/cold"
    #expect(
      try sandbox.reel("media", "label", "vtape:" + sandbox.library, "--name", "T1", "--capacity", "64M").status == 0)
    #expect(try sandbox.reel("media", "label", "dir:" + folder, "--name", "COLD1").status == 0)
    for media in ["vtape:" + sandbox.cartridge("T1"), "dir:" + folder] {
      let export = try sandbox.reel(
        "export", archives[0].path, archives[1].path, "--to", media, "--media-set", "s-\(media.prefix(3))")
      #expect(export.status == 0, "\(export.output)")
    }
    // Archives in the folder are plain files a person can check.
    let copied = try FileManager.default.contentsOfDirectory(atPath: folder + "/archives").sorted()
    #expect(
      copied
        == archives.enumerated().map {
          String(format: "%06d-", $0.offset + 2) + ($0.element.path as NSString).lastPathComponent
        })
    #expect(sandbox.digest(folder + "/archives/" + copied[1]) == sandbox.digest(archives[1].path))

    try FileManager.default.removeItem(atPath: sandbox.store)
    for media in ["vtape:" + sandbox.cartridge("T1"), "dir:" + folder] {
      let scan = try sandbox.reel("media", "catalog", media, "--scan", "--json")
      #expect(scan.status == 0, "\(scan.output)")
      let files = (try sandbox.json(scan.stdout) as! [String: Any])["files"] as! [[String: Any]]
      let found = files.compactMap { $0["archive"] as? [String: Any] }
      #expect(found.count == 2, "\(media)")
      for (entry, archive) in zip(found, archives) {
        #expect(entry["archiveID"] as? String == archive.manifest.archiveID)
        #expect(entry["fromTime"] as? String == archive.manifest.range.fromTime)
        #expect(entry["untilTime"] as? String == archive.manifest.range.untilTime)
      }
      let text = try sandbox.reel("media", "catalog", media, "--scan")
      #expect(text.stdout.contains(archives[1].manifest.range.untilTime))
    }
    // A folder that lost its catalog.json but holds archives says so instead of reading as empty.
    try FileManager.default.removeItem(atPath: folder + "/catalog.json")
    let lost = try sandbox.reel("media", "catalog", "dir:" + folder)
    #expect(lost.status == 65, "\(lost.output)")
    #expect(
      lost.stderr.contains("holds archives but no catalog.json") && lost.stderr.contains("--scan"), "\(lost.output)")
    // A new store learns the media from a scan and can plan a restore again.
    #expect(try sandbox.reel("init").status == 0)
    #expect(try sandbox.reel("media", "catalog", "vtape:" + sandbox.cartridge("T1"), "--scan").status == 0)
    let needed = try sandbox.reel("media", "needed", "x", "--volume", "disk")
    #expect(needed.status == 0 && needed.stdout.contains("T1 (file 2)"), "\(needed.output)")
  }
}

@Suite struct MediaBadInputTests {
  @Test func unlabeledOrForeignSetOrWriteProtectedCartridgesAreRefusedAndKeptIntact() throws {
    let sandbox = try MediaSandbox()
    let maker = try ArchiveMaker()
    let archive = try maker.seal(randomBytes: 300_000, bookmark: "p")
    #expect(try sandbox.reel("init").status == 0)

    let blank = sandbox.cartridge("BLANK")
    try VirtualTapeDrive.create(path: blank, capacity: 8 << 20)
    let unlabeled = try sandbox.reel("export", archive.path, "--to", "vtape:" + blank)
    #expect(unlabeled.status == 66 && unlabeled.stderr.contains("is not labeled"), "\(unlabeled.output)")
    #expect(sandbox.bytes(blank).count == Int(VirtualTapeDrive.headerSize))

    let other = sandbox.root + "/other.vtape"
    #expect(
      try sandbox.reel("media", "label", "vtape:" + other, "--name", "O1", "--media-set", "monthly", "--capacity", "8M")
        .status == 0)
    let before = sandbox.digest(other)
    let foreignSet = try sandbox.reel("export", archive.path, "--to", "vtape:" + other, "--media-set", "weekly")
    #expect(
      foreignSet.status == 66 && foreignSet.stderr.contains("belongs to media set \"monthly\""), "\(foreignSet.output)")
    #expect(sandbox.digest(other) == before)

    let protectedPath = sandbox.root + "/protected.vtape"
    #expect(
      try sandbox.reel("media", "label", "vtape:" + protectedPath, "--name", "P1", "--capacity", "8M").status == 0)
    try VirtualTapeDrive.setWriteProtected(path: protectedPath, true)
    let protectedBytes = sandbox.digest(protectedPath)
    let refused = try sandbox.reel("export", archive.path, "--to", "vtape:" + protectedPath)
    #expect(refused.status != 0 && refused.stderr.contains("write-protected"), "\(refused.output)")
    #expect(sandbox.digest(protectedPath) == protectedBytes)
  }

  @Test func relabelingACartridgeWithArchivesNeedsForce() throws {
    let sandbox = try MediaSandbox()
    let maker = try ArchiveMaker()
    let archive = try maker.seal(randomBytes: 300_000, bookmark: "q")
    #expect(try sandbox.reel("init").status == 0)
    let path = sandbox.cartridge("K1")
    #expect(
      try sandbox.reel("media", "label", "vtape:" + sandbox.library, "--name", "K1", "--capacity", "8M").status == 0)
    #expect(try sandbox.reel("export", archive.path, "--to", "vtape:" + path).status == 0)
    let before = sandbox.digest(path)
    let refused = try sandbox.reel("media", "label", "vtape:" + path, "--name", "K2")
    #expect(
      refused.status == 73 && refused.stderr.contains("holds 1 archive(s)") && refused.stderr.contains("--force"),
      "\(refused.output)")
    #expect(sandbox.digest(path) == before)
    let store = try Store.open(StoreLayout(root: sandbox.store)).catalog
    #expect(try store.verifiedCopyCount(archiveID: archive.manifest.archiveID) == 1)
    let forced = try sandbox.reel("media", "label", "vtape:" + path, "--name", "K2", "--force")
    #expect(forced.status == 0, "\(forced.output)")
    #expect(try store.verifiedCopyCount(archiveID: archive.manifest.archiveID) == 0, "the erased copy no longer counts")

    // A folder holding someone else's files is not taken either.
    let folder = sandbox.root + "/photos"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    _ = FileManager.default.createFile(atPath: folder + "/holiday.jpg", contents: Data("keep".utf8))
    let taken = try sandbox.reel("media", "label", "dir:" + folder, "--name", "D1")
    #expect(taken.status == 73 && taken.stderr.contains("not a Reel label"), "\(taken.output)")
    #expect(FileManager.default.contents(atPath: folder + "/holiday.jpg") == Data("keep".utf8))
  }

  @Test func aTapeFileThatIsNotAReelArchiveIsNamed() throws {
    let sandbox = try MediaSandbox()
    #expect(try sandbox.reel("init").status == 0)
    // Input that is not an archive is refused before anything is written.
    let notArchive = sandbox.root + "/notes.reel.tar"
    _ = FileManager.default.createFile(atPath: notArchive, contents: Data(repeating: 65, count: 10_000))
    let path = sandbox.cartridge("F1")
    #expect(
      try sandbox.reel("media", "label", "vtape:" + sandbox.library, "--name", "F1", "--capacity", "8M").status == 0)
    let before = sandbox.digest(path)
    let refused = try sandbox.reel("export", notArchive, "--to", "vtape:" + path)
    #expect(refused.status == 65 && refused.stderr.contains("notes.reel.tar"), "\(refused.output)")
    #expect(sandbox.digest(path) == before)

    // A plain tar written onto the cartridge by hand, after the label.
    let folder = sandbox.root + "/plain"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    _ = FileManager.default.createFile(atPath: folder + "/hello.txt", contents: Data("hello".utf8))
    #expect(
      try run("/usr/bin/tar", ["-cf", sandbox.root + "/plain.tar", "-C", folder, "hello.txt"]).status == 0)
    var tar = sandbox.bytes(sandbox.root + "/plain.tar")
    tar += [UInt8](repeating: 0, count: (1 << 20) - tar.count % (1 << 20))
    do {
      let drive = try VirtualTapeDrive(path: path)
      try drive.seekEndOfData()
      try drive.setBlockSize(1 << 20)
      _ = try tar.withUnsafeBytes { try drive.write($0) }
      try drive.writeFilemark()
    }

    let fast = try sandbox.reel("media", "catalog", "vtape:" + path)
    #expect(fast.status == 65 && fast.stderr.contains("--scan"), "\(fast.output)")
    let scan = try sandbox.reel("media", "catalog", "vtape:" + path, "--scan")
    #expect(scan.status == 65, "\(scan.output)")
    #expect(scan.stdout.contains("1\tforeign") && scan.stderr.contains("not Reel's"), "\(scan.output)")
  }

  @Test func aDrivePathThatIsNotATapeIsRefused() throws {
    let sandbox = try MediaSandbox()
    let regular = sandbox.root + "/file.bin"
    _ = FileManager.default.createFile(atPath: regular, contents: Data(repeating: 1, count: 4096))
    for path in ["/dev/null", regular] {
      let result = try sandbox.reel("media", "catalog", "tape:" + path)
      #expect(result.status == 64 && result.stderr.contains("is not a tape drive"), "\(result.output)")
    }
    let intact = sandbox.bytes(regular) == [UInt8](repeating: 1, count: 4096)
    #expect(intact)
    let rewinding = try sandbox.reel("media", "catalog", "tape:/dev/st0")
    #expect(rewinding.status == 64 && rewinding.stderr.contains("/dev/nst0"), "\(rewinding.output)")
    let unknown = try sandbox.reel("media", "catalog", "floppy:/dev/fd0")
    #expect(unknown.status == 64 && unknown.stderr.contains("dir:PATH"), "\(unknown.output)")
  }
}

@Suite struct RehydrateFromMediaTests {
  @Test func aCartridgeOfAnotherSetIsNamedBeforeAnythingIsRead() throws {
    let sandbox = try MediaSandbox()
    let maker = try ArchiveMaker()
    let archive = try maker.seal(randomBytes: 300_000, bookmark: "a")
    #expect(try sandbox.reel("init").status == 0)
    for (name, set) in [("W1", "weekly"), ("M1", "monthly")] {
      #expect(
        try sandbox.reel("media", "label", "vtape:" + sandbox.library, "--name", name, "--media-set", set).status == 0)
    }
    #expect(
      try sandbox.reel("export", archive.path, "--to", "vtape:" + sandbox.cartridge("W1"), "--media-set", "weekly")
        .status == 0)
    let target = sandbox.root + "/rehydrated"
    let mixed = try run(
      reelExecutable,
      ["rehydrate", "--from", "vtape:" + sandbox.library, "--key", maker.keyPath, "--store", target],
      environment: ["REEL_STORE": target, "REEL_PASSPHRASE": ArchiveMaker.passphrase])
    #expect(mixed.status == 64, "\(mixed.output)")
    #expect(mixed.stderr.contains("M1") && mixed.stderr.contains("monthly"), "\(mixed.output)")
    #expect(!FileManager.default.fileExists(atPath: target + "/volumes/disk"))
    let one = try run(
      reelExecutable,
      ["rehydrate", "--from", "vtape:" + sandbox.cartridge("W1"), "--key", maker.keyPath, "--store", target],
      environment: ["REEL_STORE": target, "REEL_PASSPHRASE": ArchiveMaker.passphrase])
    #expect(one.status == 0, "\(one.output)")
  }
}

extension RehydrateFromMediaTests {
  /// A labeled cold-storage folder is media like a cartridge: a store rehydrated from it
  /// records its archives as copies in that folder, at the folder's address.
  @Test func aStoreRehydratedFromAColdStorageFolderRecordsItsCopiesThere() throws {
    let sandbox = try MediaSandbox()
    let maker = try ArchiveMaker()
    let archives = try ["a", "b"].map { try maker.seal(randomBytes: 200_000, bookmark: $0) }
    #expect(try sandbox.reel("init").status == 0)
    let folder = sandbox.root + "/cold"
    #expect(try sandbox.reel("media", "label", "dir:" + folder, "--name", "F1").status == 0)
    let export = try sandbox.reel(
      "export", archives[0].path, archives[1].path, "--to", "dir:" + folder, "--media-set", "cold")
    #expect(export.status == 0, "\(export.output)")
    let exported = try Store.open(StoreLayout(root: sandbox.store)).catalog.archiveCopies()
    #expect(exported.count == 2)

    let target = sandbox.root + "/rehydrated"
    let rehydrated = try run(
      reelExecutable, ["rehydrate", "--from", "dir:" + folder, "--key", maker.keyPath, "--store", target],
      environment: ["REEL_STORE": target, "REEL_PASSPHRASE": ArchiveMaker.passphrase])
    #expect(rehydrated.status == 0, "\(rehydrated.output)")
    let store = try Store.open(StoreLayout(root: target))
    func identity(_ copy: ArchiveCopy) -> String {
      "\(copy.archiveID) \(copy.mediaSet)/\(copy.mediaSetID) \(copy.cartridgeID) \(copy.tapeFile) \(copy.size) \(copy.sha256)"
    }
    #expect(try store.catalog.archiveCopies().map(identity).sorted() == exported.map(identity).sorted())
    let cartridges = try store.catalog.cartridges()
    #expect(
      cartridges.map { "\($0.label) \($0.mediaSet ?? "-") \($0.address)" } == [
        "F1 cold dir:\((folder as NSString).standardizingPath)"
      ])
  }

  /// Cartridges loaded one at a time, newest first: archives that cannot be imported yet
  /// are set aside in the store, the missing ones are named with the cartridge that holds
  /// them, and the last cartridge completes the store.
  @Test func cartridgesLoadedOneAtATimeInAnyOrderCompleteTheStore() throws {
    let sandbox = try MediaSandbox()
    let maker = try ArchiveMaker()
    _ = try sandbox.exportChainToThreeCartridges(maker)

    let target = sandbox.root + "/rehydrated"
    func load(_ cartridge: String) throws -> CommandResult {
      try run(
        reelExecutable,
        ["rehydrate", "--from", "vtape:" + sandbox.cartridge(cartridge), "--key", maker.keyPath, "--store", target],
        environment: ["REEL_STORE": target, "REEL_PASSPHRASE": ArchiveMaker.passphrase])
    }
    let third = try load("C3")
    #expect(third.status == 3, "\(third.output)")
    #expect(third.stdout.contains("MISSING") && third.stdout.contains("it is on cartridge C2"), "\(third.stdout)")
    #expect(third.stdout.contains("set aside"), "\(third.stdout)")
    let second = try load("C2")
    #expect(second.status == 3, "\(second.output)")
    let first = try load("C1")
    #expect(first.status == 0, "\(first.output)")
    #expect(first.stdout.contains("3 archive(s) imported"), "\(first.stdout)")
    let incoming = (try? FileManager.default.contentsOfDirectory(atPath: target + "/incoming")) ?? []
    #expect(incoming.isEmpty, "set-aside copies are removed once imported: \(incoming)")
    // Archives set aside and imported later still count as the copies they were read from.
    let exported = try Store.open(StoreLayout(root: sandbox.store)).catalog.archiveCopies()
    let known = try Store.open(StoreLayout(root: target)).catalog.archiveCopies()
    #expect(
      known.map { "\($0.archiveID) \($0.cartridgeLabel) \($0.tapeFile) \($0.sha256)" }.sorted()
        == exported.map { "\($0.archiveID) \($0.cartridgeLabel) \($0.tapeFile) \($0.sha256)" }.sorted())
    #expect(Set(known.map(\.cartridgeLabel)) == ["C1", "C2", "C3"])
    let image = sandbox.root + "/restored.img"
    let restored = try run(
      reelExecutable, ["restore", "disk", "--at", "latest", "--output", image],
      environment: ["REEL_STORE": target])
    #expect(restored.status == 0, "\(restored.output)")
    #expect(sandbox.digest(image) == SHA256Digest.hash(maker.fixture.model).hex)
  }
}

@Suite struct MediaLabelCheckTests {
  /// A mistyped library folder must not turn into a cartridge file of that name, and a
  /// missing cold-storage folder is called missing, not unlabeled.
  @Test func missingFoldersAreNamedAndNothingIsCreated() throws {
    let sandbox = try MediaSandbox()
    #expect(try sandbox.reel("init").status == 0)
    let missing = sandbox.root + "/no-such-library"
    let label = try sandbox.reel("media", "label", "vtape:" + missing, "--name", "L1")
    #expect(label.status == 66, "\(label.output)")
    #expect(label.stderr.contains("\(missing) does not exist") && label.stderr.contains("mkdir -p"), "\(label.output)")
    #expect(!FileManager.default.fileExists(atPath: missing))

    let inMissing = sandbox.root + "/no-such-folder/L2.vtape"
    let nested = try sandbox.reel("media", "label", "vtape:" + inMissing, "--name", "L2")
    #expect(nested.status == 66 && nested.stderr.contains("/no-such-folder does not exist"), "\(nested.output)")
    #expect(!FileManager.default.fileExists(atPath: sandbox.root + "/no-such-folder"))

    let maker = try ArchiveMaker()
    let archive = try maker.seal(randomBytes: 100_000, bookmark: "m")
    let gone = sandbox.root + "/no-such-dir"
    let export = try sandbox.reel("export", archive.path, "--to", "dir:" + gone)
    #expect(export.status == 66, "\(export.output)")
    #expect(export.stderr.contains("no-such-dir does not exist"), "\(export.output)")
    #expect(!export.stderr.contains("is not labeled"), "\(export.output)")
    #expect(!FileManager.default.fileExists(atPath: gone))
  }

  @Test func labelsAreUniqueWithinAMediaSet() throws {
    let sandbox = try MediaSandbox()
    #expect(try sandbox.reel("init").status == 0)
    let first = try sandbox.reel(
      "media", "label", "vtape:" + sandbox.library, "--name", "W1", "--media-set", "weekly", "--capacity", "8M")
    #expect(first.status == 0, "\(first.output)")

    let second = sandbox.root + "/second.vtape"
    for extra in [[], ["--force"]] {
      let clash = try run(
        reelExecutable,
        ["media", "label", "vtape:" + second, "--name", "W1", "--media-set", "weekly", "--capacity", "8M"] + extra,
        environment: ["REEL_STORE": sandbox.store])
      #expect(clash.status == 73, "\(clash.output)")
      #expect(clash.stderr.contains("media set \"weekly\" already has a cartridge labeled W1"), "\(clash.output)")
      #expect(!FileManager.default.fileExists(atPath: second), "nothing is created")
    }
    // A scratch cartridge may join any set, so it clashes too.
    let scratch = try sandbox.reel("media", "label", "vtape:" + second, "--name", "W1", "--capacity", "8M")
    #expect(scratch.status == 73, "\(scratch.output)")
    // Another set may use the name, and the same cartridge may be relabeled with it.
    let monthly = try sandbox.reel(
      "media", "label", "vtape:" + second, "--name", "W1", "--media-set", "monthly", "--capacity", "8M")
    #expect(monthly.status == 0, "\(monthly.output)")
    let again = try sandbox.reel(
      "media", "label", "vtape:" + sandbox.cartridge("W1"), "--name", "W1", "--media-set", "weekly", "--force")
    #expect(again.status == 0, "\(again.output)")
    let list = try sandbox.reel("media", "list", "--json")
    #expect(list.stdout.components(separatedBy: "\"W1\"").count - 1 == 2, "\(list.stdout)")
  }
}
