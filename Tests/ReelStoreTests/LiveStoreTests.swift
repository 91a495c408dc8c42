import Foundation
import GRDB
import ReelCore
import ReelTestSupport
import Testing

@testable import ReelStore

@Suite struct LiveStorePointInTimeTests {
  /// Random histories, ingested in several steps while the journal grows: every bookmark,
  /// random seqs and random instants read back exactly the model's bytes.
  @Test(arguments: [1, 2, 3, 4])
  func randomHistoriesMatchTheModel(round: Int) throws {
    let seed = UInt64.random(in: 0...UInt64.max)
    let size = 1 << 20
    var baseRng = SplitMix(seed: seed ^ 0xBA5E)
    let base: [UInt8]? =
      round % 2 == 0 ? (0..<size).map { $0 < size / 2 ? UInt8(truncatingIfNeeded: baseRng.next()) : 0 } : nil
    // Odd rounds use the smallest store block, even rounds the default: both geometries.
    let fixture = try StoreFixture(
      size: size + 3 * 4096, base: base.map { $0 + [UInt8](repeating: 7, count: 3 * 4096) }, seed: seed,
      storeBlockSize: round % 2 == 1 ? 64 * 1024 : VolumeDescriptor.defaultStoreBlockSize)
    var checkpoints: [Seq] = [0]
    for step in 0..<4 {
      for index in 0..<120 {
        try fixture.randomChange()
        if fixture.rng.next() % 17 == 0 {
          let seq = try fixture.append(.flush).seq
          fixture.snapshot(seq)
          checkpoints.append(seq)
        }
        if index == 60 { try fixture.append(.bookmark("step \(step) middle")) }
      }
      let bookmark = try fixture.append(.bookmark("step \(step)")).seq
      fixture.snapshot(bookmark)
      checkpoints.append(bookmark)
      // Ingest part of the time only, so later rounds start from carried-over heads.
      if step % 2 == 1 { try fixture.live.ingest(volume: fixture.name) }
    }
    try fixture.closeWriter()
    let report = try fixture.live.ingest(volume: fixture.name)
    #expect(report.lastSeq == fixture.times.keys.max())

    for seq in checkpoints {
      let image = try fixture.image(at: .seq(seq))
      #expect(difference(image, fixture.snapshots[seq]) == nil, "seed \(seed): image at seq \(seq)")
      if seq > 0 {
        // An instant between this record and the next resolves to this record.
        let instant = Timestamp(nanoseconds: fixture.times[seq]!.nanoseconds + 1)
        if fixture.times[seq + 1].map({ $0 > instant }) ?? true {
          #expect(
            difference(try fixture.image(at: .time(instant)), fixture.snapshots[seq]) == nil,
            "seed \(seed): time after \(seq)")
        }
      }
    }
    for step in 0..<4 {
      #expect(
        difference(
          try fixture.image(at: .bookmark("step \(step)")), fixture.snapshots[fixture.bookmarks["step \(step)"]!])
          == nil, "seed \(seed): bookmark step \(step)")
    }
    #expect(difference(try fixture.image(at: .latest), fixture.model) == nil)
    #expect(try fixture.live.check(readData: true).isClean)
  }

  @Test func readCostStaysBoundedByConsolidation() throws {
    let fixture = try StoreFixture(size: 256 * 1024)
    // Hundreds of 512-byte writes into one block: its chain never exceeds maxPartials.
    for index in 0..<400 {
      try fixture.append(
        .write(offset: UInt64(index % 128) * 512, data: [UInt8](repeating: UInt8(index % 251), count: 512)))
    }
    try fixture.closeWriter()
    try fixture.live.ingest(volume: fixture.name)
    for seq in stride(from: Seq(1), through: 400, by: 37) {
      let chain = try fixture.live.catalog.database.read { db in
        try Catalog.versionChain(
          db, lineage: VolumeLineage(volumeID: fixture.descriptor.id.description), block: 0, atOrBefore: seq)
      }
      #expect(chain.first?.full == true || seq <= Seq(LiveStoreFormat.maxPartials))
      #expect(chain.count <= LiveStoreFormat.maxPartials + 1)
    }
    #expect(difference(try fixture.image(at: .latest), fixture.model) == nil)
  }

  @Test func zerosAndTrimsStoreNothingAndRepeatedDataIsStoredOnce() throws {
    let fixture = try StoreFixture(size: 1 << 20, storeBlockSize: 64 * 1024)
    try fixture.append(.write(offset: 0, data: [UInt8](repeating: 0, count: 512 * 1024)))
    try fixture.append(.trim(offset: 0, length: 1 << 20))
    try fixture.append(.writeZeroes(offset: 4096, length: 65536))
    try fixture.live.ingest(volume: fixture.name)
    #expect(fixture.chunkHashes.isEmpty && fixture.packFiles.isEmpty)
    var rng = SplitMix(seed: 42)
    let data = (0..<(256 * 1024)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
    for _ in 0..<10 { try fixture.append(.write(offset: 256 * 1024, data: data)) }
    try fixture.closeWriter()
    let report = try fixture.live.ingest(volume: fixture.name)
    #expect(report.chunksStored == 4)
    #expect(report.chunksReused == 36)
    #expect(fixture.chunkHashes.count == 4)
    #expect(difference(try fixture.image(at: .latest), fixture.model) == nil)
  }
}

