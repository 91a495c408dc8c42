import Foundation
import GRDB
import ReelCodec
import ReelCore
import ReelTestSupport
import Testing

@testable import ReelStore

/// Damage costs only the points that need the damaged bytes.
/// Changes one byte of a file in place (same inode), as a failing disk would.
func flip(_ path: String, at offset: UInt64) throws {
  let handle = try #require(FileHandle(forUpdatingAtPath: path))
  defer { try? handle.close() }
  try handle.seek(toOffset: offset)
  let original = try #require(try handle.read(upToCount: 1))
  try handle.seek(toOffset: offset)
  try handle.write(contentsOf: Data([original[0] ^ 0x81]))
}

@Suite struct StoreDamageTests {
  /// A store whose block 0 has one stored chunk, flipped on disk after ingest, and the
  /// seq of the write that stored it; "early" is a bookmark before that write.
  static func damagedStore() throws -> (fixture: StoreFixture, damagedSeq: Seq, chunk: String) {
    let fixture = try StoreFixture(size: 512 * 1024, seed: 11, storeBlockSize: 64 * 1024)
    try fixture.append(.write(offset: 65536, data: [UInt8](repeating: 0x11, count: 65536)))
    let early = try fixture.append(.bookmark("early")).seq
    fixture.snapshot(early)
    let damagedSeq = try fixture.append(.write(offset: 0, data: (0..<65536).map { UInt8(truncatingIfNeeded: $0 * 7) }))
      .seq
    fixture.snapshot(damagedSeq)
    try fixture.live.ingest(volume: fixture.name)
    let row = try #require(
      try fixture.live.catalog.database.read { db in
        try Row.fetchOne(
          db,
          sql:
            "SELECT c.hash, c.pack, c.offset, c.length FROM chunk_named c JOIN block_version v ON v.chunk_id = c.id WHERE v.block = 0"
        )
      })
    try flip(fixture.packPath(row["pack"]), at: UInt64(row["offset"] as Int64) + UInt64(row["length"] as Int64) - 10)
    return (fixture, damagedSeq, row["hash"])
  }

  @Test func ingestGoesOnPastADamagedChainAndEarlierPointsStillRestore() throws {
    let (fixture, damagedSeq, chunk) = try Self.damagedStore()
    // More partial writes to block 0 than a chain may hold: consolidating them needs the
    // damaged chunk.
    for index in 0..<(LiveStoreFormat.maxPartials + 4) {
      try fixture.append(.write(offset: UInt64(index * 512), data: [UInt8](repeating: UInt8(index), count: 512)))
    }
    try fixture.append(.write(offset: 4 * 65536, data: [UInt8](repeating: 0x44, count: 65536)))
    let late = try fixture.append(.bookmark("late")).seq
    fixture.snapshot(late)
    try fixture.closeWriter()
    let fresh = LiveStore(store: try Store.open(fixture.store.layout))
    let report = try fresh.ingest(volume: fixture.name)
    #expect(report.lastSeq == late)
    #expect(report.damage.contains { $0.contains(chunk) }, "\(report.damage)")

    #expect(difference(try fixture.image(at: .bookmark("early")), fixture.snapshots[damagedSeq - 1]) == nil)
    // Through the restore path, which catches the store up first.
    let output = fixture.root + "/early.img"
    let restored = try Restore.run(store: fixture.store, volume: fixture.name, at: .bookmark("early"), output: output)
    #expect(restored.resolved.seq == damagedSeq - 1)
    let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: output)))
    #expect(difference(bytes, fixture.snapshots[damagedSeq - 1]) == nil)
    // The newest point still reads every block that does not need the damaged chunk.
    let view = try VolumeView(live: LiveStore(store: fixture.store), volume: fixture.name, at: .bookmark("late"))
    #expect(try view.read(offset: 65536, length: 65536 * 7) == Array(fixture.snapshots[late]![65536...]))
    let damaged = #expect(throws: ReelError.self) { try view.read(offset: 0, length: 512) }
    #expect(damaged?.kind == .corrupt)
  }

  /// Changes the last byte of every stored chunk record.
  static func damageEveryChunk(_ fixture: StoreFixture) throws -> Int {
    let rows = try fixture.live.catalog.database.read { db in
      try Row.fetchAll(db, sql: "SELECT pack, offset, length FROM chunk_named WHERE pack IS NOT NULL")
    }
    for row in rows {
      try flip(fixture.packPath(row["pack"]), at: UInt64(row["offset"] as Int64) + UInt64(row["length"] as Int64) - 1)
    }
    return rows.count
  }

  @Test func repairRebuildsEveryDamagedChunkFromTheJournalAndTheBase() throws {
    let size = 1 << 20
    var seedRng = SplitMix(seed: 42)
    let base = (0..<size).map { _ in UInt8(truncatingIfNeeded: seedRng.next() % 5) }
    let fixture = try StoreFixture(size: size, base: base, seed: 5, storeBlockSize: 64 * 1024)
    var checkpoints: [Seq] = [0]
    for round in 0..<3 {
      checkpoints.append(try fixture.randomChanges(150, thenBookmark: "round \(round)"))
      try fixture.live.ingest(volume: fixture.name)
    }
    try fixture.closeWriter()
    // Consolidated versions exist, so their rebuild needs the chain before them.
    let consolidated = try fixture.live.catalog.database.read { db in
      try Int.fetchOne(
        db, sql: "SELECT COUNT(*) FROM block_version WHERE full = 1 AND seq > 0 AND chunk_id IS NOT NULL")
    }
    #expect((consolidated ?? 0) > 0)
    let damaged = try Self.damageEveryChunk(fixture)
    let live = LiveStore(store: try Store.open(fixture.store.layout))
    #expect(try live.check(readData: true).problems.count == damaged)

    let report = try live.repair()
    #expect(report.damaged.count == damaged)
    #expect(report.fromJournal.count == damaged)
    #expect(report.unrepaired.isEmpty, "\(report.unrepaired)")
    #expect(try live.check(readData: true).isClean)
    for seq in checkpoints {
      let view = try VolumeView(live: LiveStore(store: fixture.store), volume: fixture.name, at: .seq(seq))
      #expect(difference(try view.read(offset: 0, length: Int(view.size)), fixture.snapshots[seq]) == nil, "seq \(seq)")
    }
    // Nothing left to do the second time.
    #expect(try live.repair().damaged.isEmpty)
  }

  /// A lost chunk (its row has no pack: repair could not give it back) is stored afresh
  /// when ingest meets the same content again, and the old points that needed it read
  /// again: the row takes the new record's place.
  @Test func ingestingALostChunksContentAgainBringsBackThePointsThatNeedIt() throws {
    let fixture = try StoreFixture(size: 512 * 1024, seed: 12, storeBlockSize: 64 * 1024)
    let content = (0..<65536).map { UInt8(truncatingIfNeeded: $0 * 13 + 5) }
    let written = try fixture.append(.write(offset: 0, data: content)).seq
    fixture.snapshot(written)
    try fixture.live.ingest(volume: fixture.name)
    let chunk = SHA256Digest.hash(content).hex
    try fixture.live.catalog.database.write { db in
      try db.execute(
        sql: "UPDATE chunk SET pack_number = NULL, offset = 0, length = 0 WHERE digest = reel_digest(?)",
        arguments: [chunk])
      #expect(db.changesCount == 1)
    }
    #expect(throws: ReelError.self) { try fixture.image(at: .seq(written)) }
    let row = try fixture.live.catalog.database.read { db in
      try Int64.fetchOne(db, sql: "SELECT id FROM chunk WHERE digest = reel_digest(?)", arguments: [chunk])
    }
    #expect(try fixture.live.check(readData: false).problems.contains { $0.chunkRow == row })

    try fixture.append(.write(offset: 3 * 65536, data: content))
    try fixture.live.ingest(volume: fixture.name)
    #expect(difference(try fixture.image(at: .seq(written)), fixture.snapshots[written]) == nil)
    #expect(try fixture.live.check(readData: true).isClean)
    #expect(fixture.chunkHashes.filter { $0 == chunk }.count == 1)
  }

  /// A version whose chunk row is gone altogether (not lost: missing) must never read as
  /// zeros: readers refuse it naming the chunk id, and check reports the version.
  @Test func aVersionWhoseChunkRowIsMissingIsRefusedNotReadAsZeros() throws {
    let fixture = try StoreFixture(size: 512 * 1024, seed: 13, storeBlockSize: 64 * 1024)
    let written = try fixture.append(.write(offset: 0, data: [UInt8](repeating: 0x5A, count: 65536))).seq
    try fixture.live.ingest(volume: fixture.name)
    let chunkID = try #require(
      try fixture.live.catalog.database.write { db -> Int64? in
        let id = try Int64.fetchOne(
          db, sql: "SELECT chunk_id FROM block_version WHERE block = 0 AND seq = ?", arguments: [Int64(written)])
        try db.execute(sql: "DELETE FROM chunk WHERE id = ?", arguments: [id])
        return id
      })
    let refusal = #expect(throws: ReelError.self) { try fixture.image(at: .seq(written)) }
    #expect(refusal?.kind == .corrupt)
    #expect(refusal?.message.contains("chunk id \(chunkID)") == true, "\(String(describing: refusal))")
    let check = try fixture.live.check(readData: false)
    #expect(check.problems.contains { $0.message.contains("refers to chunk id \(chunkID)") }, "\(check.problems)")
  }

  @Test func repairSaysWhatItCouldNotGiveBack() throws {
    let (fixture, damagedSeq, chunk) = try Self.damagedStore()
    try fixture.closeWriter()
    // The journal no longer has the record the chunk was made from.
    for name in try FileManager.default.contentsOfDirectory(atPath: fixture.store.layout.journalDirectory(fixture.name))
    where name.hasSuffix(".rjs") {
      try FileManager.default.removeItem(atPath: fixture.store.layout.journalDirectory(fixture.name) + "/" + name)
    }
    let live = LiveStore(store: try Store.open(fixture.store.layout))
    let report = try live.repair()
    #expect(report.unrepaired.map(\.chunk) == [chunk])
    #expect(report.unrepaired.first?.affects.first?.contains("volume disk bytes 0..<65536") == true)
    // Its row says it is lost (no pack), so the same content ingested later is stored
    // afresh, not reused; the versions still name it.
    #expect(
      try live.catalog.database.read { db in
        try String.fetchAll(db, sql: "SELECT hash FROM chunk_named WHERE pack IS NULL")
      } == [chunk])
    #expect(try live.check(readData: false).problems.contains { $0.chunkRow == report.unrepaired.first?.row })
    #expect(difference(try fixture.image(at: .bookmark("early")), fixture.snapshots[damagedSeq - 1]) == nil)
  }
}
