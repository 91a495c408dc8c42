import Foundation
import ReelCodec
import ReelCore
import ReelIO
import ReelTestSupport
import Testing

@testable import ReelArchive

/// One sealed version 4 archive, its bytes and its parity geometry, shared by the cases.
final class ParityFixture: @unchecked Sendable {
  let chain: SealedChain
  let path: String
  let original: [UInt8]
  let header: ParityHeader
  let copyOffset: Int

  init(percent: Int = 5) throws {
    chain = try SealedChain(size: 4 << 20)
    try chain.history(20, bookmark: "before")
    // About 3 MiB of data that does not compress: a 3 MiB archive, parity at its floor.
    var generator = SystemRandomNumberGenerator()
    for piece in 0..<12 {
      let words = (0..<((256 << 10) / 8)).map { _ in generator.next() as UInt64 }
      _ = try chain.fixture.append(.write(offset: UInt64(piece << 18), data: words.withUnsafeBytes { Array($0) }))
    }
    try chain.history(20, bookmark: "x")
    let archive = try #require(try chain.seal(parity: percent))
    path = archive.path
    original = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    let file = try PosixFile.openForReading(path)
    let located = try #require(try ArchiveParity.locate(file: file, size: UInt64(original.count), label: "fixture"))
    header = located.header
    copyOffset = Int(located.offsetA)
  }

  var geometry: ParityGeometry { header.geometry }
  var protectedBytes: Int { Int(geometry.protectedBytes) }

  /// Writes `bytes` as a damaged copy, repairs it, and returns the report and the output.
  func repair(_ bytes: [UInt8]) throws -> (ParityRepairReport, [UInt8]?) {
    let damaged = chain.output + "/damaged-\(UUID().uuidString).reel.tar"
    let repaired = damaged + ".repaired"
    try Data(bytes).write(to: URL(fileURLWithPath: damaged))
    defer {
      unlink(damaged)
      unlink(repaired)
    }
    let report = try ArchiveParity.repair(input: damaged, output: repaired)
    let output = try? Data(contentsOf: URL(fileURLWithPath: repaired))
    return (report, output.map(Array.init))
  }

  /// The stripe a data byte belongs to (its span's, numbered across spans).
  func stripe(ofDataByte offset: Int) -> Int {
    let shard = offset / geometry.shardSize
    return shard / (geometry.dataRows * geometry.stripes) * geometry.stripes + shard % geometry.stripes
  }
}

@Suite struct ArchiveParityTests {
  static let fixture = try! ParityFixture()

  @Test func aSealWithParityIsVersion4WithPARITYLastAndVerifies() throws {
    let fixture = Self.fixture
    let manifest = try ArchiveVerifier.readManifest(path: fixture.path)
    #expect(manifest.formatVersion == 4 && manifest.parity == ArchiveManifest.Parity(percent: 5))
    #expect(TarMap(fixture.original).entries.map(\.name).suffix(2) == ["SHA256SUMS", "PARITY"])
    let verification = try ArchiveVerifier.verify(path: fixture.path, masterKeys: [fixture.chain.key])
    #expect(verification.problems.isEmpty)
    let report = try ArchiveParity.inspect(path: fixture.path)
    #expect(!report.damaged && report.whole)
    // One 1 MiB record is always repairable: one parity row of at least 257 shards.
    let g = fixture.geometry
    #expect(g.parityRows * g.stripes * g.shardSize > 1 << 20)
    #expect(g.dataRows + g.parityRows > 100, "wide stripes: \(g)")
    #expect(fixture.original.count % (1 << 20) == 0)
  }

