import Foundation
import GRDB
import ReelCodec
import ReelCore
import ReelIO
import ReelTestSupport
import Testing

@testable import ReelStore

/// Catalog v10: a consolidated block that differs little from an earlier full version is
/// stored as a zstd delta of it (docs/store-format.md, "Consolidations as deltas"). Every
/// reader finds the base; prune keeps it; records that leave the store are whole.
@Suite struct DeltaChunkTests {
  static let blockSize = 64 * 1024

  /// A volume of random bytes (its base image: full versions at seq 0), then `edits`
  /// 4 KiB writes into the first `blocks` store blocks, each the page as it was with 16
  /// bytes changed (as a file system's metadata or a database page is rewritten), a
  /// bookmark every `every` writes; ingested every `ingestEvery` writes.
  static func editedStore(
    seed: UInt64, edits: Int, blocks: Int = 2, every: Int = 50, ingestEvery: Int = 120
  ) throws -> (StoreFixture, [Seq]) {
    var rng = SplitMix(seed: seed)
    let base = (0..<(8 * blockSize)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    let fixture = try StoreFixture(size: base.count, base: base, seed: seed, storeBlockSize: UInt32(blockSize))
    var checkpoints: [Seq] = []
    for edit in 1...edits {
      let page = Int(fixture.rng.next() % UInt64(blocks * blockSize / 4096))
      var data = Array(fixture.model[(page * 4096)..<(page * 4096 + 4096)])
      let at = Int(fixture.rng.next() % (4096 - 16))
      for index in at..<(at + 16) { data[index] = UInt8(truncatingIfNeeded: fixture.rng.next()) }
      try fixture.append(.write(offset: UInt64(page * 4096), data: data))
      if edit % every == 0 {
        checkpoints.append(try fixture.append(.bookmark("edit \(edit)")).seq)
        fixture.snapshot(checkpoints.last!)
      }
      if edit % ingestEvery == 0 { try fixture.live.ingest(volume: fixture.name) }
    }
    try fixture.live.ingest(volume: fixture.name)
    return (fixture, checkpoints)
  }

  /// (chunks stored as deltas, the deepest chain of bases, record bytes of full versions after seq 0)
  static func deltaFigures(_ live: LiveStore) throws -> (deltas: Int, depth: Int, fullBytes: Int) {
    try live.catalog.database.read { db in
      let deltas = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chunk WHERE base_id IS NOT NULL") ?? 0
      let depth =
        try Int.fetchOne(
          db,
          sql: """
            WITH RECURSIVE up(id, base, depth) AS (
              SELECT id, base_id, 0 FROM chunk
              UNION ALL SELECT up.id, c.base_id, up.depth + 1 FROM up JOIN chunk c ON c.id = up.base
            ) SELECT MAX(depth) FROM up
            """) ?? 0
      let fullBytes =
        try Int.fetchOne(
          db,
          sql: """
            SELECT SUM(c.length) FROM chunk c WHERE c.id IN (
              SELECT chunk_id FROM block_version WHERE full = 1 AND seq > 0)
            """) ?? 0
      return (deltas, depth, fullBytes)
    }
  }

  /// The pack file (open for writing) and place of the first chunk record matching
  /// `condition` (on `chunk c`), for tests that damage it.
  static func openRecord(_ fixture: StoreFixture, where condition: String) throws -> (PosixFile, ChunkLocation) {
    let location = try fixture.live.catalog.database.read { db in
      ChunkLocation(
        try #require(
          try Row.fetchOne(
            db,
            sql: """
              SELECT p.id AS pack, c.offset, c.length FROM chunk c JOIN pack p ON p.number = c.pack_number
              WHERE \(condition) LIMIT 1
              """)))
    }
    return (try PosixFile(path: fixture.packPath(location.pack), flags: O_RDWR), location)
  }

  @Test func editedBlocksConsolidateAsShallowDeltasAndEveryPointReadsBack() throws {
    let (fixture, checkpoints) = try Self.editedStore(seed: 41, edits: 600)
    let figures = try Self.deltaFigures(fixture.live)
    let consolidations = try fixture.live.catalog.database.read { db in
      try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM block_version WHERE full = 1 AND seq > 0") ?? 0
    }
    // 600 edits into 2 blocks: about 35 consolidations, each a few hundred bytes to a few
    // KiB stored instead of 64 KiB.
    #expect(consolidations >= 30, "\(consolidations)")
    #expect(figures.deltas >= consolidations - 2, "\(figures)")
    #expect(figures.depth >= 1 && figures.depth <= 2, "\(figures)")
    #expect(figures.fullBytes < consolidations * Self.blockSize / 8, "\(figures)")

    // A fresh store object (nothing cached) reads every point through the catalog.
    let cold = LiveStore(store: try Store.open(fixture.store.layout))
    for seq in checkpoints {
      let view = try VolumeView(live: cold, volume: fixture.name, at: .seq(seq))
      #expect(difference(try view.read(offset: 0, length: Int(view.size)), fixture.snapshots[seq]) == nil, "seq \(seq)")
    }
    #expect(difference(try fixture.image(at: .latest), fixture.model) == nil)
    // Small reads inside a delta block, with nothing read ahead.
    let view = try VolumeView(
      live: LiveStore(store: try Store.open(fixture.store.layout)), volume: fixture.name, at: .latest)
    for offset in stride(from: 512, to: 2 * Self.blockSize, by: 20_000) {
      #expect(try view.read(offset: UInt64(offset), length: 512) == Array(fixture.model[offset..<(offset + 512)]))
    }
    let check = try cold.check(readData: true)
    #expect(check.isClean, "\(check.problems)")
  }

