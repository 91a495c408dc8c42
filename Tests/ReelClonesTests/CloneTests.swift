import Foundation
import GRDB
import ReelClones
import ReelCore
import ReelIO
import ReelJournal
import ReelStore
import ReelTestSupport
import Testing

@Suite struct CloneTests {
  /// A history with hot blocks (long partial chains) and a bookmark in the middle.
  static func origin(seed: UInt64, storeBlockSize: UInt32 = 64 * 1024) throws -> StoreFixture {
    let fixture = try StoreFixture(size: 1 << 20, seed: seed, storeBlockSize: storeBlockSize)
    for index in 0..<300 {
      try fixture.randomChange()
      if index == 150 {
        // One whole store block written just before the bookmark: its state there is one
        // full version, the case promote shares instead of storing again.
        let blockSize = Int(fixture.descriptor.storeBlockSize)
        let data = (0..<blockSize).map { UInt8(truncatingIfNeeded: $0 / 512 &+ 7) }
        try fixture.append(.write(offset: UInt64(fixture.model.count - blockSize), data: data))
        let seq = try fixture.append(.bookmark("before upgrade")).seq
        fixture.snapshot(seq)
      }
      if index % 37 == 0 { fixture.snapshot(try fixture.append(.flush).seq) }
    }
    fixture.snapshot(try fixture.append(.flush).seq)
    return fixture
  }

  /// Clones at a bookmark, a random seq and a random instant read exactly what the origin
  /// held there; writes to either side afterwards stay on that side; both keep reading
  /// their own past.
  @Test(arguments: [1, 2, 3])
  func cloneReadsTheOriginAtItsPointAndWritesStayOnTheirSide(round: Int) throws {
    let seed = UInt64.random(in: 0...UInt64.max)
    let fixture = try Self.origin(seed: seed, storeBlockSize: round == 2 ? 256 * 1024 : 64 * 1024)
    try fixture.closeWriter()
    let snapshotSeqs = fixture.snapshots.keys.sorted()
    let randomSeq = snapshotSeqs[Int(fixture.rng.next() % UInt64(snapshotSeqs.count))]
    let point: Point
    let expectedSeq: Seq
    switch round {
    case 1:
      point = .bookmark("before upgrade")
      expectedSeq = fixture.bookmarks["before upgrade"]!
    case 2:
      point = .seq(randomSeq)
      expectedSeq = randomSeq
    default:
      // An instant just after a record (and before the next) is that record.
      let next = fixture.times[randomSeq + 1]
      let instant = Timestamp(nanoseconds: (fixture.times[randomSeq] ?? fixture.descriptor.created).nanoseconds + 1)
      point = next.map { $0 > instant } ?? true ? .time(instant) : .seq(randomSeq)
      expectedSeq = randomSeq
    }
    let expected = fixture.snapshots[expectedSeq]!
    let clone = try ClonedVolume(
      live: fixture.live, origin: fixture.name, at: point, as: "clone", model: expected, seed: seed ^ 1)
    #expect(clone.report.originSeq == expectedSeq)
    #expect(difference(try clone.image(at: .latest), expected) == nil, "seed \(seed): fresh clone")
    #expect(clone.descriptor.size == fixture.descriptor.size)
    #expect(clone.descriptor.storeBlockSize == fixture.descriptor.storeBlockSize)
    #expect(clone.descriptor.id != fixture.descriptor.id)

    // Writes on both sides, ingested in steps.
    for step in 0..<3 {
      for _ in 0..<80 {
        try clone.randomChange()
        try fixture.randomChange()
      }
      clone.snapshots[try clone.append(.flush)] = clone.model
      fixture.snapshot(try fixture.append(.flush).seq)
      if step != 1 {
        try fixture.live.ingest(volume: clone.name)
        try fixture.live.ingest(volume: fixture.name)
      }
    }
    try clone.close()
    try fixture.closeWriter()
    try fixture.live.ingest(volume: clone.name)
    try fixture.live.ingest(volume: fixture.name)
    #expect(difference(try clone.image(at: .latest), clone.model) == nil, "seed \(seed): clone after writes")
    #expect(difference(try fixture.image(at: .latest), fixture.model) == nil, "seed \(seed): origin after writes")
    for (seq, snapshot) in clone.snapshots {
      #expect(difference(try clone.image(at: .seq(seq)), snapshot) == nil, "seed \(seed): clone at seq \(seq)")
    }
    #expect(difference(try fixture.image(at: .seq(expectedSeq)), expected) == nil, "seed \(seed): origin's past")
    // The clone's creation instant is its clone point.
    #expect(difference(try clone.image(at: .time(clone.descriptor.created)), expected) == nil)
  }

