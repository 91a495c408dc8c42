import Foundation
import ReelArchive
import ReelCodec
import ReelCore
import ReelIO
import ReelTestSupport
import Testing

@testable import ReelMedia

/// Damage on media never hides data (issue 18): a damaged stretch of a cartridge costs only
/// what it covers, catalogs still list every file, and rehydrate repairs what the
/// archives' parity allows, says what it repaired, and never exits 0 after damage.
@Suite(.serialized) struct MediaDamageTests {
  /// Two archives of one chain, each with a bookmark, exported to cartridge C1; the state
  /// of the volume at each bookmark.
  struct Exported {
    let sandbox: MediaSandbox
    let maker: ArchiveMaker
    let archives: [SealedArchive]
    let states: [String: String]
    var cartridge: String { sandbox.cartridge("C1") }

    init() throws {
      sandbox = try MediaSandbox()
      maker = try ArchiveMaker()
      var archives: [SealedArchive] = []
      var states: [String: String] = [:]
      for bookmark in ["first", "second"] {
        archives.append(try maker.seal(randomBytes: 3_000_000, bookmark: bookmark))
        states[bookmark] = SHA256Digest.hash(maker.fixture.model).hex
      }
      self.archives = archives
      self.states = states
      #expect(try sandbox.reel("init").status == 0)
      #expect(
        try sandbox.reel("media", "label", "vtape:" + sandbox.library, "--name", "C1", "--capacity", "64M").status == 0)
      let export = try sandbox.reel(
        "export", archives[0].path, archives[1].path, "--to", "vtape:" + sandbox.library, "--media-set", "weekly")
      #expect(export.status == 0, "\(export.output)")
    }

    /// Where archive `index` starts in the cartridge file. Archives sealed in the same second
    /// can share their first tar header, so each is looked for after the one before it.
    func start(of index: Int) -> UInt64 {
      let tape = Data(sandbox.bytes(cartridge))
      var found = tape.startIndex
      var from = tape.startIndex
      for archive in archives[0...index] {
        let head = Data(sandbox.bytes(archive.path).prefix(4096))
        found = tape.range(of: head, in: from..<tape.endIndex)!.lowerBound
        from = found + 1
      }
      return UInt64(found)
    }

    func damage(at offset: UInt64, _ bytes: [UInt8]) throws {
      try PosixFile(path: cartridge, flags: O_WRONLY).write(bytes, at: offset)
    }

    func rehydrate() throws -> (result: CommandResult, store: String) {
      let target = sandbox.root + "/rehydrated-\(UUID().uuidString.prefix(8))"
      let result = try run(
        reelExecutable,
        ["rehydrate", "--from", "vtape:" + sandbox.library, "--key", maker.keyPath, "--store", target],
        environment: ["REEL_STORE": target, "REEL_PASSPHRASE": ArchiveMaker.passphrase])
      return (result, target)
    }

