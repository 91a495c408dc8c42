import Foundation
import GRDB
import ReelCore
import ReelIO
import ReelJournal

@testable import ReelStore

/// A store in a fresh temporary folder with one volume, and a model of its contents that
/// the test keeps in step with every record it appends to the volume's journal.
package final class StoreFixture {
  private let folder = TemporaryDirectory("reel-store")
  package var root: String { folder.path }
  package let store: Store
  package let live: LiveStore
  package let name = "disk"
  package let descriptor: VolumeDescriptor
  package var model: [UInt8]
  /// Model snapshots taken at chosen seqs.
  package var snapshots: [Seq: [UInt8]] = [:]
  package var times: [Seq: Timestamp] = [:]
  package var bookmarks: [String: Seq] = [:]
  package private(set) var writer: JournalWriter?
  package var rng: SplitMix

  package init(
    size: Int, base: [UInt8]? = nil, seed: UInt64 = UInt64.random(in: 0...UInt64.max),
    storeBlockSize: UInt32 = VolumeDescriptor.defaultStoreBlockSize
  ) throws {
    rng = SplitMix(seed: seed)
    store = try Store.initialize(StoreLayout(root: folder.path + "/store")).store
    var basePath: String? = nil
    if let base {
      basePath = folder.path + "/base.img"
      _ = FileManager.default.createFile(atPath: basePath!, contents: Data(base))
    }
    descriptor = try Volumes.create(
      in: store, name: name, size: UInt64(size), blockSize: 512, storeBlockSize: storeBlockSize, baseImage: basePath)
    model = base ?? [UInt8](repeating: 0, count: size)
    live = LiveStore(store: store)
    snapshots[0] = model
  }

  package func openWriter() throws -> JournalWriter {
    if let writer { return writer }
    let (opened, _) = try JournalWriter.open(directory: store.layout.journalDirectory(name), volume: descriptor.id)
    writer = opened
    return opened
  }

  package func closeWriter() throws {
    try writer?.close()
    writer = nil
  }

  @discardableResult
  package func append(_ entry: JournalEntry) throws -> AppendedRecord {
    let appended = try openWriter().append(entry)
    let start = Int(entry.offset)
    let end = start + Int(entry.length)
    switch entry.kind {
    case .write: model.replaceSubrange(start..<end, with: entry.payload)
    case .trim, .writeZeroes: model.replaceSubrange(start..<end, with: repeatElement(0, count: end - start))
    case .bookmark: bookmarks[String(decoding: entry.payload, as: UTF8.self)] = appended.seq
    case .flush: break
    case .rollback:
      // The model at the target comes from a snapshot the test took there.
      if let payload = try? RollbackPayload.decode(entry.payload), let target = snapshots[payload.targetSeq] {
        for extent in payload.extents {
          let range = Int(extent.offset)..<Int(extent.end)
          model.replaceSubrange(range, with: target[range])
        }
      }
    }
    times[appended.seq] = appended.time
    return appended
  }

  package func snapshot(_ seq: Seq) { snapshots[seq] = model }

  /// A random write, trim or zeroes of 512-byte multiples; small writes cluster on a few
  /// blocks so that partial versions pile up and consolidation happens.
  package func randomChange() throws {
    let size = model.count
    let sectors = size / 512
    let small = rng.next() % 3 == 0
    let hot = Int(rng.next() % 4) * Int(descriptor.storeBlockSize / 512) % sectors
    let first = small ? min(sectors - 1, hot + Int(rng.next() % 32)) : Int(rng.next() % UInt64(sectors))
    let count = min(sectors - first, small ? 1 + Int(rng.next() % 4) : 1 + Int(rng.next() % 300))
    let offset = UInt64(first * 512)
    let length = count * 512
    switch rng.next() % 10 {
    case 0: try append(.trim(offset: offset, length: UInt64(length)))
    case 1: try append(.writeZeroes(offset: offset, length: UInt64(length)))
    case 2:
      // Data with zero sectors inside it, and repeats of earlier data for dedup.
      var data = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
      data.replaceSubrange(0..<min(512, length), with: repeatElement(0, count: min(512, length)))
      try append(.write(offset: offset, data: data))
    default:
      let fill = UInt8(truncatingIfNeeded: rng.next() % 8)
      let data = (0..<length).map { fill &+ UInt8(truncatingIfNeeded: $0 / 512) }
      try append(.write(offset: offset, data: data))
    }
  }

  /// `changes` random changes, then bookmark `label`; snapshots the model there and
  /// returns the bookmark's seq (a checkpoint to read back).
  @discardableResult
  package func randomChanges(_ changes: Int, thenBookmark label: String) throws -> Seq {
    for _ in 0..<changes { try randomChange() }
    let seq = try append(.bookmark(label)).seq
    snapshot(seq)
    return seq
  }

  package func image(at point: Point) throws -> [UInt8] {
    let view = try VolumeView(live: live, volume: name, at: point)
    return try view.read(offset: 0, length: Int(view.size))
  }

  /// The names of the stored chunks, sorted; an unnamed chunk's (docs/store-format.md)
  /// is read from its record's header.
  package var chunkHashes: [String] {
    let rows =
      (try? live.catalog.database.read { db in
        try Row.fetchAll(db, sql: "SELECT hash, pack, offset FROM chunk_named WHERE pack IS NOT NULL")
      }) ?? []
    return rows.map { row in
      if let hash = row["hash"] as String? { return hash }
      let header = (try? live.backend.read(row["pack"], offset: UInt64(row["offset"] as Int64), length: 56)) ?? []
      return header.withUnsafeBytes { ChunkRecordFormat.claimedKey($0) } ?? "unreadable"
    }.sorted()
  }

  /// Pack files on disk with their sizes.
  package var packFiles: [String: UInt64] {
    ((try? live.backend.list()) ?? []).reduce(into: [:]) { $0[$1.pack] = $1.size }
  }

  package func packPath(_ pack: String) -> String {
    store.layout.root + "/packs/" + pack.prefix(2) + "/" + pack + ".pack"
  }
}

/// A small deterministic generator (SplitMix64), so a failing history or damage pattern can
/// be replayed from its seed.
package struct SplitMix: RandomNumberGenerator {
  package var state: UInt64
  package init(seed: UInt64) { state = seed }
  package mutating func next() -> UInt64 {
    state &+= 0x9E37_79B9_7F4A_7C15
    var z = state
    z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
    z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
    return z ^ (z >> 31)
  }
}

/// nil when equal; else where the first difference is, short enough for a test log.
package func difference(_ actual: [UInt8]?, _ expected: [UInt8]?) -> String? {
  guard let actual, let expected else { return actual == nil && expected == nil ? nil : "one side is missing" }
  if actual.count != expected.count { return "sizes differ: \(actual.count) vs \(expected.count)" }
  guard let index = actual.indices.first(where: { actual[$0] != expected[$0] }) else { return nil }
  return "first difference at byte \(index): \(actual[index]) vs \(expected[index])"
}
