import Foundation
import ReelArchive
import ReelCodec
import ReelCore
import ReelIO
import ReelStore
import ReelTestSupport
import Testing

@testable import ReelMedia

/// Damage beyond what parity can repair (issue 18): rehydrate still imports every frame that
/// authenticates, up to the first seq that needs one that does not, names the exact seq and
/// time range lost, leaves out the archives that build on it, and exits 3.
@Suite(.serialized) struct UnrepairableArchiveTests {
  /// A chain of two archives of one volume. The second holds `groups` groups of four
  /// 256 KiB random writes, each group followed by a bookmark, sealed with pack layout 1
  /// (frames of about 1 MiB) so a burst of damage costs a few seqs, not the whole window.
  final class Chain: @unchecked Sendable {
    let maker: ArchiveMaker
    let first: SealedArchive
    let second: SealedArchive
    /// The seqs of the second archive's writes, in order.
    var writes: [Seq] = []
    /// Bookmark label → its seq, and the volume's SHA-256 there.
    var bookmarks: [(label: String, seq: Seq, digest: String)] = []
    /// The volume's SHA-256 after every seq of the second archive.
    var digests: [Seq: String] = [:]

    init(parity: Int, groups: Int = 7) throws {
      maker = try ArchiveMaker()
      first = try maker.seal(randomBytes: 512 << 10, bookmark: "start", parity: parity)
      let fixture = maker.fixture
      for group in 0..<groups {
        for index in 0..<4 {
          var data = [UInt8](repeating: 0, count: 256 << 10)
          for position in data.indices { data[position] = UInt8(truncatingIfNeeded: fixture.rng.next()) }
          let offset = UInt64((group * 4 + index) % 16) * UInt64(256 << 10)
          let seq = try fixture.append(.write(offset: offset, data: data)).seq
          writes.append(seq)
          digests[seq] = SHA256Digest.hash(fixture.model).hex
        }
        let label = "g\(group)"
        let seq = try fixture.append(.bookmark(label)).seq
        digests[seq] = SHA256Digest.hash(fixture.model).hex
        bookmarks.append((label, seq, digests[seq]!))
      }
      var request = SealRequest(
        volume: fixture.name, outputDirectory: fixture.root + "/archives", masterKeys: [maker.key])
      request.formatVersion = 1
      request.parityPercent = parity
      guard case .sealed(let archive) = try Sealer.seal(request, live: fixture.live) else {
        throw ReelError(.usage, "nothing sealed")
      }
      second = archive
    }

    /// The second archive's pack frames: where each starts in the file and its plaintext length.
    func frames() -> [(offset: Int, plaintext: Int)] {
      let bytes = [UInt8](FileManager.default.contents(atPath: second.path)!)
      func le32(_ at: Int) -> Int {
        Int(bytes[at]) | Int(bytes[at + 1]) << 8 | Int(bytes[at + 2]) << 16 | Int(bytes[at + 3]) << 24
      }
      var found: [(Int, Int)] = []
      var position = 0
      // The pack member's data starts at a tar block with frame 0 of member 1.
      while position + 32 <= bytes.count {
        if Array(bytes[position..<(position + 4)]) == Array("RFR1".utf8), bytes[position + 4] == 1,
          le32(position + 12) == 1
        {
          break
        }
        position += 512
      }
      while position + 32 <= bytes.count, Array(bytes[position..<(position + 4)]) == Array("RFR1".utf8),
        le32(position + 12) == 1
      {
        let plaintext = le32(position + 8)
        found.append((position, plaintext))
        position += 32 + plaintext + 16
      }
      return found
    }

    /// The first seq whose data lies in frame `frame`: counted from the frames before it,
    /// each a run of raw chunk records (56-byte header + one store block of random data).
    func firstSeq(inFrame frame: Int) -> Seq {
      let block = Int(maker.fixture.descriptor.storeBlockSize)
      let record = 56 + block
      let before = frames()[0..<frame].map(\.plaintext).reduce(0, +)
      #expect(before % record == 0, "the frames hold raw records of \(record) bytes")
      return writes[before / record / ((256 << 10) / block)]
    }