    /// Every bookmark of the rehydrated store restores to the state it marked.
    func expectEveryBookmarkRestores(from store: String) throws {
      try sandbox.expectEveryBookmarkRestores(states, from: store)
    }
  }

  /// The issue's own scenario: 40 flipped bytes and one zeroed 1 MiB tape block in the data
  /// region of a cartridge; then a damaged record framing (a media error); then damage
  /// beyond what parity can repair. The archives stay listed (fast and scanned catalogs),
  /// parity repairs what it can on the way in, the report says so, and exit is 3.
  @Test func damageInTheDataRegionIsRepairedListedAndNeverExitZero() throws {
    let exported = try Exported()
    let pristine = exported.sandbox.root + "/pristine.vtape"
    try FileManager.default.copyItem(atPath: exported.cartridge, toPath: pristine)
    func reset() throws {
      try FileManager.default.removeItem(atPath: exported.cartridge)
      try FileManager.default.copyItem(atPath: pristine, toPath: exported.cartridge)
    }
    let start = exported.start(of: 0)
    let second = exported.start(of: 1)
    let record = UInt64((1 << 20) + 8)
    // 40 bytes flipped over a 1 MiB stretch of the second archive's data (the framing
    // stays intact: they read back altered), and the first archive's second tape block zeroed.
    let tape = exported.sandbox.bytes(exported.cartridge)
    for index in 0..<40 {
      let offset = UInt64(index) * 26_000 + 300
      let original = tape[Int(second + record + offset)]
      try exported.damage(at: second + record + offset, [original ^ 0x20])
    }
    try exported.damage(at: start + record, [UInt8](repeating: 0, count: 1 << 20))

    let fast = try exported.sandbox.reel("media", "catalog", "vtape:" + exported.cartridge, "--json")
    #expect(fast.status == 0, "\(fast.output)")
    let listed = ((try exported.sandbox.json(fast.stdout) as! [String: Any])["files"] as! [[String: Any]]).fileSummary
    #expect(listed.count == 5 && listed[2].hasPrefix("2 archive complete"), "\(listed)")
    var scan = try exported.sandbox.reel("media", "catalog", "vtape:" + exported.cartridge, "--scan", "--json")
    var scanned = ((try exported.sandbox.json(scan.stdout) as! [String: Any])["files"] as! [[String: Any]])
    #expect(
      scanned.fileSummary.map { String($0.prefix(18)) }
        == ["0 label - -", "1 set-catalogs - -", "2 archive damaged ", "3 archive damaged ", "4 catalog - -"],
      "\(scanned.fileSummary)")
    var (rehydrated, store) = try exported.rehydrate()
    #expect(rehydrated.status == 3, "damage is never exit 0: \(rehydrated.output)")
    #expect(
      rehydrated.stdout.contains("REPAIRED") && rehydrated.stdout.contains("2 archive(s) imported"),
      "\(rehydrated.output)")
    try exported.expectEveryBookmarkRestores(from: store)
    // Each archive is recorded by the SHA-256 of the archive as sealed: for the repaired
    // ones, the repair's hash of the copy it wrote stands for the import's.
    let recorded = try run(
      try tool("sqlite3"), [store + "/catalog.sqlite", "SELECT sha256 FROM sealed_archive ORDER BY chain_index"])
    #expect(
      recorded.stdout.split(separator: "\n").map(String.init)
        == exported.archives.map { SHA256Digest.hash(exported.sandbox.bytes($0.path)).hex }, "\(recorded.output)")

    // A record whose framing is damaged: the drive cannot read it and goes on after it.
    try reset()
    try exported.damage(at: start + 2 * record - 6, [0x77])
    scan = try exported.sandbox.reel("media", "catalog", "vtape:" + exported.cartridge, "--scan", "--json")
    scanned = ((try exported.sandbox.json(scan.stdout) as! [String: Any])["files"] as! [[String: Any]])
    #expect(scanned.count == 5, "every file after the damage is listed: \(scanned.fileSummary)")
    #expect((scanned[2]["note"] as? String)?.contains("(1 MiB) unreadable") == true, "\(scanned[2])")
    (rehydrated, store) = try exported.rehydrate()
    #expect(rehydrated.status == 3, "\(rehydrated.output)")
    #expect(rehydrated.stdout.contains("REPAIRED") && rehydrated.stdout.contains("unreadable"), "\(rehydrated.output)")
    try exported.expectEveryBookmarkRestores(from: store)

    // The start damaged (the label's framing): the catalog at the end says whose it is.
    try reset()
    try exported.damage(at: VirtualTapeDrive.headerSize + 4 + 4096 + 1, [0x99])
    do {
      let supply = try MediaArchiveSupply(.virtualTape(exported.cartridge))
      #expect(try supply.offers().count == 2)
      #expect(supply.mediaProblems().contains { $0.contains("the catalog at its end says it is C1") })
    }
    // The end damaged (the catalog's last length word): a scan finds both archives.
    try reset()
    let size = UInt64(exported.sandbox.bytes(exported.cartridge).count)
    try exported.damage(at: size - 7, [0x99])
    do {
      let supply = try MediaArchiveSupply(.virtualTape(exported.cartridge))
      #expect(try supply.offers().map(\.archiveID) == exported.archives.map(\.manifest.archiveID))
    }

    // Beyond the margin (three records of the second archive zeroed): it is named
    // damaged, with what its parity could not rebuild, and the first bookmark still restores.
    try reset()
    try exported.damage(at: second + record, [UInt8](repeating: 0, count: Int(2 * record)))
    (rehydrated, store) = try exported.rehydrate()
    #expect(rehydrated.status == 3, "\(rehydrated.output)")
    #expect(
      rehydrated.stdout.contains("DAMAGED") && rehydrated.stdout.contains("1 archive(s) imported"),
      "\(rehydrated.output)")
    let image = exported.sandbox.root + "/first.img"
    let restored = try run(
      reelExecutable, ["restore", "disk", "--at", "first", "--output", image], environment: ["REEL_STORE": store])
    #expect(restored.status == 0 && exported.sandbox.digest(image) == exported.states["first"], "\(restored.output)")
  }

  /// Archive files in a folder (`dir:`), each damaged its own way within its parity's
  /// margin: dozens of random byte flips (in an archive sealed with more parity), a zeroed
  /// 1 MiB block, a truncated tail. Rehydrate repairs each on the way in, every bookmark
  /// restores bit-exact, and the exit is 3 because there was damage.
  @Test func damagedArchiveFilesAreRepairedOnTheWayIn() throws {
    let sandbox = try MediaSandbox()
    let maker = try ArchiveMaker()
    var states: [String: String] = [:]
    let flipped = try maker.seal(randomBytes: 2_500_000, bookmark: "flipped", parity: 50)
    states["flipped"] = SHA256Digest.hash(maker.fixture.model).hex
    let zeroed = try maker.seal(randomBytes: 2_500_000, bookmark: "zeroed")
    states["zeroed"] = SHA256Digest.hash(maker.fixture.model).hex
    let truncated = try maker.seal(randomBytes: 2_500_000, bookmark: "truncated")
    states["truncated"] = SHA256Digest.hash(maker.fixture.model).hex
    let folder = sandbox.root + "/archives"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    func copy(_ archive: SealedArchive) throws -> String {
      let path = folder + "/" + (archive.path as NSString).lastPathComponent
      try FileManager.default.copyItem(atPath: archive.path, toPath: path)
      return path
    }

    // A fixed seed: 30 random flips may put three in one stripe of two parity rows, which
    // no parity could repair; this test is about rehydrate, ArchiveParityTests about margins.
    let seed: UInt64 = 18
    print("MediaDamageTests flips: seed \(seed)")
    var rng = SplitMix(seed: seed)
    let flips = try PosixFile(path: try copy(flipped), flags: O_RDWR)
    for _ in 0..<30 {
      let offset = rng.next() % flipped.size
      let byte = try flips.read(at: offset, count: 1)[0]
      try flips.write([byte ^ UInt8(1 + rng.next() % 255)], at: offset)
    }
    try PosixFile(path: try copy(zeroed), flags: O_WRONLY).write([UInt8](repeating: 0, count: 1 << 20), at: 1 << 20)
    // Cut 10,000 bytes before the last one that is not tar padding: the end of PARITY.
    let end = sandbox.bytes(truncated.path).lastIndex { $0 != 0 }!
    try PosixFile(path: try copy(truncated), flags: O_WRONLY).truncate(to: UInt64(end - 10_000))

    let target = sandbox.root + "/rehydrated"
    let rehydrated = try run(
      reelExecutable, ["rehydrate", "--from", folder, "--key", maker.keyPath, "--store", target],
      environment: ["REEL_STORE": target, "REEL_PASSPHRASE": ArchiveMaker.passphrase])
    #expect(rehydrated.status == 3, "\(rehydrated.output)")
    #expect(rehydrated.stdout.contains("3 archive(s) imported"), "seed \(seed): \(rehydrated.output)")
    #expect(rehydrated.stdout.components(separatedBy: "REPAIRED").count == 4, "\(rehydrated.output)")
    try sandbox.expectEveryBookmarkRestores(states, from: target)
  }
}