  /// A clone of a clone reads through two levels; each level's writes stay on its side.
  @Test func clonesOfClonesReadThroughEveryLevel() throws {
    let seed = UInt64.random(in: 0...UInt64.max)
    let fixture = try Self.origin(seed: seed)
    try fixture.closeWriter()
    let first = try ClonedVolume(
      live: fixture.live, origin: fixture.name, at: .bookmark("before upgrade"), as: "first",
      model: fixture.snapshots[fixture.bookmarks["before upgrade"]!]!, seed: seed ^ 2)
    for _ in 0..<120 { try first.randomChange() }
    let firstPoint = try first.append(.flush)
    first.snapshots[firstPoint] = first.model
    try fixture.live.ingest(volume: "first")
    let second = try ClonedVolume(
      live: fixture.live, origin: "first", at: .seq(firstPoint), as: "second", model: first.model, seed: seed ^ 3)
    #expect(second.report.originSeq == firstPoint)
    for _ in 0..<120 {
      try second.randomChange()
      try first.randomChange()
    }
    try first.close()
    try second.close()
    try fixture.live.ingest(volume: "first")
    try fixture.live.ingest(volume: "second")
    #expect(difference(try second.image(at: .latest), second.model) == nil, "seed \(seed): second")
    #expect(difference(try second.image(at: .seq(firstPoint)), first.snapshots[firstPoint]) == nil, "seed \(seed)")
    #expect(difference(try first.image(at: .latest), first.model) == nil, "seed \(seed): first")
    #expect(difference(try fixture.image(at: .latest), fixture.model) == nil, "seed \(seed): origin")

    // Points before a clone existed belong to its origin, and the refusal says so.
    let origin = fixture.bookmarks["before upgrade"]!
    let error = #expect(throws: ReelError.self) { try second.image(at: .seq(origin)) }
    #expect(error?.message.contains("second was cloned from first at seq \(firstPoint)") == true, "\(error!)")
    #expect(error?.message.contains("use first") == true)
    let early = #expect(throws: ReelError.self) {
      try first.image(at: .time(Timestamp(nanoseconds: first.descriptor.created.nanoseconds - 1)))
    }
    #expect(early?.message.contains("first was cloned from disk at seq \(origin)") == true, "\(early!)")
  }

  /// Clone creation copies nothing: the clone's folder holds a descriptor and a journal of
  /// one empty segment continuing after the clone point; no block version is written.
  @Test func cloneIsOnlyAJournalContinuationAndCatalogRows() throws {
    let fixture = try Self.origin(seed: 7)
    try fixture.closeWriter()
    try fixture.live.ingest(volume: fixture.name)
    let versionsBefore = try fixture.store.catalog.database.read { db in
      try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM block_version")!
    }
    let report = try Clones.create(live: fixture.live, origin: fixture.name, at: .latest, as: "quick")
    let layout = fixture.store.layout
    let versionsAfter = try fixture.store.catalog.database.read { db in
      try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM block_version")!
    }
    #expect(versionsAfter == versionsBefore)
    #expect(report.originSeq == fixture.times.keys.max())
    let summary = try JournalReader(
      directory: layout.journalDirectory("quick"), volume: VolumeID(string: report.volumeID)!
    )
    .summarize()
    #expect(summary.recordCount == 0)
    #expect(
      try JournalWriter.open(directory: layout.journalDirectory("quick"), volume: VolumeID(string: report.volumeID)!).1
        .lastSeq == report.originSeq)
    let entries = try FileManager.default.contentsOfDirectory(atPath: layout.volumeDirectory("quick")).sorted()
    #expect(!entries.contains("live.img"))
    #expect(!entries.contains(where: { $0.hasPrefix(".") }))
    #expect(
      try FileManager.default.contentsOfDirectory(atPath: layout.volumesDirectory).filter { $0.hasPrefix(".") }.isEmpty)
    var info = stat()
    #expect(stat(layout.volumeDirectory("quick"), &info) == 0 && info.st_mode & 0o777 == 0o700)
    #expect(
      try fixture.live.origin(of: layout.descriptor(of: "quick"))?.originVolumeID == fixture.descriptor.id.description)
    #expect(try fixture.live.clones(of: fixture.descriptor).map(\.clone.name) == ["quick"])
  }

  /// Bad input: an existing name, names with `/` or `..`, a point before the volume
  /// existed, a pruned point, an unknown origin. Clear errors, nothing made.
  @Test func badInputIsRefusedAndChangesNothing() throws {
    let fixture = try Self.origin(seed: 11)
    try fixture.closeWriter()
    try fixture.live.ingest(volume: fixture.name)
    let layout = fixture.store.layout
    func volumes() -> [String] {
      (try? FileManager.default.contentsOfDirectory(atPath: layout.volumesDirectory).sorted()) ?? []
    }
    func rows() throws -> Int {
      try fixture.store.catalog.database.read { db in
        try Int.fetchOne(
          db,
          sql:
            "SELECT (SELECT COUNT(*) FROM volume) + (SELECT COUNT(*) FROM volume_origin) + (SELECT COUNT(*) FROM ingest_state)"
        )!
      }
    }
    let before = (volumes(), try rows())
    func refused(_ name: String, at point: Point = .latest, origin: String = "disk", _ expected: String) {
      let error = #expect(throws: ReelError.self) {
        try Clones.create(live: fixture.live, origin: origin, at: point, as: name)
      }
      #expect(error?.message.contains(expected) == true, "\(String(describing: error))")
      #expect(volumes() == before.0)
      #expect((try? rows()) == before.1)
    }
    refused("disk", "a volume named \"disk\" already exists")
    refused("a/b", "invalid volume name \"a/b\"")
    refused("..", "invalid volume name \"..\"")
    refused("../escape", "invalid volume name")
    refused(
      "new", at: .time(Timestamp(nanoseconds: fixture.descriptor.created.nanoseconds - 1_000_000_000)),
      "before volume disk existed")
    refused("new", at: .seq(1_000_000), "has no seq 1000000")
    refused("new", at: .bookmark("no such mark"), "has no bookmark")
    refused("new", origin: "missing", "no volume named \"missing\"")
    _ = try fixture.live.prune(volume: fixture.name, keepWithin: .zero, keepBookmarks: false)
    refused("new", at: .seq(3), "was pruned")
  }

  /// Prune of the origin keeps every block state its clones read, says which clone holds
  /// which point, and the clone reads the same bytes afterwards.
  @Test func pruneKeepsClonePoints() throws {
    let seed = UInt64.random(in: 0...UInt64.max)
    let fixture = try Self.origin(seed: seed)
    let point = fixture.bookmarks["before upgrade"]!
    let clone = try ClonedVolume(
      live: fixture.live, origin: fixture.name, at: .seq(point), as: "kept", model: fixture.snapshots[point]!,
      seed: seed ^ 4)
    for _ in 0..<300 { try fixture.randomChange() }
    for _ in 0..<40 { try clone.randomChange() }
    try fixture.closeWriter()
    try clone.close()
    try fixture.live.ingest(volume: "kept")
    let report = try fixture.live.prune(volume: fixture.name, keepWithin: .zero, keepBookmarks: false)
    #expect(report.versionsDeleted > 0)
    #expect(report.keptForClones == [KeptClonePoint(seq: point, clone: "kept")])
    #expect(difference(try clone.image(at: .latest), clone.model) == nil, "seed \(seed)")
    #expect(difference(try clone.image(at: .seq(point)), fixture.snapshots[point]) == nil, "seed \(seed)")
    #expect(try fixture.live.check(readData: true).isClean)

    // The records that changed the clone before its point are its origin's.
    let changes = try fixture.live.changes(of: clone.descriptor, after: 0, through: Seq.max).map(\.seq)
    let originChanges = try fixture.live.changes(of: fixture.descriptor, after: 0, through: point).map(\.seq)
    #expect(changes.prefix(while: { $0 <= point }) == originChanges[...])
    #expect(changes.count > originChanges.count)
    #expect(changes == changes.sorted())

    // Pruning the clone itself keeps its newest state, read partly through the origin.
    let clonePrune = try fixture.live.prune(volume: "kept", keepWithin: .zero, keepBookmarks: false)
    #expect(clonePrune.retainedFromSeq > point)
    #expect(difference(try clone.image(at: .latest), clone.model) == nil, "seed \(seed): clone pruned")
    #expect(try fixture.live.check(readData: true).isClean)
  }
}
