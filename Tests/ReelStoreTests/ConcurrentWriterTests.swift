import Foundation
import GRDB
import ReelCore
import ReelTestSupport
import Testing

@testable import ReelStore

/// Every writer of packs and catalog rows opens its own `LiveStore`, as separate processes
/// do (`reel serve`'s background ingest, `reel seal`'s catch-up ingest, prune, rehydrate):
/// none may trust what it learnt about a pack before it took the store lock.
@Suite struct ConcurrentWriterTests {
  @Test func writersInTurnNeverOverwriteEachOthersChunks() throws {
    let fixture = try StoreFixture(size: 4 << 20)
    // A second writer on the same folder, as another process would open it.
    let other = LiveStore(store: try Store.open(fixture.store.layout))
    var checkpoints: [Seq] = []
    for round in 0..<6 {
      checkpoints.append(try fixture.randomChanges(40, thenBookmark: "round \(round)"))
      // Alternate: each writer appends to the newest pack after the other grew it.
      try (round % 2 == 0 ? fixture.live : other).ingest(volume: fixture.name)
    }
    let report = try LiveStore(store: try Store.open(fixture.store.layout)).check(readData: true)
    #expect(report.problems.map(\.message) == [])
    for seq in checkpoints {
      #expect(difference(try fixture.image(at: .seq(seq)), fixture.snapshots[seq]) == nil, "image at seq \(seq)")
    }
  }

  @Test func checkWithoutReadingDataFindsOverlappingAndOutOfRangeRows() throws {
    let fixture = try StoreFixture(size: 2 << 20)
    for _ in 0..<60 { try fixture.randomChange() }
    try fixture.live.ingest(volume: fixture.name)
    #expect(try fixture.live.check(readData: false).isClean)
    let rows = try fixture.live.catalog.database.read { db in
      try Row.fetchAll(db, sql: "SELECT id, pack, offset, length FROM chunk_named ORDER BY pack, offset LIMIT 2")
    }
    try #require(rows.count == 2 && (rows[0]["pack"] as String) == (rows[1]["pack"] as String))
    // The second row claims to start inside the first, as an overwritten append would.
    try fixture.live.catalog.database.write { db in
      try db.execute(
        sql: "UPDATE chunk SET offset = ? WHERE id = ?",
        arguments: [(rows[0]["offset"] as Int64) + 8, rows[1]["id"] as Int64])
    }
    let overlapping = try fixture.live.check(readData: false)
    #expect(overlapping.problems.contains { $0.message.contains("overlaps") }, "\(overlapping.problems)")
    try fixture.live.catalog.database.write { db in
      try db.execute(
        sql: "UPDATE chunk SET offset = ? WHERE id = ?", arguments: [Int64(1) << 40, rows[1]["id"] as Int64])
    }
    let outside = try fixture.live.check(readData: false)
    #expect(outside.problems.contains { $0.message.contains("past the committed end") }, "\(outside.problems)")
  }
}
