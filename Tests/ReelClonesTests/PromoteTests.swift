import Foundation
import GRDB
import ReelClones
import ReelCore
import ReelIO
import ReelJournal
import ReelStore
import ReelTestSupport
import Testing

@Suite struct PromoteTests {
  /// After promote every retained point of the clone reads as before, the clone no longer
  /// reads its origin (the origin can be pruned to the end and deleted), and blocks whose
  /// origin state was one stored chunk share it instead of storing it again.
  @Test(arguments: [1, 2])
  func promotedCloneReadsTheSameWithoutItsOrigin(round: Int) throws {
    let seed = UInt64.random(in: 0...UInt64.max)
    let fixture = try CloneTests.origin(seed: seed)
    let point = fixture.bookmarks["before upgrade"]!
    // Round 2 promotes a clone of a clone: the chain to rebuild spans two volumes.
    var clone = try ClonedVolume(
      live: fixture.live, origin: fixture.name, at: .seq(point), as: "first", model: fixture.snapshots[point]!,
      seed: seed ^ 5)
    if round == 2 {
      for _ in 0..<60 { try clone.randomChange() }
      // A whole block rewritten in the middle clone, so the second clone's promote has a
      // single full version to share from the first clone, not only from the root origin.
      let blockSize = Int(clone.descriptor.storeBlockSize)
      _ = try clone.append(.write(offset: 0, data: (0..<blockSize).map { UInt8(truncatingIfNeeded: $0 / 512 &+ 3) }))
      let middle = try clone.append(.flush)
      try clone.close()
      try fixture.live.ingest(volume: "first")
      clone = try ClonedVolume(
        live: fixture.live, origin: "first", at: .seq(middle), as: "second", model: clone.model, seed: seed ^ 6)
    }
    for _ in 0..<100 { try clone.randomChange() }
    clone.snapshots[try clone.append(.flush)] = clone.model
    for _ in 0..<100 { try clone.randomChange() }
    clone.snapshots[try clone.append(.flush)] = clone.model
    try clone.close()
    try fixture.closeWriter()
    try fixture.live.ingest(volume: clone.name)
    let chunksBefore = fixture.chunkHashes.count

    let report = try Clones.promote(live: fixture.live, volume: clone.name)
    #expect(report.promotion.blocks > 0)
    #expect(report.promotion.chunksShared > 0)
    #expect(fixture.chunkHashes.count - chunksBefore == report.promotion.chunksStored)
    #expect(try fixture.live.origin(of: clone.descriptor) == nil)
    for (seq, snapshot) in clone.snapshots {
      #expect(difference(try clone.image(at: .seq(seq)), snapshot) == nil, "seed \(seed): seq \(seq)")
    }
    #expect(difference(try clone.image(at: .latest), clone.model) == nil, "seed \(seed)")

    // Nothing reads the origins any more: they can go entirely.
    if round == 2 {
      _ = try Clones.delete(live: fixture.live, volume: "first", force: true, unexported: { _ in nil })
    }
    _ = try Clones.delete(live: fixture.live, volume: fixture.name, force: true, unexported: { _ in nil })
    for (seq, snapshot) in clone.snapshots {
      #expect(difference(try clone.image(at: .seq(seq)), snapshot) == nil, "seed \(seed): seq \(seq) alone")
    }
    let check = try fixture.live.check(readData: true)
    #expect(check.isClean, "\(check.problems)")

    let again = #expect(throws: ReelError.self) { try Clones.promote(live: fixture.live, volume: clone.name) }
    #expect(again?.message.contains("is not a clone") == true)
  }

  /// `store check` reports a clone whose origin's folder is gone (deleted behind Reel's
  /// back), but not the rows of a clone whose creation was cut short before its rename.
  @Test func storeCheckKnowsCloneLinks() throws {
    let fixture = try CloneTests.origin(seed: 13)
    try fixture.closeWriter()
    let clone = try Clones.create(live: fixture.live, origin: fixture.name, at: .latest, as: "copy")
    #expect(try fixture.live.check(readData: false).isClean)

    // A clone killed between its catalog commit and its rename: rows and a pending mark, no folder.
    let layout = fixture.store.layout
    try Durable.rename(layout.volumeDirectory("copy"), to: layout.volumesDirectory + "/.copy.creating-999999")
    try fixture.store.catalog.database.write { db in
      try Catalog.markPending(db, volumeID: clone.volumeID, operation: "clone")
    }
    let interrupted = try fixture.live.check(readData: false)
    #expect(interrupted.isClean, "\(interrupted.problems)")
    #expect(interrupted.interruptedVolumes == ["clone of volume copy"])
    #expect(try fixture.live.clones(of: fixture.descriptor).isEmpty)
    // The next clone settles it: rows deleted, the staging folder of the dead process removed.
    _ = try Clones.create(live: fixture.live, origin: fixture.name, at: .latest, as: "copy")
    #expect(try fixture.live.pendingVolumes().isEmpty)
    #expect(try FileManager.default.contentsOfDirectory(atPath: layout.volumesDirectory).sorted() == ["copy", "disk"])
    #expect(try fixture.live.check(readData: true).isClean)

    // The origin's folder gone without `reel volume delete`: the clone's reads are broken.
    try FileManager.default.removeItem(atPath: layout.volumeDirectory(fixture.name))
    let broken = try fixture.live.check(readData: false)
    #expect(
      broken.problems.contains { $0.message.contains("volume copy is a clone of volume id") }, "\(broken.problems)")
  }
}