@Suite struct RestoreImageTests {
  /// An image over several read-ahead steps whose size is not a multiple of the direct-I/O
  /// alignment: every byte as the model has it, blocks of zeros left as holes whether they
  /// were never written or written with zeros.
  @Test func aRestoredImageHasEveryByteAndLeavesZeroBlocksAsHoles() throws {
    let blockSize = 64 * 1024
    let size = 40 << 20 + 512
    let fixture = try StoreFixture(size: size, storeBlockSize: UInt32(blockSize))
    var written = Set<Int>()
    var data = (0..<blockSize).map { _ in UInt8(truncatingIfNeeded: fixture.rng.next() | 1) }
    for block in stride(from: 0, to: size / blockSize, by: 3) {
      data.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(block), as: UInt64.self) }
      try fixture.append(.write(offset: UInt64(block * blockSize), data: data))
      written.insert(block)
    }
    try fixture.append(.write(offset: UInt64(blockSize), data: [UInt8](repeating: 0, count: blockSize)))
    // The last, short block ends past the last 4096-byte boundary.
    try fixture.append(.write(offset: UInt64(size - 512), data: [UInt8](repeating: 9, count: 512)))
    try fixture.closeWriter()
    let output = fixture.root + "/restored.img"
    let report = try Restore.run(store: fixture.store, volume: fixture.name, at: .latest, output: output)

    let restored = try [UInt8](Data(contentsOf: URL(fileURLWithPath: output)))
    #expect(restored.count == size)
    #expect(difference(restored, fixture.model) == nil)
    let lastBlock = size / blockSize
    #expect(report.bytesWritten == UInt64(written.count * blockSize + (size - lastBlock * blockSize)))
    var status = stat()
    #expect(stat(output, &status) == 0)
    #expect(Int(status.st_blocks) * 512 < size / 2, "zero blocks take no space")
  }
}

@Suite struct LiveStoreIngestSafetyTests {
  @Test func ingestIsIdempotent() throws {
    let fixture = try StoreFixture(size: 512 * 1024, seed: 7)
    for _ in 0..<200 { try fixture.randomChange() }
    try fixture.closeWriter()
    let first = try fixture.live.ingest(volume: fixture.name)
    #expect(first.records == 200)
    let packs = fixture.packFiles
    let rows = try countRows(fixture)
    let second = try fixture.live.ingest(volume: fixture.name)
    #expect(second.records == 0 && second.lastSeq == first.lastSeq)
    #expect(fixture.packFiles == packs)
    #expect(try countRows(fixture) == rows)
  }

  /// `reel serve`'s background ingest gives way to clients: a run told to yield stops at
  /// its first check, commits what it read, and the next run goes on from there.
  @Test func aYieldingIngestCommitsWhatItReadAndTheNextRunContinues() throws {
    let fixture = try StoreFixture(size: 512 * 1024, seed: 11)
    let records = Int(LiveStore.yieldCheckRecords) + 300
    for _ in 0..<records { try fixture.randomChange() }
    try fixture.closeWriter()
    let first = try fixture.live.ingest(volume: fixture.name, yield: { true })
    #expect(first.yielded && first.records == LiveStore.yieldCheckRecords)
    #expect(first.lastSeq == first.firstSeq + LiveStore.yieldCheckRecords - 1)
    let second = try fixture.live.ingest(volume: fixture.name, yield: { false })
    #expect(!second.yielded && second.firstSeq == first.lastSeq + 1)
    #expect(second.records == UInt64(records) - first.records)
    #expect(difference(try fixture.image(at: .latest), fixture.model) == nil)
  }

