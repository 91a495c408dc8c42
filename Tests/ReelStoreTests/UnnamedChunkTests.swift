import Foundation
import GRDB
import ReelCodec
import ReelCore
import ReelTestSupport
import Testing

@testable import ReelStore

/// Catalog v9: ingest stores a partial version's chunk without its name (docs/store-format.md,
/// "Unnamed chunks"); every read, check and repair finds it by its row and checks it against
/// the name its record claims.
@Suite struct UnnamedChunkTests {
  static func namedness(_ fixture: StoreFixture) throws -> (partialUnnamed: Int, partialNamed: Int, fullUnnamed: Int) {
    try fixture.live.catalog.database.read { db in
      let row = try Row.fetchOne(
        db,
        sql: """
          SELECT SUM(v.full = 0 AND c.digest IS NULL) AS a, SUM(v.full = 0 AND c.digest IS NOT NULL) AS b,
            SUM(v.full = 1 AND c.digest IS NULL) AS c
          FROM block_version v JOIN chunk c ON c.id = v.chunk_id
          """)!
      return (row["a"] ?? 0, row["b"] ?? 0, row["c"] ?? 0)
    }
  }

  @Test func partialVersionsChunksAreUnnamedAndEveryPointReadsBack() throws {
    let fixture = try StoreFixture(size: 1 << 20, seed: 21, storeBlockSize: 64 * 1024)
    var checkpoints: [Seq] = []
    for round in 0..<3 {
      checkpoints.append(try fixture.randomChanges(120, thenBookmark: "round \(round)"))
      try fixture.live.ingest(volume: fixture.name)
    }
    let counts = try Self.namedness(fixture)
    #expect(counts.partialUnnamed > 100, "\(counts)")
    #expect(counts.partialNamed == 0 && counts.fullUnnamed == 0, "\(counts)")
    // Consolidation read unnamed chunks back to build full versions.
    let consolidated = try fixture.live.catalog.database.read { db in
      try Int.fetchOne(
        db, sql: "SELECT COUNT(*) FROM block_version WHERE full = 1 AND seq > 0 AND chunk_id IS NOT NULL")
    }
    #expect((consolidated ?? 0) > 0)
    for seq in checkpoints {
      #expect(difference(try fixture.image(at: .seq(seq)), fixture.snapshots[seq]) == nil, "seq \(seq)")
    }
    let check = try fixture.live.check(readData: true)
    #expect(check.isClean, "\(check.problems)")
    #expect(check.chunksRead == fixture.chunkHashes.count)
  }

  /// Within one batch a repeated partial content is stored once; a later batch does not
  /// look for it (the catalog cannot find it by name) and stores it again.
  @Test func repeatedPartialContentSharesARowWithinABatchOnly() throws {
    let fixture = try StoreFixture(size: 512 * 1024, seed: 22, storeBlockSize: 64 * 1024)
    let content = (0..<4096).map { UInt8(truncatingIfNeeded: $0 * 7 + 1) }
    try fixture.append(.write(offset: 4096, data: content))
    try fixture.append(.write(offset: 65536 + 8192, data: content))
    try fixture.live.ingest(volume: fixture.name)
    let afterFirst = try fixture.live.catalog.database.read { db in
      try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chunk WHERE digest IS NULL")
    }
    #expect(afterFirst == 1)
    let seq = try fixture.append(.write(offset: 2 * 65536, data: content)).seq
    fixture.snapshot(seq)
    try fixture.live.ingest(volume: fixture.name)
    let afterSecond = try fixture.live.catalog.database.read { db in
      try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chunk WHERE digest IS NULL")
    }
    #expect(afterSecond == 2)
    #expect(difference(try fixture.image(at: .seq(seq)), fixture.snapshots[seq]) == nil)
    #expect(fixture.chunkHashes == [SHA256Digest.hash(content).hex, SHA256Digest.hash(content).hex])
    // Row ids are never reused (readers cache unnamed chunks by row), not even the newest
    // one's after prune would have deleted it.
    try fixture.live.catalog.database.write { db in
      let newest = try #require(try Int64.fetchOne(db, sql: "SELECT MAX(id) FROM chunk"))
      try db.execute(sql: "DELETE FROM block_version WHERE chunk_id = ?", arguments: [newest])
      try db.execute(sql: "DELETE FROM chunk WHERE id = ?", arguments: [newest])
      try db.execute(sql: "INSERT INTO chunk (digest, pack_number, offset, length, size) VALUES (NULL, NULL, 0, 0, 0)")
      #expect(db.lastInsertedRowID > newest)
    }
  }