  @Test func dozensOfRandomFlipsAreRepairedBitExact() throws {
    let fixture = Self.fixture
    let seed = UInt64.random(in: 0...UInt64.max)
    print("ArchiveParityTests flips seed \(seed)")
    var generator = SplitMix(seed: seed)
    var bytes = fixture.original
    var lost = [Int: Set<Int>]()
    var flips = 0
    // Flips in shards no stripe loses more of than it has parity rows.
    while flips < 36 {
      let offset = Int.random(in: 0..<fixture.protectedBytes, using: &generator)
      let stripe = fixture.stripe(ofDataByte: offset)
      var shards = lost[stripe, default: []]
      shards.insert(offset / fixture.geometry.shardSize)
      guard shards.count <= fixture.geometry.parityRows else { continue }
      lost[stripe] = shards
      bytes[offset] ^= UInt8.random(in: 1...255, using: &generator)
      flips += 1
    }
    // And a flip in PARITY's own tar header and in its first table copy.
    bytes[fixture.protectedBytes + 100] ^= 0x40
    bytes[fixture.copyOffset + 300] ^= 0x01
    let (report, output) = try fixture.repair(bytes)
    #expect(report.whole, "seed \(seed): \(report.sentences)")
    #expect(output == fixture.original, "seed \(seed)")
    #expect(report.worstStripeLoss == lost.values.map(\.count).max())
    // Flips in neighbouring shards make one range: one sentence each, never one per shard.
    let data = report.ranges.filter { $0.region == .data }
    // Two flips may share a shard, and the last shard may be short: the ranges cover every
    // damaged shard.
    let damagedShards = lost.values.map(\.count).reduce(0, +)
    #expect(
      data.count <= 36 && data.allSatisfy(\.repaired)
        && data.map(\.length).reduce(0, +) > (damagedShards - 1) * fixture.geometry.shardSize, "seed \(seed)")
  }

  @Test func aZeroedMebibyteAndATruncatedTailAreRepaired() throws {
    let fixture = Self.fixture
    var zeroed = fixture.original
    let start = min(1 << 20, fixture.protectedBytes - (1 << 20)) + 1234
    for index in start..<(start + (1 << 20)) { zeroed[index] = 0 }
    let (report, output) = try fixture.repair(zeroed)
    #expect(report.whole && output == fixture.original, "\(report.sentences)")
    #expect(report.ranges.count == 1 && report.ranges[0].region == .data, "one sentence for one range")
    #expect(report.sentences.count == 1 && report.sentences[0].contains("repairable"))

    let cut = fixture.copyOffset + fixture.geometry.copySize + Int(fixture.geometry.parityBytes) / 2
    let (truncated, rebuilt) = try fixture.repair(Array(fixture.original[0..<cut]))
    #expect(truncated.whole && rebuilt == fixture.original, "\(truncated.sentences)")
    #expect(truncated.damagedTableCopies == 1)
  }

  @Test func aBurstBeyondTheMarginNamesTheLostRangeAndWritesNothing() throws {
    let fixture = Self.fixture
    var bytes = fixture.original
    // m + 1 rows' worth: every stripe it covers loses more shards than it has parity.
    let length = (fixture.geometry.parityRows + 1) * fixture.geometry.rowBytes
    #expect(4096 + length < fixture.protectedBytes)
    for index in 4096..<(4096 + length) { bytes[index] = 0xA5 }
    let (report, output) = try fixture.repair(bytes)
    #expect(!report.whole && output == nil)
    #expect(report.lostStripes > 0)
    let lost = report.ranges.filter { !$0.repaired && $0.region == .data }
    #expect(
      !lost.isEmpty && lost.allSatisfy { $0.offset >= 4096 && $0.offset + $0.length <= UInt64(4096 + length) + 4096 })
    #expect(report.sentences.contains { $0.contains("beyond the parity's margin") })
  }

  @Test func parityFromAnotherArchiveIsRefused() throws {
    let fixture = Self.fixture
    let other = try ParityFixture(percent: 10)
    // This archive's bytes before PARITY, the other archive's PARITY and tail after them.
    let spliced =
      Array(fixture.original[0..<fixture.protectedBytes])
      + Array(other.original[other.protectedBytes...])
    #expect {
      _ = try fixture.repair(spliced)
    } throws: { error in
      (error as? ReelError).map { $0.message.contains("another archive") || $0.message.contains("spliced") } ?? false
    }
  }

  @Test func damagedShardTablesStandInForEachOther() throws {
    let fixture = Self.fixture
    let g = fixture.geometry
    let offsetB = fixture.copyOffset + g.copySize + Int(g.parityBytes)
    let entries = ParityGeometry.headerSize + ParityGeometry.tarHeaderRoom
    var oneCopy = fixture.original
    for index in fixture.copyOffset..<(fixture.copyOffset + g.copySize) { oneCopy[index] = 0 }
    oneCopy[100] ^= 0xFF
    let (first, firstOutput) = try fixture.repair(oneCopy)
    #expect(first.whole && firstOutput == fixture.original && first.damagedTableCopies == 1)

    // Each copy damaged in a different block of entries: together they are whole.
    #expect(g.tableBlocks >= 2)
    var both = fixture.original
    both[fixture.copyOffset + entries + 8] ^= 0x01
    both[offsetB + entries + 4 * ParityGeometry.tableBlockEntries + 8] ^= 0x01
    both[200] ^= 0xFF
    let (second, secondOutput) = try fixture.repair(both)
    #expect(second.whole && secondOutput == fixture.original && second.damagedTableCopies == 2)

  }

  /// A block of table entries lost in both copies leaves 1024 shards without CRCs: the
  /// damage among them is found by their stripes' parity and repaired bit-exact, as
  /// long as no stripe has more wrong ones than it can tell apart.
  @Test func shardsWhoseCRCsAreLostInBothTableCopiesAreCheckedByTheirStripes() throws {
    let fixture = Self.fixture
    let g = fixture.geometry
    let offsetB = fixture.copyOffset + g.copySize + Int(g.parityBytes)
    let entries = ParityGeometry.headerSize + ParityGeometry.tarHeaderRoom
    var same = fixture.original
    same[fixture.copyOffset + entries + 8] ^= 0x01
    same[offsetB + entries + 12] ^= 0x01
    let (clean, cleanOutput) = try fixture.repair(same)
    #expect(clean.whole && cleanOutput == fixture.original)
    #expect(clean.unverifiedShards == ParityGeometry.tableBlockEntries && clean.damagedTableCopies == 2)

    // Wrong shards among the unverified ones: two in one stripe, one in another, and a
    // run across the end of the first table block into shards whose CRCs are known.
    let d = g.stripes
    var damaged = same
    for shard in [3, 3 + d, 7 + 2 * d] { damaged[shard * g.shardSize + 100] ^= 0x40 }
    let edge = ParityGeometry.tableBlockEntries * g.shardSize
    if edge < fixture.protectedBytes - g.shardSize {
      for index in (edge - 10)..<(edge + 10) { damaged[index] ^= 0xFF }
    }
    let (report, output) = try fixture.repair(damaged)
    #expect(report.whole && output == fixture.original, "\(report.sentences)")
    #expect(report.ranges.contains { $0.region == .data && $0.offset == UInt64(3 * g.shardSize) && $0.repaired })

    // Four wrong in one stripe is more than it can tell apart: nothing is written, and
    // they are named.
    var beyond = same
    for row in 0..<4 { beyond[(5 + row * d) * g.shardSize] ^= 0x01 }
    let (refused, refusedOutput) = try fixture.repair(beyond)
    #expect(!refused.whole && refusedOutput == nil && refused.lostStripes >= 1)
    #expect(refused.ranges.contains { $0.offset == UInt64(5 * g.shardSize) && !$0.repaired })
  }

  @Test func randomDamageWithinTheMarginGivesBackTheOriginalBytes() throws {
    let fixture = Self.fixture
    let g = fixture.geometry
    let seed = UInt64.random(in: 0...UInt64.max)
    print("ArchiveParityTests property seed \(seed)")
    var generator = SplitMix(seed: seed)
    for round in 0..<4 {
      var bytes = fixture.original
      var lossPerStripe = [Int: Int]()
      // Runs of damage anywhere in the protected bytes and single flips, as long as no
      // stripe loses more shards than it has parity rows.
      for _ in 0..<Int.random(in: 1...40, using: &generator) {
        let length = Int.random(in: 1...(g.rowBytes * g.parityRows / 2), using: &generator)
        let start = Int.random(in: 0..<(fixture.protectedBytes - length), using: &generator)
        var loss = lossPerStripe
        for shard in (start / g.shardSize)...((start + length - 1) / g.shardSize) {
          loss[fixture.stripe(ofDataByte: shard * g.shardSize), default: 0] += 1
        }
        guard loss.values.allSatisfy({ $0 <= g.parityRows }) else { continue }
        lossPerStripe = loss
        let fill = UInt8.random(in: 0...255, using: &generator)
        for index in start..<(start + length) { bytes[index] = fill == bytes[index] ? ~fill : fill }
      }
      let (report, output) = try fixture.repair(bytes)
      #expect(report.whole && output == fixture.original, "seed \(seed) round \(round): \(report.sentences)")
    }
  }

  @Test func stockTarAndSha256sumReadAVersion4Archive() throws {
    let fixture = Self.fixture
    let listing = try runChecked("/usr/bin/env", ["tar", "-tf", fixture.path]).stdout
    #expect(listing.split(separator: "\n").last == "PARITY")
    let folder = fixture.chain.output + "/extract-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    _ = try runChecked("/usr/bin/env", ["tar", "-xf", fixture.path, "-C", folder])
    let check = try run("/usr/bin/env", ["sha256sum", "-c", "SHA256SUMS"], directory: folder)
    #expect(check.succeeded, "\(check.stdout)\(check.stderr)")
  }

  @Test func anArchiveWithoutParityIsVersion2AndHasNoPARITY() throws {
    let chain = try SealedChain(size: 1 << 20)
    try chain.history(10, bookmark: "x")
    let archive = try #require(try chain.seal(parity: 0))
    #expect(archive.manifest.formatVersion == 2 && archive.manifest.parity == nil)
    #expect(TarMap(Array(try Data(contentsOf: URL(fileURLWithPath: archive.path)))).entries.last?.name == "SHA256SUMS")
    #expect(throws: ReelError.self) { _ = try ArchiveParity.inspect(path: archive.path) }
  }
}

@Suite struct ParityPlanBoundsTests {
  /// Readers refuse a header whose span (data and parity) is larger than
  /// `maximumSpanBufferBytes`, as repair holds three spans in memory: every geometry the
  /// writer plans, from a tiny archive to 1 TiB and at every percent, stays within it.
  @Test func everyPlannedSpanFitsWhatReadersAccept() {
    let capacities: [UInt64] = [1, 4096, 1 << 20, 3 << 20, 100 << 20, 1 << 30, 64 << 30, 1 << 40]
    for percent in 1...ParityGeometry.percentRange.upperBound {
      for capacity in capacities {
        let g = ParityGeometry.plan(capacity: capacity, percent: percent)
        let spanBytes = (g.dataRows + g.parityRows) * g.stripes * g.shardSize
        #expect(spanBytes <= ParityGeometry.maximumSpanBufferBytes, "\(percent) % of \(capacity) bytes: \(g)")
      }
    }
  }
}