  /// A backend that fails after a number of appends, as a crash in the middle of a
  /// batch would leave things: records appended to a pack, catalog unchanged. Or that
  /// fails its `failingSync`th `makeDurable` (counting from 1), as a disk error under a
  /// batch's fdatasync would.
  struct FailingBackend: PackBackend {
    let inner: FolderPackBackend
    var failAfter = Int.max
    var failingSync: Int?
    let appends = Locked(0)
    let syncs = Locked(0)
    func append(_ pack: String, _ bytes: [UInt8]) throws -> UInt64 {
      if Self.count(appends) > failAfter { throw ReelError(.io, "simulated crash") }
      return try inner.append(pack, bytes)
    }
    func read(_ pack: String, offset: UInt64, length: Int) throws -> [UInt8] {
      try inner.read(pack, offset: offset, length: length)
    }
    func size(_ pack: String) throws -> UInt64? { try inner.size(pack) }
    func truncate(_ pack: String, to size: UInt64) throws { try inner.truncate(pack, to: size) }
    func delete(_ pack: String) throws { try inner.delete(pack) }
    func list() throws -> [(pack: String, size: UInt64, modified: Timestamp)] { try inner.list() }
    func makeDurable(_ pack: String) throws {
      if Self.count(syncs) == failingSync { throw ReelError(.io, "simulated fdatasync failure") }
      try inner.makeDurable(pack)
    }
    /// Counts one more call; returns the count.
    static func count(_ calls: Locked<Int>) -> Int {
      calls.withLock { calls in
        calls += 1
        return calls
      }
    }
  }

  @Test(arguments: [0, 5, 40])
  func ingestCutShortThenRerunGivesTheSameStore(failAfter: Int) throws {
    let fixture = try StoreFixture(size: 512 * 1024, seed: 11)
    for _ in 0..<150 { try fixture.randomChange() }
    try fixture.closeWriter()
    let failing = LiveStore(
      store: fixture.store,
      backend: FailingBackend(
        inner: FolderPackBackend(root: fixture.store.layout.root + "/packs"), failAfter: failAfter))
    #expect(throws: ReelError.self) { try failing.ingest(volume: fixture.name) }
    #expect(fixture.chunkHashes.isEmpty)
    let cutShort = try fixture.live.check(readData: false)
    #expect(cutShort.isClean)
    #expect((cutShort.orphanBytes > 0) == (failAfter > 0))
    try fixture.live.ingest(volume: fixture.name)
    let check = try fixture.live.check(readData: true)
    #expect(check.isClean && check.orphanBytes == 0)
    #expect(difference(try fixture.image(at: .latest), fixture.model) == nil)
    // The same history ingested without the crash stores exactly the same chunks and bytes.
    let clean = try StoreFixture(size: 512 * 1024, seed: 11)
    for _ in 0..<150 { try clean.randomChange() }
    try clean.closeWriter()
    try clean.live.ingest(volume: clean.name)
    #expect(clean.chunkHashes == fixture.chunkHashes)
    #expect(clean.packFiles.values.reduce(0, +) == fixture.packFiles.values.reduce(0, +))
  }

  /// Each batch is made durable and written to the catalog on a thread of its own while
  /// the next is planned. When one cannot be made durable, ingest stops with that error:
  /// the batches before it are in the catalog, none after it, and the next run goes on
  /// from there to the same store an uninterrupted run makes. Small writes to a few store
  /// blocks consolidate often, so the next batch reads the chains the one before wrote.
  @Test func aBatchThatCannotBeMadeDurableStopsIngestAfterTheBatchesBeforeIt() throws {
    let limit = LiveStore.batchRecordLimit
    let records = 2 * limit + 700
    func history(_ fixture: StoreFixture) throws {
      var rng = SplitMix(seed: 23)
      for index in 1...records {
        let sector = UInt64(rng.next() % UInt64(fixture.model.count / 512))
        // A word repeated over the sector: every batch fits the first pack, so the second
        // fdatasync is the second batch's.
        let word = rng.next()
        let payload = (0..<64).flatMap { _ in withUnsafeBytes(of: word) { Array($0) } }
        let seq = try fixture.append(.write(offset: sector * 512, data: payload)).seq
        if [limit - 1, limit, limit + 1, 2 * limit].contains(index) { fixture.snapshot(seq) }
      }
      try fixture.closeWriter()
    }
    let fixture = try StoreFixture(size: 1 << 20, seed: 23, storeBlockSize: 64 * 1024)
    try history(fixture)
    let failing = LiveStore(
      store: fixture.store,
      backend: FailingBackend(
        inner: FolderPackBackend(root: fixture.store.layout.root + "/packs"), failingSync: 2))
    #expect(throws: ReelError.self) { try failing.ingest(volume: fixture.name) }
    let ingested = try fixture.live.catalog.database.read { db in
      try Int64.fetchOne(db, sql: "SELECT ingested_seq FROM ingest_state")
    }
    #expect(ingested == Int64(limit))
    #expect(
      try fixture.live.catalog.database.read { db in try Int64.fetchOne(db, sql: "SELECT MAX(seq) FROM record_time") }
        == Int64(limit))
    #expect(difference(try fixture.image(at: .seq(Seq(limit))), fixture.snapshots[Seq(limit)]) == nil)