    /// A copy of the second archive (and the first) in a fresh folder, damaged by `damage`.
    func damagedFolder(in root: String, _ damage: (PosixFile) throws -> Void) throws -> String {
      let folder = root + "/archives-\(UUID().uuidString.prefix(8))"
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
      for archive in [first, second] {
        try FileManager.default.copyItem(
          atPath: archive.path, toPath: folder + "/" + (archive.path as NSString).lastPathComponent)
      }
      try damage(
        try PosixFile(path: folder + "/" + (second.path as NSString).lastPathComponent, flags: O_RDWR))
      return folder
    }

    /// Rehydrates in process into a new store; its report of the one volume.
    func rehydrate(from folder: String, root: String) throws -> (
      volume: RehydratedVolume, store: Store, report: RehydrateReport
    ) {
      let store = try Store.initialize(StoreLayout(root: root + "/store-\(UUID().uuidString.prefix(8))")).store
      let report = try Rehydrator.run(
        RehydrateRequest(supplies: [ArchiveFiles(path: folder)], masterKeys: [maker.key]), store: store)
      #expect(report.volumes.count == 1 && !report.clean)
      return (report.volumes[0], store, report)
    }

    /// Every point before `lost` reads back bit-exact; `lost` itself is refused, clearly.
    func expectWholeBefore(_ lost: Seq, in store: Store) throws {
      let live = LiveStore(store: store)
      for (label, seq, digest) in bookmarks where seq < lost {
        let view = try VolumeView(live: live, volume: maker.fixture.name, at: .bookmark(label))
        #expect(SHA256Digest.hash(try view.read(offset: 0, length: Int(view.size))).hex == digest, "bookmark \(label)")
      }
      if lost - 1 > second.manifest.range.fromSeq {
        let view = try VolumeView(live: live, volume: maker.fixture.name, at: .seq(lost - 1))
        #expect(SHA256Digest.hash(try view.read(offset: 0, length: Int(view.size))).hex == digests[lost - 1])
      }
      // A seq, a time and a bookmark in the lost range: refused, naming the loss.
      var inside: [Point] = [.seq(lost), .time(maker.fixture.times[lost]!)]
      if let bookmark = bookmarks.first(where: { $0.seq >= lost }) { inside.append(.bookmark(bookmark.label)) }
      for point in inside {
        do {
          _ = try VolumeView(live: live, volume: maker.fixture.name, at: point)
          Issue.record("\(point), in the lost range, was not refused")
        } catch let error as ReelError {
          #expect(error.message.contains("lost to damage"), "\(point): \(error.message)")
        }
      }
    }
  }

  /// Zeros over `count` bytes of the file from `offset`.
  static func zero(_ file: PosixFile, at offset: Int, count: Int) throws {
    try file.write([UInt8](repeating: 0, count: count), at: UInt64(offset))
  }

