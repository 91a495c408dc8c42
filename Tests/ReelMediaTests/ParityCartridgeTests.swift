import Foundation
import ReelArchive
import ReelCodec
import ReelCore
import ReelStore
import ReelTestSupport
import Testing

@testable import ReelMedia

/// RAIT: a media set of four data cartridges and one parity cartridge (docs/tape-format.md,
/// "Parity cartridges").
@Suite struct ParityCartridgeTests {
  /// Four archives of one chain, one per data cartridge C1–C4 of media set "weekly", and
  /// the parity cartridge P1 that export writes over them; the model's digest at each bookmark.
  final class ParitySet {
    let sandbox: MediaSandbox
    let maker: ArchiveMaker
    var archives: [SealedArchive] = []
    var digests: [String: String] = [:]
    let labels = ["C1", "C2", "C3", "C4"]

    init() throws {
      sandbox = try MediaSandbox()
      maker = try ArchiveMaker()
      for bookmark in ["a", "b", "c", "d"] {
        archives.append(try maker.seal(randomBytes: 1_200_000, bookmark: bookmark))
        digests[bookmark] = SHA256Digest.hash(maker.fixture.model).hex
      }
      #expect(try sandbox.reel("init").status == 0)
      let capacity = archives.map(\.size).max()! + (3 << 20)
      for name in labels {
        #expect(
          try sandbox.reel("media", "label", "vtape:" + sandbox.library, "--name", name, "--capacity", "\(capacity)")
            .status == 0)
      }
      let parity = try sandbox.reel(
        "media", "label", "vtape:" + sandbox.library, "--name", "P1", "--media-set", "weekly", "--parity-group", "4",
        "--capacity", "\(2 * capacity)")
      #expect(parity.status == 0 && parity.stdout.contains("a parity cartridge for 4"), "\(parity.output)")
      let export = try run(
        reelExecutable,
        ["export"] + archives.map(\.path) + ["--to", "vtape:" + sandbox.library, "--media-set", "weekly"],
        environment: ["REEL_STORE": sandbox.store])
      #expect(export.status == 0, "\(export.output)")
      #expect(export.stdout.contains("parity of group 1 (C1, C2, C3, C4) written to P1"), "\(export.stdout)")
      #expect(export.stdout.contains("C4 file 2, verified"), "every data cartridge holds an archive: \(export.stdout)")
    }

    func scan(_ path: String) throws -> NSDictionary {
      let scanned = try sandbox.reel("media", "catalog", "vtape:" + path, "--scan", "--json")
      #expect(scanned.status == 0, "\(scanned.output)")
      return try sandbox.json(scanned.stdout) as! NSDictionary
    }

    /// The tape of a vtape file: everything after its header (capacity lives in the header).
    func tape(_ path: String) -> String { SHA256Digest.hash(Array(sandbox.bytes(path).dropFirst(4092))).hex }

    func rehydrate(into target: String) throws -> CommandResult {
      try run(
        reelExecutable,
        ["rehydrate", "--from", "vtape:" + sandbox.library, "--key", maker.keyPath, "--store", target],
        environment: ["REEL_STORE": target, "REEL_PASSPHRASE": ArchiveMaker.passphrase])
    }

    func restoredDigest(_ point: String, from store: String) throws -> String {
      let image = store + "-\(point).img"
      let restored = try run(
        reelExecutable, ["restore", maker.fixture.name, "--at", point, "--output", image],
        environment: ["REEL_STORE": store])
      #expect(restored.status == 0, "restore at \(point): \(restored.output)")
      defer { try? FileManager.default.removeItem(atPath: image) }
      return sandbox.digest(image)
    }