  /// Records handed out of the store (to the sealer) are whole: an archive's window need
  /// not hold the base.
  @Test func recordsLeavingTheStoreAreWhole() throws {
    let (fixture, _) = try Self.editedStore(seed: 42, edits: 200)
    let deltas = try fixture.live.catalog.database.read { db in
      try String.fetchAll(db, sql: "SELECT lower(hex(digest)) FROM chunk WHERE base_id IS NOT NULL")
    }
    #expect(deltas.count >= 8)
    let records = try LiveStore(store: try Store.open(fixture.store.layout)).chunkRecords(deltas)
    for name in deltas {
      let record = try #require(records[name])
      #expect(record[4] != ChunkRecordHeader.encodingDelta)
      let plaintext = try ChunkRecordFormat.decodeVerified(record, key: name)
      #expect(SHA256Digest.hash(plaintext).hex == name)
    }
  }

  /// Prune keeps a chunk while a living delta is made from it, even when no version uses
  /// it any more, and repacking moves bases and deltas alike.
  @Test func pruneKeepsTheBasesOfLivingDeltas() throws {
    let (fixture, checkpoints) = try Self.editedStore(seed: 43, edits: 400)
    try fixture.closeWriter()
    let last = try #require(checkpoints.last)
    let report = try fixture.live.prune(
      volume: fixture.name, keepWithin: .seconds(0), keepBookmarks: false, safetyMargin: .seconds(0),
      now: fixture.times[last]!)
    #expect(report.versionsDeleted > 0 && report.chunksDeleted > 0, "\(report)")
    // The base image's versions of the edited blocks are gone; their chunks stay as bases.
    let keptAsBases = try fixture.live.catalog.database.read { db in
      try Int.fetchOne(
        db,
        sql: """
          SELECT COUNT(*) FROM chunk WHERE id IN (SELECT base_id FROM chunk)
            AND id NOT IN (SELECT chunk_id FROM block_version WHERE chunk_id IS NOT NULL)
          """) ?? 0
    }
    #expect(keptAsBases > 0)
    let cold = LiveStore(store: try Store.open(fixture.store.layout))
    let view = try VolumeView(live: cold, volume: fixture.name, at: .seq(last))
    #expect(difference(try view.read(offset: 0, length: Int(view.size)), fixture.snapshots[last]) == nil)
    #expect(try cold.check(readData: true).isClean)
  }

  /// A damaged base takes its deltas with it; check says so for each, and repair gives
  /// them all back from the journal and the base image (stored whole).
  @Test func aDamagedBaseIsReportedThroughItsDeltasAndRepaired() throws {
    let (fixture, checkpoints) = try Self.editedStore(seed: 44, edits: 300)
    let (file, base) = try Self.openRecord(fixture, where: "c.id IN (SELECT base_id FROM chunk) AND c.base_id IS NULL")
    try file.write([0xFF, 0x00, 0xFF], at: base.offset + 100)
    let live = LiveStore(store: try Store.open(fixture.store.layout))
    let problems = try live.check(readData: true).problems
    #expect(problems.count > 1, "\(problems)")
    #expect(problems.contains { $0.message.contains("is stored as a delta of a damaged chunk") }, "\(problems)")

    let report = try live.repair()
    #expect(report.unrepaired.isEmpty, "\(report.unrepaired)")
    #expect(try live.check(readData: true).isClean)
    for seq in checkpoints {
      let view = try VolumeView(live: LiveStore(store: fixture.store), volume: fixture.name, at: .seq(seq))
      #expect(difference(try view.read(offset: 0, length: Int(view.size)), fixture.snapshots[seq]) == nil, "seq \(seq)")
    }
  }

