import Foundation
import ReelCore
import ReelJournal
import ReelTestSupport
import Testing

@testable import ReelStore

/// Ingest of rollback records (journal kind 6) against a model of the volume's bytes.
@Suite struct RollbackIngestTests {
  /// A rollback record covering every block changed after `target`, as the planner makes it.
  func rollbackEntry(_ fixture: StoreFixture, to target: Seq) throws -> JournalEntry {
    try fixture.live.ingest(volume: fixture.name)
    let last = try fixture.openWriter().lastAppendedSeq
    let blockSize = UInt64(fixture.descriptor.storeBlockSize)
    let blocks = try fixture.live.changedBlocks(of: fixture.descriptor, after: target, through: last)
    let extents = blocks.map {
      RollbackPayload.Extent(offset: $0 * blockSize, length: min(blockSize, fixture.descriptor.size - $0 * blockSize))
    }
    return .rollback(RollbackPayload(targetSeq: target, extents: extents))
  }

  @Test(arguments: [1, 2] as [UInt64])
  func rolledBackVolumeReadsAsTheTargetAndEveryEarlierPointStays(seed: UInt64) throws {
    let fixture = try StoreFixture(size: 1 << 20, seed: seed)
    for _ in 0..<40 { try fixture.randomChange() }
    let target = try fixture.openWriter().lastAppendedSeq
    fixture.snapshot(target)
    // Some of it ingested before the target's later changes, some not: the rollback
    // must read the target from the catalog either way.
    try fixture.live.ingest(volume: fixture.name)
    for _ in 0..<60 { try fixture.randomChange() }
    let before = try fixture.openWriter().lastAppendedSeq
    fixture.snapshot(before)
    let rollback = try fixture.append(try rollbackEntry(fixture, to: target))
    fixture.snapshot(rollback.seq)
    for _ in 0..<10 { try fixture.randomChange() }
    let end = try fixture.openWriter().lastAppendedSeq
    fixture.snapshot(end)
    try fixture.live.ingest(volume: fixture.name)

    #expect(fixture.snapshots[rollback.seq] == fixture.snapshots[target])
    for (seq, expected) in fixture.snapshots {
      #expect(try fixture.image(at: .seq(seq)) == expected, "seq \(seq)")
    }
    #expect(
      try fixture.live.rollbacks(of: fixture.descriptor).map(\.targetSeq) == [target])
    #expect(
      try fixture.live.changes(of: fixture.descriptor, after: rollback.seq - 1, through: rollback.seq).map(\.seq)
        == [rollback.seq])
  }

  /// When every touched block's state at the target is one full version, the rollback
  /// stores nothing new: its versions point at the chunks already there.
  @Test func fullBlockStatesReuseTheirChunks() throws {
    let fixture = try StoreFixture(size: 1 << 20, seed: 7, storeBlockSize: 65536)
    let block = Int(fixture.descriptor.storeBlockSize)
    for index in 0..<8 {
      try fixture.append(
        .write(offset: UInt64(index * block), data: (0..<block).map { UInt8(truncatingIfNeeded: $0 &+ index) }))
    }
    let target = try fixture.openWriter().lastAppendedSeq
    fixture.snapshot(target)
    for index in 0..<4 {
      try fixture.append(.write(offset: UInt64(index * block + 512), data: [UInt8](repeating: 0xEE, count: 1024)))
    }
    try fixture.append(.trim(offset: UInt64(5 * block), length: UInt64(block)))
    let entry = try rollbackEntry(fixture, to: target)
    #expect(RollbackPayload.decodeForTest(entry.payload).extents.count == 5)
    try fixture.append(entry)
    let report = try fixture.live.ingest(volume: fixture.name)
    #expect(report.records == 1)
    #expect(report.chunksStored == 0)
    #expect(try fixture.image(at: .latest) == fixture.snapshots[target])
  }

  @Test func misalignedOrOversizedExtentsStopIngestWithTheRecordNamed() throws {
    let fixture = try StoreFixture(size: 1 << 20, seed: 9)
    try fixture.append(.write(offset: 0, data: [UInt8](repeating: 1, count: 4096)))
    let bad = try fixture.append(
      .rollback(RollbackPayload(targetSeq: 0, extents: [.init(offset: 512, length: 65536)])))
    let error = #expect(throws: ReelError.self) { try fixture.live.ingest(volume: fixture.name) }
    #expect(error?.kind == .corrupt)
    #expect(error?.message.contains("seq \(bad.seq)") == true)
    #expect(error?.message.contains("not aligned") == true)
    // What came before the bad record is in the store; nothing after.
    #expect(try fixture.image(at: .latest).prefix(4096).allSatisfy { $0 == 1 })
  }
}

extension RollbackPayload {
  static func decodeForTest(_ bytes: [UInt8]) -> RollbackPayload {
    (try? decode(bytes)) ?? RollbackPayload(targetSeq: 0, extents: [])
  }
}
