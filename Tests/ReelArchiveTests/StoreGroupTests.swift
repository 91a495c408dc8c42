import Foundation
import GRDB
import ReelCore
import ReelIO
import ReelStore
import ReelTestSupport
import Testing

@testable import ReelArchive

/// Rehydration keeps a version 2 archive's compression groups as they are
/// (docs/store-format.md, "Compression groups"): the store reads, checks, prunes, repacks
/// and seals them again like any other chunk.
@Suite struct StoreGroupTests {
  /// A chain of two archives with enough incompressible data for several 8 MiB groups,
  /// rehydrated into a new store.
  func rehydrated() throws -> (chain: SealedChain, live: LiveStore, root: String) {
    let chain = try SealedChain()
    try chain.history(40, bookmark: "one")
    for index in 0..<40 {
      var data = [UInt8](repeating: 0, count: 256 << 10)
      for position in data.indices { data[position] = UInt8(truncatingIfNeeded: chain.fixture.rng.next()) }
      try chain.fixture.append(.write(offset: UInt64(index % 8) * (256 << 10), data: data))
    }
    try chain.history(20, bookmark: "two")
    try #require(try chain.seal(parity: 0))
    try chain.history(50, bookmark: "three")
    try #require(try chain.seal(parity: 0))
    let root = chain.fixture.root + "/rehydrated"
    let live = LiveStore(store: try Store.initialize(StoreLayout(root: root)).store)
    for path in chain.archives {
      #expect(try ArchiveImporter.importArchive(path: path, masterKeys: [chain.key], into: live).imported)
    }
    return (chain, live, root)
  }

  func groupedChunks(_ live: LiveStore) throws -> (grouped: Int, alone: Int, groups: [(pack: String, offset: Int64)]) {
    try live.store.catalog.database.read { db in
      let grouped = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chunk WHERE record_offset IS NOT NULL") ?? 0
      let alone = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM chunk WHERE record_offset IS NULL") ?? 0
      let groups = try Row.fetchAll(
        db,
        sql: """
          SELECT DISTINCT p.id AS pack, c.offset FROM chunk c JOIN pack p ON p.number = c.pack_number
          WHERE c.record_offset IS NOT NULL ORDER BY p.id, c.offset
          """
      ).map { (pack: $0["pack"] as String, offset: $0["offset"] as Int64) }
      return (grouped, alone, groups)
    }
  }

  @Test func rehydratedGroupsAreStoredAsTheyAreAndReadEveryPoint() throws {
    let (chain, live, _) = try rehydrated()
    let stored = try groupedChunks(live)
    #expect(stored.grouped > 0 && stored.alone == 0, "\(stored.grouped) grouped, \(stored.alone) alone")
    #expect(stored.groups.count > 2, "the incompressible data spans several groups")
    // Each group is an RGR1 container in its pack.
    let (pack, offset) = stored.groups[0]
    let bytes = Array(
      try Data(
        contentsOf: URL(
          fileURLWithPath: chain.fixture.root + "/rehydrated/packs/" + pack.prefix(2) + "/" + pack + ".pack")))
    #expect(Array(bytes[Int(offset)..<(Int(offset) + 4)]) == Array("RGR1".utf8))
    try chain.expectSameHistory(in: live, through: chain.fixture.snapshots.keys.max() ?? 0, every: 9)
    let check = try live.check(readData: true)
    #expect(check.isClean, "\(check.problems)")
    #expect(check.chunksRead == stored.grouped)
    // Records leave the store as the raw records they are in their groups, and the
    // sealer builds frames of either format from them.
    let keys = try live.store.catalog.database.read { db in
      try String.fetchAll(db, sql: "SELECT lower(hex(digest)) FROM chunk WHERE digest IS NOT NULL LIMIT 50")
    }
    let records = try live.chunkRecords(keys)
    #expect(records.count == keys.count)
    for formatVersion in [1, 2] {
      let frame = try PackFrame.build(
        keys.map { StoreRecord(key: $0, record: records[$0]!) }, formatVersion: formatVersion)
      let opened = PackFrame.open(
        frame.plaintext, content: ArchiveFormat.packContent(formatVersion: formatVersion), frameNumber: 0,
        checkContent: true, deliver: false, storeEncode: false)
      #expect(opened.problems.isEmpty && Set(opened.records.map(\.key)) == Set(keys))
    }
  }