  /// A delta whose base row is gone is reported by the catalog-only check (no data read)
  /// and stored whole again by repair, from the journal.
  @Test func aDeltaWhoseBaseRowIsGoneIsReportedAndRepaired() throws {
    let (fixture, checkpoints) = try Self.editedStore(seed: 48, edits: 200)
    // The row a delta names as its base is not there (a catalog damaged by hand or by
    // a bug): the record still names its base, so reads go on; check says what is wrong.
    let base: Int64 = 999_999_999
    try fixture.live.catalog.database.write { db in
      try db.execute(
        sql: "UPDATE chunk SET base_id = ? WHERE id = (SELECT id FROM chunk WHERE base_id IS NOT NULL LIMIT 1)",
        arguments: [base])
      #expect(db.changesCount == 1)
    }
    let live = LiveStore(store: try Store.open(fixture.store.layout))
    let problems = try live.check(readData: false).problems
    #expect(problems.contains { $0.message.contains("delta of chunk id \(base)") }, "\(problems)")
    let report = try live.repair()
    #expect(report.unrepaired.isEmpty, "\(report.unrepaired)")
    #expect(try live.check(readData: false).problems.allSatisfy { !$0.message.contains("delta of chunk id") })
    for seq in checkpoints {
      let view = try VolumeView(live: LiveStore(store: fixture.store), volume: fixture.name, at: .seq(seq))
      #expect(difference(try view.read(offset: 0, length: Int(view.size)), fixture.snapshots[seq]) == nil, "seq \(seq)")
    }
  }

  /// A record that names itself as its base (damaged or hostile) is refused; no reader
  /// goes round for ever.
  @Test func aDeltaThatIsItsOwnBaseIsRefused() throws {
    let (fixture, _) = try Self.editedStore(seed: 45, edits: 100)
    // The newest full version stored as a delta: the latest point reads it.
    let (file, delta) = try Self.openRecord(
      fixture,
      where: """
        c.id = (SELECT v.chunk_id FROM block_version v JOIN chunk d ON d.id = v.chunk_id
          WHERE v.full = 1 AND d.base_id IS NOT NULL ORDER BY v.seq DESC LIMIT 1)
        """)
    let offset = delta.offset
    var record = try file.read(at: offset, count: delta.length)
    record.replaceSubrange(56..<88, with: record[16..<48])
    record.withUnsafeMutableBytes { bytes in
      let stored = UnsafeRawBufferPointer(rebasing: bytes[56...])
      let hash = UnsafeRawBufferPointer(rebasing: bytes[16..<48])
      ChunkRecordHeader.write(
        into: UnsafeMutableRawBufferPointer(rebasing: bytes[0..<56]), encoding: ChunkRecordHeader.encodingDelta,
        plaintextLength: Int(bytes.load(fromByteOffset: 8, as: UInt32.self)), hash: hash, stored: stored)
    }
    try file.write(record, at: offset)
    let live = LiveStore(store: try Store.open(fixture.store.layout))
    let refusal = #expect(throws: ReelError.self) {
      let view = try VolumeView(live: live, volume: fixture.name, at: .latest)
      _ = try view.read(offset: 0, length: Int(view.size))
    }
    #expect(refusal?.kind == .corrupt)
    #expect(refusal?.message.contains("more than 4 deep") == true, "\(String(describing: refusal))")
    #expect(!(try live.check(readData: true).isClean))
  }

  /// Blocks rewritten with new content are stored whole, as before: a delta must be much
  /// smaller than the block to be kept.
  @Test func newContentIsStoredWhole() throws {
    let fixture = try StoreFixture(size: 256 * 1024, seed: 46, storeBlockSize: UInt32(Self.blockSize))
    for _ in 0..<200 {
      let page = Int(fixture.rng.next() % 16)
      try fixture.append(
        .write(offset: UInt64(page * 4096), data: (0..<4096).map { _ in UInt8(truncatingIfNeeded: fixture.rng.next()) })
      )
    }
    try fixture.live.ingest(volume: fixture.name)
    #expect(try Self.deltaFigures(fixture.live).deltas == 0)
    #expect(difference(try fixture.image(at: .latest), fixture.model) == nil)
  }

  @Test func deltaRecordsRoundTripAndRespectTheirCap() throws {
    var rng = SplitMix(seed: 47)
    let base = (0..<65536).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    var edited = base
    edited.replaceSubrange(1000..<1016, with: (0..<16).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
    let hash = SHA256Digest.hash(edited)
    let codec = ChunkCodec()
    let delta = DeltaBase(name: SHA256Digest.hash(base), plaintext: base)
    let record = try #require(edited.withUnsafeBytes { codec.encodeDelta($0, hash: hash, base: delta, limit: 1024) })
    #expect(record.count < 200)
    #expect(try record.withUnsafeBytes { try ChunkCodec.deltaBase($0, key: .named(hash.hex)) } == delta.name.hex)
    #expect(try ChunkCodec.decode(record, key: .named(hash.hex), verify: true, base: base) == edited)
    #expect(throws: ReelError.self) { try ChunkCodec.decode(record, key: .named(hash.hex), verify: false) }
    // Code that carries records out of the store (archives, imports) refuses a delta.
    let refused = #expect(throws: ReelError.self) { try ChunkRecordFormat.check(record, key: hash.hex) }
    #expect(refused?.message.contains("delta record") == true)
    var wrongBase = base
    wrongBase[3000] ^= 1
    #expect(throws: ReelError.self) {
      try ChunkCodec.decode(record, key: .named(hash.hex), verify: true, base: wrongBase)
    }
    let random = (0..<65536).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    #expect(
      random.withUnsafeBytes { codec.encodeDelta($0, hash: SHA256Digest.hash(random), base: delta, limit: 8192) } == nil
    )
  }
}