    let rerun = try fixture.live.ingest(volume: fixture.name)
    #expect(rerun.firstSeq == Seq(limit + 1) && rerun.lastSeq == Seq(records))
    for (seq, snapshot) in fixture.snapshots where seq > 0 {
      #expect(difference(try fixture.image(at: .seq(seq)), snapshot) == nil, "image at seq \(seq)")
    }
    #expect(difference(try fixture.image(at: .latest), fixture.model) == nil)
    let check = try fixture.live.check(readData: true)
    #expect(check.isClean && check.orphanBytes == 0)

    let clean = try StoreFixture(size: 1 << 20, seed: 23, storeBlockSize: 64 * 1024)
    try history(clean)
    try clean.live.ingest(volume: clean.name)
    #expect(try countRows(clean) == countRows(fixture))
    #expect(clean.chunkHashes == fixture.chunkHashes)
  }

  func countRows(_ fixture: StoreFixture) throws -> [Int] {
    try fixture.live.catalog.database.read { db in
      try ["block_version", "record_time", "bookmark", "chunk"].map {
        try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \($0)") ?? 0
      }
    }
  }
}

@Suite struct LiveStorePruneAndDamageTests {
  @Test func pruneKeepsTheWindowAndBookmarksAndFreesChunks() throws {
    let fixture = try StoreFixture(size: 512 * 1024, seed: 5)
    var checkpoints: [Seq] = []
    for step in 0..<6 { checkpoints.append(try fixture.randomChanges(40, thenBookmark: "b\(step)")) }
    try fixture.closeWriter()
    try fixture.live.ingest(volume: fixture.name)
    let chunksBefore = fixture.chunkHashes.count
    // "Now" is just after bookmark b3: history up to b3 is outside a 0-second window.
    let now = fixture.times[checkpoints[3]]!
    let report = try fixture.live.prune(
      volume: fixture.name, keepWithin: .seconds(0), keepBookmarks: true, safetyMargin: .seconds(0), now: now)
    #expect(report.retainedFromSeq == checkpoints[3])
    #expect(report.versionsDeleted > 0 && report.bookmarksKept == 3)
    #expect(report.journalSegmentsKept == 1)
    #expect(fixture.chunkHashes.count < chunksBefore)
    #expect(report.chunksDeleted == chunksBefore - fixture.chunkHashes.count)
    for (index, seq) in checkpoints.enumerated() {
      #expect(
        difference(try fixture.image(at: .bookmark("b\(index)")), fixture.snapshots[seq]) == nil, "bookmark b\(index)")
    }
    #expect(difference(try fixture.image(at: .latest), fixture.model) == nil)
    let pruned = #expect(throws: ReelError.self) { try fixture.image(at: .seq(checkpoints[1] - 1)) }
    #expect(pruned?.message.contains("was pruned") == true)
    #expect(try fixture.live.check(readData: true).isClean)