  /// Damage to an unnamed chunk is found and named by its row, with what it affects; a read
  /// that needs it fails, never returning other bytes.
  @Test func aDamagedUnnamedChunkIsReportedByItsRow() throws {
    let fixture = try StoreFixture(size: 512 * 1024, seed: 23, storeBlockSize: 64 * 1024)
    try fixture.append(.write(offset: 65536, data: [UInt8](repeating: 0x11, count: 65536)))
    let seq = try fixture.append(.write(offset: 65536 + 4096, data: [UInt8](repeating: 0x22, count: 4096))).seq
    try fixture.live.ingest(volume: fixture.name)
    let victim = try #require(
      try fixture.live.catalog.database.read { db in
        try Row.fetchOne(db, sql: "SELECT id, pack, offset, length FROM chunk_named WHERE hash IS NULL")
      })
    try flip(
      fixture.packPath(victim["pack"]), at: UInt64(victim["offset"] as Int64) + UInt64(victim["length"] as Int64) - 1)

    let check = try fixture.live.check(readData: true)
    #expect(check.problems.count == 1)
    let problem = try #require(check.problems.first)
    #expect(problem.chunkRow == victim["id"] as Int64)
    #expect(problem.message.contains("catalog row \(victim["id"] as Int64)"), "\(problem.message)")
    #expect(problem.affects.first?.contains("volume disk bytes 65536..<131072 from seq \(seq)") == true, "\(problem)")
    let view = try VolumeView(live: LiveStore(store: fixture.store), volume: fixture.name, at: .seq(seq))
    let refusal = #expect(throws: ReelError.self) { try view.read(offset: 65536, length: 65536) }
    #expect(refusal?.kind == .corrupt)
    // Points before the partial version do not need it.
    #expect(
      try VolumeView(live: fixture.live, volume: fixture.name, at: .seq(seq - 1)).read(offset: 65536, length: 4)
        == [0x11, 0x11, 0x11, 0x11])
  }

  /// Prune's repack finds an unnamed chunk by its pack in one scan (schema v9 keeps no
  /// index by pack) and moves it by row.
  @Test func pruneRepacksUnnamedChunks() throws {
    let fixture = try StoreFixture(size: 512 * 1024, seed: 24, storeBlockSize: 64 * 1024)
    for round in 0..<3 {
      var rng = SplitMix(seed: UInt64(round + 200))
      try fixture.append(.write(offset: 0, data: (0..<(512 * 1024)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }))
    }
    try fixture.append(.write(offset: 70_000, data: [UInt8](repeating: 0x77, count: 4096)))
    let last = try fixture.append(.bookmark("end")).seq
    try fixture.closeWriter()
    try fixture.live.ingest(volume: fixture.name)
    func unnamed() throws -> Row? {
      try fixture.live.catalog.database.read { db in
        try Row.fetchOne(db, sql: "SELECT id, pack FROM chunk_named WHERE hash IS NULL")
      }
    }
    let before = try #require(try unnamed())
    let report = try fixture.live.prune(
      volume: fixture.name, keepWithin: .seconds(0), keepBookmarks: false, safetyMargin: .seconds(0),
      now: fixture.times[last]!)
    #expect(report.chunksDeleted == 16)
    let after = try #require(try unnamed())
    #expect(after["id"] as Int64 == before["id"] as Int64)
    #expect(after["pack"] as String != before["pack"] as String, "the pack was repacked")
    #expect(!fixture.packFiles.keys.contains(before["pack"] as String))
    #expect(difference(try fixture.image(at: .latest), fixture.model) == nil)
    #expect(try fixture.live.check(readData: true).isClean)
  }
}