  /// A flipped byte in a group fails the group's checksum, but every record carries its
  /// own: what still decodes is checked record by record, and only the chunks the damage
  /// reaches are lost.
  @Test func aDamagedGroupCostsOnlyTheChunksTheDamageReaches() throws {
    let (chain, live, root) = try rehydrated()
    let stored = try groupedChunks(live)
    let (pack, offset) = stored.groups[stored.groups.count / 2]
    let members = try live.store.catalog.database.read { db in
      try Int.fetchOne(
        db, sql: "SELECT COUNT(*) FROM chunk WHERE offset = ? AND pack_number = (SELECT number FROM pack WHERE id = ?)",
        arguments: [offset, pack]) ?? 0
    }
    #expect(members > 2)
    // Structure alone is sound: the group's chunks share its place without overlapping.
    #expect(try live.check(readData: false).isClean)
    let path = root + "/packs/" + pack.prefix(2) + "/" + pack + ".pack"
    var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    bytes[Int(offset) + 4096] ^= 0x40
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    // A fresh reader: no group decompressed before the damage.
    let reader = LiveStore(store: try Store.open(StoreLayout(root: root)))
    let check = try reader.check(readData: true)
    #expect(!check.problems.isEmpty && check.problems.count < members, "\(check.problems.map { $0.message })")
    #expect(check.problems.allSatisfy { $0.message.hasPrefix("chunk ") && !$0.affects.isEmpty })
    // Reading the volume at a point that uses the damaged chunk says what is wrong.
    let affected = try #require(check.problems.first?.affects.first)
    let seq = try #require(
      affected.split(separator: " ").split(separator: "seq").dropFirst().first?.first.flatMap { Seq($0) })
    let failure = #expect(throws: ReelError.self) {
      let view = try VolumeView(live: reader, volume: chain.fixture.name, at: .seq(seq))
      _ = try view.read(offset: 0, length: Int(view.size))
    }
    #expect(failure?.kind == .corrupt && failure?.message.contains("chunk ") == true, "\(String(describing: failure))")
    // Damage to the group's frame itself stops its decoding there: the records after it
    // are reported, each by name.
    bytes[Int(offset) + 4096] ^= 0x40
    bytes[Int(offset) + 30] ^= 0xFF
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    let again = try LiveStore(store: try Store.open(StoreLayout(root: root))).check(readData: true)
    #expect(!again.problems.isEmpty, "\(again.problems.map { $0.message })")
    #expect(again.problems.allSatisfy { $0.message.hasPrefix("chunk ") })
  }

  /// A group header that claims more content than a group may hold is refused before
  /// anything that size is allocated, naming the group, for every chunk in it.
  @Test func aGroupClaimingTooMuchContentIsRefused() throws {
    // The chain holds the folder the store is in: kept to the end.
    let (chain, live, root) = try rehydrated()
    defer { withExtendedLifetime(chain) {} }
    let (pack, offset) = try groupedChunks(live).groups[0]
    let path = root + "/packs/" + pack.prefix(2) + "/" + pack + ".pack"
    var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    for index in 8..<12 { bytes[Int(offset) + index] = 0xFF }
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    let check = try LiveStore(store: try Store.open(StoreLayout(root: root))).check(readData: true)
    #expect(!check.problems.isEmpty)
    #expect(
      check.problems.allSatisfy {
        $0.message.contains("compression group at byte \(offset) of pack \(pack)")
          && $0.message.contains("more than the \(64 << 20) a group may hold")
      }, "\(check.problems.map { $0.message })")
  }

  @Test func pruneRepacksGroupsAndKeepsWhatIsLeft() throws {
    let (chain, live, _) = try rehydrated()
    let before = try groupedChunks(live)
    let latest = chain.fixture.snapshots.keys.max() ?? 0
    // Keep only the newest point: most of the groups' chunks go, and their packs are
    // repacked: groups mostly alive are copied whole, the rest's chunks stored alone.
    let report = try live.prune(
      volume: chain.fixture.name, keepWithin: .zero, keepBookmarks: false, safetyMargin: .zero,
      now: Timestamp(nanoseconds: Timestamp.now().nanoseconds + 3_600_000_000_000))
    #expect(report.chunksDeleted > 0 && report.bytesFreed > 0, "\(report)")
    let after = try groupedChunks(live)
    #expect(after.grouped + after.alone < before.grouped)
    let view = try VolumeView(live: live, volume: chain.fixture.name, at: .seq(latest))
    #expect(difference(try view.read(offset: 0, length: Int(view.size)), chain.fixture.snapshots[latest]) == nil)
    let check = try live.check(readData: true)
    #expect(check.isClean && check.orphanBytes == 0, "\(check.problems)")
  }
}