    // Without --keep-bookmarks the old bookmarks go too.
    let later = try fixture.live.prune(
      volume: fixture.name, keepWithin: .seconds(0), keepBookmarks: false, safetyMargin: .seconds(0),
      now: fixture.times[checkpoints[4]]!)
    #expect(later.retainedFromSeq == checkpoints[4])
    #expect(throws: ReelError.self) { try fixture.image(at: .bookmark("b0")) }
    #expect(difference(try fixture.image(at: .bookmark("b5")), fixture.snapshots[checkpoints[5]]) == nil)
    #expect(try fixture.live.check(readData: true).isClean)
  }

  @Test func pruneRepacksMostlyDeadPacksAndFreesSpace() throws {
    let (fixture, last) = try StoreFixture.overwrittenThreeTimes()
    let before = fixture.packFiles.values.reduce(0, +)
    let report = try fixture.live.prune(
      volume: fixture.name, keepWithin: .seconds(0), keepBookmarks: false, safetyMargin: .seconds(0),
      now: fixture.times[last]!)
    let after = fixture.packFiles.values.reduce(0, +)
    #expect(report.chunksDeleted == 16)
    #expect(report.bytesFreed == before - after)
    #expect(after < before / 2)
    #expect(difference(try fixture.image(at: .latest), fixture.model) == nil)
    let check = try fixture.live.check(readData: true)
    #expect(check.isClean && check.orphanBytes == 0)
  }

  @Test func damagedAndMissingChunksAreReportedWithWhatTheyAffect() throws {
    let fixture = try StoreFixture(size: 512 * 1024, seed: 9, storeBlockSize: 64 * 1024)
    try fixture.append(.write(offset: 65536, data: [UInt8](repeating: 0xAB, count: 65536)))
    try fixture.append(.write(offset: 3 * 65536, data: (0..<65536).map { UInt8(truncatingIfNeeded: $0) }))
    try fixture.closeWriter()
    try fixture.live.ingest(volume: fixture.name)
    let chunks = try fixture.live.catalog.database.read { db in
      try Row.fetchAll(db, sql: "SELECT hash, pack, offset, length FROM chunk_named ORDER BY offset")
    }
    #expect(chunks.count == 2)
    // Flip one byte in the first chunk's stored data.
    let pack: String = chunks[0]["pack"]
    let victimOffset = Int(chunks[0]["offset"] as Int64) + Int(chunks[0]["length"] as Int64) - 1
    // In place, as a failing disk would: same inode, one byte changed.
    let handle = try #require(FileHandle(forUpdatingAtPath: fixture.packPath(pack)))
    try handle.seek(toOffset: UInt64(victimOffset))
    let original = try #require(try handle.read(upToCount: 1))
    try handle.seek(toOffset: UInt64(victimOffset))
    try handle.write(contentsOf: Data([original[0] ^ 0x40]))
    try handle.close()
    let report = try fixture.live.check(readData: true)
    #expect(report.problems.count == 1)
    #expect(report.problems.first?.message.contains(chunks[0]["hash"] as String) == true)
    #expect(report.problems.first?.affects.first?.contains("volume disk bytes 65536..<131072") == true)
    // Reading through the damage fails and names the range (a fresh LiveStore: no cache).
    let fresh = LiveStore(store: fixture.store)
    let view = try VolumeView(live: fresh, volume: fixture.name, at: .latest)
    let readDamage = #expect(throws: ReelError.self) { try view.read(offset: 0, length: Int(view.size)) }
    #expect(readDamage?.kind == .corrupt)
    #expect(readDamage?.message.contains("affects volume disk bytes 65536..<131072") == true)
    // A missing pack is found without reading data.
    try FileManager.default.removeItem(atPath: fixture.packPath(pack))
    let missing = try fixture.live.check(readData: false)
    #expect(missing.problems.count == 2)
    #expect(missing.problems.allSatisfy { $0.message.contains("is missing") })
  }

  @Test func pointsOutsideTheHistoryAreClearErrors() throws {
    let fixture = try StoreFixture(size: 64 * 1024)
    try fixture.append(.bookmark("only"))
    try fixture.closeWriter()
    try fixture.live.ingest(volume: fixture.name)
    let early = #expect(throws: ReelError.self) { try fixture.image(at: .time(Timestamp(nanoseconds: 0))) }
    #expect(early?.message.contains("before volume disk existed") == true)
    let missing = #expect(throws: ReelError.self) { try fixture.image(at: .bookmark("nope")) }
    #expect(missing?.remedy?.contains("\"only\"") == true)
    let future = #expect(throws: ReelError.self) { try fixture.image(at: .seq(99)) }
    #expect(future?.message.contains("ends at seq 1") == true)
  }
}