    /// Runs `body` with cartridge files moved out of the library, then puts them back.
    func without<T>(_ names: [String], _ body: () throws -> T) throws -> T {
      for name in names {
        try FileManager.default.moveItem(atPath: sandbox.cartridge(name), toPath: sandbox.root + "/\(name).away")
      }
      defer {
        for name in names {
          try? FileManager.default.removeItem(atPath: sandbox.cartridge(name))
          try? FileManager.default.moveItem(atPath: sandbox.root + "/\(name).away", toPath: sandbox.cartridge(name))
        }
      }
      return try body()
    }
  }

  @Test func anyOneLostCartridgeIsRebuiltFromParityForRehydrateAndOntoANewCartridge() throws {
    let set = try ParitySet()
    let sandbox = set.sandbox
    for lost in set.labels {
      let target = sandbox.root + "/rehydrated-\(lost)"
      let result = try set.without([lost]) { try set.rehydrate(into: target) }
      #expect(result.status == 0, "without \(lost): \(result.output)")
      #expect(
        result.stdout.contains(
          "PARITY    cartridge \(lost) of media set weekly is missing or unreadable: rebuilt from parity cartridge P1"),
        "\(result.stdout)")
      #expect(result.stdout.contains("4 archive(s) imported"), "\(result.stdout)")
      for (bookmark, digest) in set.digests {
        #expect(try set.restoredDigest(bookmark, from: target) == digest, "bookmark \(bookmark) without \(lost)")
      }
      try? FileManager.default.removeItem(atPath: target)
    }

    // `media rebuild` writes the lost cartridge again: the same tape, so the same scan.
    let original = try set.scan(sandbox.cartridge("C2"))
    let originalTape = set.tape(sandbox.cartridge("C2"))
    try set.without(["C2"]) {
      let rebuilt = try sandbox.reel(
        "media", "rebuild", "--set", "weekly", "--missing", "C2", "--to", "vtape:" + sandbox.library)
      #expect(rebuilt.status == 0, "\(rebuilt.output)")
      #expect(rebuilt.stdout.contains("Rebuilt C2 on vtape:\(sandbox.cartridge("C2"))"), "\(rebuilt.stdout)")
      #expect(try set.scan(sandbox.cartridge("C2")) == original)
      #expect(set.tape(sandbox.cartridge("C2")) == originalTape)
    }

    // The store shows the parity cartridge and what it stands in for.
    let list = try sandbox.reel("media", "list")
    #expect(list.stdout.contains("P1\tparity\tgroup 1\tcovers C1, C2, C3, C4"), "\(list.stdout)")
    let needed = try sandbox.reel("media", "needed", "latest", "--volume", set.maker.fixture.name)
    #expect(
      needed.stdout.contains("parity cartridge P1 can stand in for any one of C1, C2, C3, C4"), "\(needed.stdout)")
    let catalog = try sandbox.reel("media", "catalog", "vtape:" + sandbox.cartridge("P1"), "--scan")
    #expect(catalog.status == 0 && catalog.stdout.contains("parity of group 1: C1, C2, C3, C4"), "\(catalog.output)")

    // A map read from media steers drives and sizes reads: out-of-range values are refused.
    let parity = try MediaAddress(parsing: "vtape:" + sandbox.cartridge("P1")).openOne() as! TapeCartridge
    guard case .labeled(let parityLabel) = try parity.readLabel() else { throw ReelError(.corrupt, "P1 has no label") }
    let map = try ParityCartridge.readMap(parity, label: parityLabel)
    #expect(try ParityMap.decode(map.json(), describing: "P1") == map)
    var hostile = [map, map, map, map, map]
    hostile[0].parityLength = 1 << 60
    hostile[1].members[0].files[1].offset += 1
    hostile[2].members[0].length = map.parityLength + 1
    hostile[3].members[1].index = 0
    hostile[4].members[0].files[0].blockSize = 1 << 30
    for (index, bad) in hostile.enumerated() {
      #expect(throws: ReelError.self, "hostile map \(index)") { try ParityMap.decode(bad.json(), describing: "P1") }
    }
  }

  @Test func twoLostCartridgesAForeignParityCartridgeAndDamagedParityAreRefusedByName() throws {
    let set = try ParitySet()
    let sandbox = set.sandbox
    let parity = sandbox.cartridge("P1")

    // Two of a group gone: one parity cartridge cannot stand in for both, and says which.
    try set.without(["C1", "C3"]) {
      let rebuilt = try sandbox.reel(
        "media", "rebuild", "--set", "weekly", "--missing", "C3", "--to", "vtape:" + sandbox.root + "/C3.vtape")
      #expect(rebuilt.status != 0 && rebuilt.stderr.contains("cartridges C3 and C1"), "\(rebuilt.output)")
      let target = sandbox.root + "/rehydrated"
      let result = try set.rehydrate(into: target)
      #expect(result.status != 0, "\(result.output)")
      #expect(result.stdout.contains("cartridges C1 and C3 of parity group 1"), "\(result.stdout)")
    }

    // A cartridge nothing of which reads (its tape zeroed: labels, catalogs, archives) is as
    // good as missing: parity stands in for it and everything restores, while the report
    // still names the unreadable cartridge (exit 3, docs/rehydrate.md).
    let third = sandbox.cartridge("C3")
    let intact = sandbox.bytes(third)
    var unreadable = intact
    for offset in 4092..<unreadable.count { unreadable[offset] = 0 }
    try Data(unreadable).write(to: URL(fileURLWithPath: third))
    let standIn = try set.rehydrate(into: sandbox.root + "/rehydrated-unreadable")
    #expect(
      standIn.stdout.contains("cartridge C3 of media set weekly is missing or unreadable: rebuilt"), "\(standIn.output)"
    )
    #expect(standIn.stdout.contains("4 archive(s) imported"), "\(standIn.stdout)")
    #expect(try set.restoredDigest("latest", from: sandbox.root + "/rehydrated-unreadable") == set.digests["d"])
    try Data(intact).write(to: URL(fileURLWithPath: third))

    // Damaged parity (a byte of its first stripe): the rebuilt file fails its SHA-256, and
    // nothing is said to be rebuilt.
    let saved = sandbox.bytes(parity)
    var damaged = saved
    damaged[8204 + 100] ^= 0xFF
    try Data(damaged).write(to: URL(fileURLWithPath: parity))
    try set.without(["C2"]) {
      let rebuilt = try sandbox.reel(
        "media", "rebuild", "--set", "weekly", "--missing", "C2", "--to", "vtape:" + sandbox.root + "/C2.vtape")
      #expect(rebuilt.status == 65 && rebuilt.stderr.contains("came out different"), "\(rebuilt.output)")
    }
    let scan = try sandbox.reel("media", "catalog", "vtape:" + parity, "--scan")
    #expect(scan.status != 0 && scan.stdout.contains("differs from the SHA-256"), "\(scan.output)")

    // Both copies of the map damaged: the parity cartridge is named as unusable.
    var mapless = saved
    let text = Array("reel-parity-map".utf8)
    var index = 0
    while let found = mapless[index...].firstRange(of: text) {
      mapless[found.lowerBound] = UInt8(ascii: "X")
      index = found.upperBound
    }
    try Data(mapless).write(to: URL(fileURLWithPath: parity))
    try set.without(["C2"]) {
      let rebuilt = try sandbox.reel(
        "media", "rebuild", "--set", "weekly", "--missing", "C2", "--to", "vtape:" + sandbox.root + "/C2b.vtape")
      #expect(rebuilt.status != 0 && rebuilt.stderr.contains("has no readable parity map"), "\(rebuilt.output)")
    }
    try Data(saved).write(to: URL(fileURLWithPath: parity))

    // A fifth cartridge starts group 2: exported, but without a parity cartridge for it
    // the export says so and fails; with one labeled, the same export writes its parity.
    let fifth = try set.maker.seal(randomBytes: 1_200_000, bookmark: "e")
    let capacity = set.archives.map(\.size).max()! + (3 << 20)
    #expect(
      try sandbox.reel("media", "label", "vtape:" + sandbox.library, "--name", "C5", "--capacity", "\(capacity)").status
        == 0)
    let unprotected = try sandbox.reel(
      "export", fifth.path, "--to", "vtape:" + sandbox.library, "--media-set", "weekly")
    #expect(unprotected.status == 66 && unprotected.stdout.contains("C5 file 2, verified"), "\(unprotected.output)")
    #expect(
      unprotected.stderr.contains("group 2: no parity cartridge for it among the targets"), "\(unprotected.stderr)")
    #expect(
      try sandbox.reel(
        "media", "label", "vtape:" + sandbox.library, "--name", "P2", "--media-set", "weekly", "--parity-group", "4",
        "--capacity", "\(2 * capacity)"
      ).status == 0)
    let again = try sandbox.reel("export", fifth.path, "--to", "vtape:" + sandbox.library, "--media-set", "weekly")
    #expect(again.status == 0 && again.stdout.contains("already on C5"), "\(again.output)")
    #expect(again.stdout.contains("parity of group 2 (C5) written to P2"), "\(again.stdout)")
    #expect(!again.stdout.contains("group 1"), "group 1's parity is current: \(again.stdout)")

    // The parity cartridge of another set named "weekly" (another set ID) stands in for nothing.
    let other = try MediaSandbox()
    #expect(try other.reel("init").status == 0)
    #expect(try other.reel("media", "label", "vtape:" + other.library, "--name", "D1").status == 0)
    #expect(
      try other.reel(
        "media", "label", "vtape:" + other.library, "--name", "P9", "--media-set", "weekly", "--parity-group", "4"
      ).status == 0)
    let export = try other.reel(
      "export", set.archives[0].path, "--to", "vtape:" + other.library, "--media-set", "weekly")
    #expect(export.status == 0 && export.stdout.contains("written to P9"), "\(export.output)")
    try FileManager.default.copyItem(atPath: other.cartridge("P9"), toPath: sandbox.cartridge("P9"))
    try set.without(["P1", "C2"]) {
      let rebuilt = try sandbox.reel(
        "media", "rebuild", "--set", "weekly", "--missing", "C2", "--to", "vtape:" + sandbox.root + "/C2c.vtape",
        "--from", "vtape:" + sandbox.library)
      #expect(rebuilt.status != 0 && rebuilt.stderr.contains("P9 belongs to another media set"), "\(rebuilt.output)")
    }
  }

  @Test func aParityLabelIsVersion2AndItsFieldsAreRangeChecked() throws {
    let label = MediaLabel(name: "P1", mediaSet: "weekly", parity: ParityRole(group: 3, of: 4))
    let text = label.text(forTape: true)
    #expect(text.hasPrefix("REEL MEDIA LABEL 2\n") && text.contains("role: parity\nparity-group: 3\nparity-of: 4"))
    #expect(try MediaLabel.parse(Array(text.utf8))?.parity == ParityRole(group: 3, of: 4))
    #expect(try MediaLabel.parse(Array(MediaLabel(name: "C1").text(forTape: true).utf8))?.parity == nil)
    for bad in ["parity-of: 0", "parity-of: 999", "parity-group: 0", "parity-group: x"] {
      let key = String(bad.prefix { $0 != ":" })
      let altered = text.split(separator: "\n", omittingEmptySubsequences: false).map {
        $0.hasPrefix(key + ":") ? Substring(bad) : $0
      }.joined(separator: "\n")
      #expect(throws: ReelError.self, "\(bad)") { try MediaLabel.parse(Array(altered.utf8)) }
    }
  }
}