  /// A 3 MiB burst in the middle of an archive with 5 % parity (beyond its margin), in a
  /// `dir:` folder and on a vtape cartridge: the bookmarks before the loss restore bit-exact,
  /// the seq the loss starts at is refused, and the report (text and JSON) names the exact
  /// range: from the first seq written into the first damaged frame to the archive's end.
  @Test func burstBeyondTheMarginKeepsEveryFrameBeforeIt() throws {
    let chain = try Chain(parity: 5)
    let sandbox = try MediaSandbox()
    let frames = chain.frames()
    #expect(frames.count >= 6, "\(frames.count) frames")
    let burst = frames[2].offset + 1000
    let expected = chain.firstSeq(inFrame: 2)
    let until = chain.second.manifest.range.untilSeq
    #expect(expected > chain.bookmarks[0].seq, "the loss starts after the first bookmark")

    // dir: a folder of archive files.
    let folder = try chain.damagedFolder(in: sandbox.root) { try Self.zero($0, at: burst, count: 3 << 20) }
    let target = sandbox.root + "/rehydrated-dir"
    let text = try run(
      reelExecutable, ["rehydrate", "--from", folder, "--key", chain.maker.keyPath, "--store", target],
      environment: ["REEL_STORE": target, "REEL_PASSPHRASE": ArchiveMaker.passphrase])
    #expect(text.status == 3, "\(text.output)")
    let lostLine = text.stdout.split(separator: "\n").first { $0.contains("LOST") }.map(String.init) ?? ""
    #expect(
      lostLine.contains("seq \(expected)–\(until) (\(chain.maker.fixture.times[expected]!.rfc3339)–"), "\(text.output)")
    #expect(
      lostLine.contains("beyond repair") && lostLine.contains("up to seq \(expected - 1) was imported"), "\(lostLine)")
    #expect(text.stdout.contains("restorable: any point up to seq \(expected - 1)"), "\(text.output)")
    try chain.expectWholeBefore(expected, in: try Store.initialize(StoreLayout(root: target)).store)
    let refused = try run(
      reelExecutable, ["restore", "disk", "--at", "seq:\(expected)", "--output", sandbox.root + "/refused.img"],
      environment: ["REEL_STORE": target])
    #expect(
      refused.status != 0 && refused.output.contains("seq \(expected) of volume disk lies in history lost to damage"),
      "\(refused.output)")
    let timeline = try run(reelExecutable, ["timeline", "disk", "--json"], environment: ["REEL_STORE": target])
    let losses = (try sandbox.json(timeline.stdout) as? [String: Any])?["lost"] as? [[String: Any]]
    #expect(
      losses?.first?["from_seq"] as? Int == Int(expected) && losses?.first?["until_seq"] as? Int == Int(until),
      "\(timeline.output)")
    // What came in is a consistent store: every chunk re-hashed, catalog and packs agree.
    let checked = try run(reelExecutable, ["store", "check", "--read-data"], environment: ["REEL_STORE": target])
    #expect(checked.status == 0, "\(checked.output)")

    // `reel inspect` shows the parity's geometry (from PARITY, without reading the data).
    let inspected = try run(reelExecutable, ["inspect", chain.second.path])
    let geometry = try ArchiveParity.inspect(path: chain.second.path).geometry
    #expect(
      inspected.stdout.contains(
        "Parity      Reed–Solomon, \(geometry.dataRows) + \(geometry.parityRows) shards per stripe, \(geometry.stripes) stripes per span"
      ), "\(inspected.output)")
    #expect(try run(reelExecutable, ["inspect", chain.first.path]).stdout.contains("Parity      Reed–Solomon"))

    // vtape: the same burst inside the cartridge's records (their framing intact, so the
    // bytes read back altered rather than unreadable), reported by JSON.
    #expect(try sandbox.reel("init").status == 0)
    #expect(
      try sandbox.reel("media", "label", "vtape:" + sandbox.library, "--name", "C1", "--capacity", "64M").status == 0)
    let export = try sandbox.reel(
      "export", chain.first.path, chain.second.path, "--to", "vtape:" + sandbox.library, "--media-set", "weekly")
    #expect(export.status == 0, "\(export.output)")
    let cartridge = sandbox.cartridge("C1")
    let tape = Data(sandbox.bytes(cartridge))
    let afterFirst = tape.range(of: Data(sandbox.bytes(chain.first.path).prefix(4096)))!.lowerBound + 1
    let start = tape.range(of: Data(sandbox.bytes(chain.second.path).prefix(4096)), in: afterFirst..<tape.endIndex)!
      .lowerBound
    let record = 1 << 20
    let file = try PosixFile(path: cartridge, flags: O_RDWR)
    var offset = burst
    while offset < burst + (3 << 20) {
      let inRecord = offset % record
      let count = min(record - inRecord, burst + (3 << 20) - offset)
      try Self.zero(file, at: start + offset / record * (record + 8) + inRecord, count: count)
      offset += count
    }
    let vtapeTarget = sandbox.root + "/rehydrated-vtape"
    let json = try run(
      reelExecutable,
      [
        "rehydrate", "--from", "vtape:" + sandbox.library, "--key", chain.maker.keyPath, "--store", vtapeTarget,
        "--json",
      ],
      environment: ["REEL_STORE": vtapeTarget, "REEL_PASSPHRASE": ArchiveMaker.passphrase])
    #expect(json.status == 3, "\(json.output)")
    let report = try sandbox.json(json.stdout) as! [String: Any]
    let volume = (report["volumes"] as! [[String: Any]])[0]
    let lost = (volume["lost"] as? [[String: Any]]) ?? []
    #expect(lost.count == 1, "\(json.stdout)")
    #expect(lost.first?["from_seq"] as? Int == Int(expected) && lost.first?["until_seq"] as? Int == Int(until))
    #expect(lost.first?["imported_through"] as? Int == Int(expected - 1))
    #expect((lost.first?["damage"] as? [String])?.first?.hasPrefix("archive bytes ") == true, "\(lost)")
    #expect(report["complete"] as? Bool == false && volume["restorable_until_seq"] as? Int == Int(expected - 1))
    try chain.expectWholeBefore(expected, in: try Store.initialize(StoreLayout(root: vtapeTarget)).store)
  }

  /// Without parity (a damaged frame, nothing to repair it with), in the middle, in the
  /// first frame, in the manifest and in the index: what authenticates comes in, the
  /// rest is named, and later archives of the chain are left out and named.
  @Test func damageWithoutParity() throws {
    let chain = try Chain(parity: 0, groups: 5)
    let root = TemporaryDirectory("reel-unrepairable")
    let frames = chain.frames()
    let until = chain.second.manifest.range.untilSeq
    let fromSeq = chain.second.manifest.range.fromSeq

    // One flipped byte in the middle of frame 3.
    var folder = try chain.damagedFolder(in: root.path) { file in
      let at = UInt64(frames[3].offset + 32 + frames[3].plaintext / 2)
      try file.write([try file.read(at: at, count: 1)[0] ^ 0x40], at: at)
    }
    var (volume, store, report) = try chain.rehydrate(from: folder, root: root.path)
    let expected = chain.firstSeq(inFrame: 3)
    #expect(volume.lost.count == 1 && !report.complete, "\(volume.lost)")
    #expect(volume.lost.first?.fromSeq == expected && volume.lost.first?.untilSeq == until)
    #expect(volume.lost.first?.fromTime == chain.maker.fixture.times[expected]?.rfc3339)
    #expect(
      volume.lost.first?.damage == [
        "packs/000001.pack bytes \(frames[3].offset - frames[0].offset)–\(frames[3].offset - frames[0].offset + 32 + frames[3].plaintext + 16 - 1)"
      ])
    #expect(volume.restorableUntilSeq == expected - 1 && volume.imported.count == 1)
    try chain.expectWholeBefore(expected, in: store)

    // A damaged frame header: the reader goes on at the next frame the index knows, so
    // only that frame is lost.
    folder = try chain.damagedFolder(in: root.path) { try Self.zero($0, at: frames[2].offset, count: 32) }
    (volume, store, _) = try chain.rehydrate(from: folder, root: root.path)
    #expect(volume.lost.first?.fromSeq == chain.firstSeq(inFrame: 2), "\(volume.lost)")
    #expect(
      volume.lost.first?.damage
        == [
          "packs/000001.pack bytes \(frames[2].offset - frames[0].offset)–\(frames[3].offset - frames[0].offset - 1)"
        ], "\(volume.lost)")

    // The first frame: nothing of the second archive's window is whole.
    folder = try chain.damagedFolder(in: root.path) { try Self.zero($0, at: frames[0].offset + 40, count: 64) }
    (volume, store, _) = try chain.rehydrate(from: folder, root: root.path)
    #expect(volume.lost.first?.fromSeq == fromSeq + 1 && volume.lost.first?.importedThrough == nil, "\(volume.lost)")
    #expect(volume.restorableUntilSeq == fromSeq)
    try chain.expectWholeBefore(fromSeq + 1, in: store)

    // The manifest, and the index: nothing of it can be authenticated; the range is the
    // window the catalog (here the file's unauthenticated manifest) gives.
    let bytes = Data(FileManager.default.contents(atPath: chain.second.path)!)
    let manifestAt = bytes.range(of: Data("\"archiveID\"".utf8))!.lowerBound
    var indexAt = 0
    while !(bytes[indexAt..<(indexAt + 4)] == Data("RFR1".utf8) && bytes[indexAt + 4] == 2) { indexAt += 512 }
    for (what, at) in [("index", indexAt + 100)] {
      folder = try chain.damagedFolder(in: root.path) { try Self.zero($0, at: at, count: 16) }
      (volume, store, _) = try chain.rehydrate(from: folder, root: root.path)
      #expect(
        volume.lost.first?.fromSeq == fromSeq + 1 && volume.lost.first?.untilSeq == until, "\(what): \(volume.lost)")
      #expect(
        volume.lost.first?.reason?.contains("nothing of it can be authenticated") == true, "\(what): \(volume.lost)")
      #expect(volume.restorableUntilSeq == fromSeq, "\(what)")
      try chain.expectWholeBefore(fromSeq + 1, in: store)
    }
    // A damaged manifest hides the archive from the folder's offers: named, not imported.
    folder = try chain.damagedFolder(in: root.path) { file in
      try file.write(Array("\"archiveIX\"".utf8), at: UInt64(manifestAt))
    }
    (volume, store, report) = try chain.rehydrate(from: folder, root: root.path)
    #expect(volume.restorableUntilSeq == fromSeq, "\(volume)")
    #expect(
      report.mediaProblems.contains { $0.contains((chain.second.path as NSString).lastPathComponent) },
      "\(report.mediaProblems)")
  }

  /// A third archive after the damaged one builds on the lost history: not imported, and
  /// named. Damage outside every frame (SHA256SUMS) loses nothing: the whole window comes
  /// in, the chain goes on, and the damage is still reported.
  @Test func laterArchivesOfTheChainAreNamed() throws {
    let chain = try Chain(parity: 0, groups: 3)
    let third = try chain.maker.seal(randomBytes: 256 << 10, bookmark: "after", parity: 0)
    let root = TemporaryDirectory("reel-unrepairable")
    let frames = chain.frames()
    let folder = try chain.damagedFolder(in: root.path) { try Self.zero($0, at: frames[1].offset + 40, count: 64) }
    try FileManager.default.copyItem(
      atPath: third.path, toPath: folder + "/" + (third.path as NSString).lastPathComponent)
    let (volume, _, _) = try chain.rehydrate(from: folder, root: root.path)
    #expect(volume.lost.first?.fromSeq == chain.firstSeq(inFrame: 1), "\(volume.lost)")
    #expect(volume.notImported.count == 1 && volume.notImported[0].contains("builds on the lost history"), "\(volume)")
    #expect(volume.restorableUntilSeq == chain.firstSeq(inFrame: 1) - 1)

    let sums = Data(FileManager.default.contents(atPath: chain.second.path)!).range(of: Data("  README.txt\n".utf8))!
    let outside = try chain.damagedFolder(in: root.path) { file in
      try file.write(Array("x".utf8), at: UInt64(sums.lowerBound - 1))
    }
    try FileManager.default.copyItem(
      atPath: third.path, toPath: outside + "/" + (third.path as NSString).lastPathComponent)
    let (whole, _, report) = try chain.rehydrate(from: outside, root: root.path)
    #expect(whole.lost.isEmpty && whole.notImported.isEmpty && whole.imported.count == 3, "\(whole)")
    #expect(whole.restorableUntilSeq == third.manifest.range.untilSeq && report.complete && !report.clean)
    #expect(whole.damageOnMedia.contains { $0.contains("its whole history was imported") }, "\(whole.damageOnMedia)")
  }
}