@Suite struct StoreBlockSizeTests {
  /// Volumes created before the store block size was recorded keep their 64 KiB blocks;
  /// a descriptor from a newer Reel is refused by name, not misread.
  @Test func descriptorVersionsAndTheStoreBlockSize() throws {
    let fixture = try StoreFixture(size: 512 * 1024, seed: 1)
    #expect(fixture.descriptor.storeBlockSize == 256 * 1024)
    try fixture.append(.write(offset: 0, data: [UInt8](repeating: 9, count: 4096)))
    try fixture.closeWriter()
    let path = fixture.store.layout.descriptorPath(fixture.name)
    var json = try #require(
      try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
    #expect(json["storeBlockSize"] as? Int == 256 * 1024 && json["formatVersion"] as? Int == 2)

    json["formatVersion"] = 1
    json.removeValue(forKey: "storeBlockSize")
    try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
    #expect(try fixture.store.layout.descriptor(of: fixture.name).storeBlockSize == 64 * 1024)

    json["formatVersion"] = 3
    try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
    let refused = #expect(throws: ReelError.self) { try fixture.store.layout.descriptor(of: fixture.name) }
    #expect(refused?.kind == .incompatible)
    #expect(refused?.message.contains("volume descriptor version 3 is not supported") == true)
  }

  @Test(arguments: [4096, 96 * 1024, 8 << 20] as [UInt32])
  func unsupportedStoreBlockSizesAreRefused(size: UInt32) throws {
    let fixture = try StoreFixture(size: 512 * 1024, seed: 2)
    let error = #expect(throws: ReelError.self) {
      try Volumes.create(in: fixture.store, name: "other", size: 1 << 20, storeBlockSize: size)
    }
    #expect(error?.kind == .usage)
    #expect(error?.message.contains("store block size \(size)") == true)
  }

  /// The same bytes written to volumes with 64 KiB and 1 MiB store blocks read back the
  /// same at every point.
  @Test(arguments: [64 * 1024, 1 << 20] as [UInt32])
  func historiesReadBackAtAnyStoreBlockSize(storeBlockSize: UInt32) throws {
    let fixture = try StoreFixture(size: 3 << 20, seed: 77, storeBlockSize: storeBlockSize)
    var checkpoints: [Seq] = []
    for _ in 0..<6 {
      for _ in 0..<40 { try fixture.randomChange() }
      let seq = try fixture.append(.flush).seq
      fixture.snapshot(seq)
      checkpoints.append(seq)
    }
    try fixture.closeWriter()
    try fixture.live.ingest(volume: fixture.name)
    for seq in checkpoints {
      #expect(difference(try fixture.image(at: .seq(seq)), fixture.snapshots[seq]!) == nil, "seq \(seq)")
    }
    #expect(try fixture.live.check(readData: true).isClean)
  }
}

@Suite struct WholePackTests {
  /// What an import writes through `createWhole` (direct I/O in a folder) reads back at the
  /// offsets it was given, with the pack's size exact, as the ordinary appends do.
  @Test func aPackWrittenWholeReadsBackAtTheOffsetsItGave() throws {
    let fixture = try StoreFixture(size: 4096)
    let backend = FolderPackBackend(root: fixture.root + "/whole-packs")
    var generator = SystemRandomNumberGenerator()
    for (pack, sizes) in [("aa01", [1, 4095, 65_537, 1 << 20, 300_001, 7]), ("bb02", [Int]())] {
      let writer = try backend.createWhole(pack)
      var expected: [(UInt64, [UInt8])] = []
      for size in sizes {
        let record = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let offset = try writer.append(record)
        #expect(offset == expected.last.map { $0.0 + UInt64($0.1.count) } ?? 0)
        expected.append((offset, record))
      }
      try writer.finish()
      let total = UInt64(sizes.reduce(0, +))
      #expect(writer.size == total)
      #expect(try backend.size(pack) == total)
      for (offset, record) in expected {
        #expect(try backend.read(pack, offset: offset, length: record.count) == record)
      }
      // A later ordinary append continues where the whole write ended.
      #expect(try backend.append(pack, [1, 2, 3]) == total)
    }
  }
}

extension StoreFixture {
  /// A 512 KiB volume of 64 KiB store blocks written whole with random bytes three times,
  /// bookmarked "end" and ingested: most of its packs hold chunks that only old points need.
  static func overwrittenThreeTimes() throws -> (StoreFixture, last: Seq) {
    let fixture = try StoreFixture(size: 512 * 1024, seed: 3, storeBlockSize: 64 * 1024)
    for round in 0..<3 {
      var rng = SplitMix(seed: UInt64(round + 100))
      try fixture.append(.write(offset: 0, data: (0..<(512 * 1024)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }))
    }
    let last = try fixture.append(.bookmark("end")).seq
    try fixture.closeWriter()
    try fixture.live.ingest(volume: fixture.name)
    return (fixture, last)
  }
}
