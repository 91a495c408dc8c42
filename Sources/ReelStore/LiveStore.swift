import Foundation
import GRDB
import ReelCodec
import ReelCore
import ReelIO

/// The deduplicated, compressed point-in-time store of a Reel store folder: chunks in a
/// `ChunkBackend`, their history in the catalog. Ingest feeds it from the journals;
/// `VolumeView` reads any volume as of any retained point.
package final class LiveStore: Sendable {
  package let store: Store
  let backend: PackBackend
  let cache = ChunkCache(capacity: 256)
  /// Compression groups decompressed lately (up to 64 MiB each, 8 MiB as rehydration
  /// writes them): enough for the three producers of a restore to each keep the group
  /// they are in while the next one is read.
  let groups = GroupCache(capacity: 8)
  /// Span reads land in reused buffers: fresh 8 MiB arrays were faulted in and zeroed
  /// for every span of a restore.
  let spanBuffers = BufferPool(retainedBytes: 64 << 20)
  /// Delta bases decoded for one read (`withBasePlaintext`).
  let decodedBases = BufferPool(retainedBytes: 16 << 20)
  /// Packs stop taking new chunks at this size.
  static let packSizeLimit: UInt64 = 64 << 20
  /// Imports bringing at least this much chunk content write new packs whole, with direct
  /// I/O; smaller ones append to the newest pack, so a chain of small windows does not
  /// leave a small pack each.
  static let wholePackImportThreshold: UInt64 = 8 << 20

  /// Threads that hash and compress during ingest.
  let workers: Int

  package init(store: Store, backend: PackBackend? = nil, workers: Int = 2) {
    self.store = store
    self.workers = max(1, workers)
    self.backend = backend ?? FolderPackBackend(root: store.layout.root + "/packs")
  }

  var catalog: Catalog { store.catalog }

  /// Plaintext of a chunk; the record's checksum is always checked, the SHA-256 of the
  /// plaintext only when `verify` is set (`reel store check --read-data`).
  /// A delta record's base is found where `locate` says, else where the catalog does.
  func chunk(
    _ key: ChunkKey, at location: ChunkLocation?, verify: Bool = false, locate: ChunkLocator? = nil, depth: Int = 0
  ) throws -> [UInt8] {
    if !verify, let cached = cache.get(key) { return cached }
    guard let location else {
      throw ReelError(
        .corrupt, "chunk \(key) has no stored record",
        remedy: "run `reel store check` to see what it affects; rehydrate the range from a sealed archive")
    }
    let record = try storedRecord(key, at: location)
    let plaintext: [UInt8]
    if let baseName = try record.withUnsafeBytes({ try ChunkCodec.deltaBase($0, key: key) }) {
      plaintext = try withBasePlaintext(named: baseName, of: key, locate: locate, depth: depth + 1) { base in
        try record.withUnsafeBytes { try ChunkCodec.decode($0, key: key, verify: verify, base: base) }
      }
    } else {
      plaintext = try ChunkCodec.decode(record, key: key, verify: verify)
    }
    cache.put(key, plaintext)
    return plaintext
  }

  /// Rebuilds a block from its version chain (see `Catalog.versionChain`).
  /// `records` and `preloaded` as for `assemble(_:into:records:preloaded:)`.
  func assemble(
    _ chain: [BlockVersion], length: Int, records: [ChunkKey: UnsafeRawBufferPointer] = [:],
    preloaded: [Int64: [UInt8]] = [:], locate: ChunkLocator? = nil
  ) throws -> [UInt8] {
    try [UInt8](unsafeUninitializedCapacity: length) { buffer, count in
      try assemble(
        chain, into: UnsafeMutableRawBufferPointer(buffer), records: records, preloaded: preloaded, locate: locate)
      count = length
    }
  }

  /// Rebuilds a block from its version chain straight into `target`, which is the
  /// block's length: a chain starting with a stored full version is decoded there, with
  /// nothing zeroed or copied first (both showed in restore and clone-read profiles).
  /// `records` holds stored records read ahead (`withRecords`); a chunk not among them,
  /// or whose record does not decode, is read on its own, which reports any damage.
  /// `preloaded` holds plaintexts that take the place of stored chunks, by catalog row
  /// (repair's rebuilt ones). `locate` finds delta bases the catalog may not know yet.
  func assemble(
    _ chain: [BlockVersion], into target: UnsafeMutableRawBufferPointer, records: [ChunkKey: UnsafeRawBufferPointer],
    preloaded: [Int64: [UInt8]] = [:], locate: ChunkLocator? = nil
  ) throws {
    if chain.first?.full != true { target.initializeMemory(as: UInt8.self, repeating: 0) }
    for version in chain {
      // A full version fills the block; a partial one its range of it.
      var place = target
      if !version.full {
        guard version.start + version.length <= target.count else {
          throw ReelError(.corrupt, "block \(version.block) version at seq \(version.seq) does not fit the block")
        }
        place = UnsafeMutableRawBufferPointer(rebasing: target[version.start..<(version.start + version.length)])
      }
      guard let key = version.key else {
        place.initializeMemory(as: UInt8.self, repeating: 0)
        continue
      }
      if let record = records[key],
        (try? decode(record, key: key, into: place, records: records, locate: locate)) != nil
      {
        continue
      }
      let bytes = try version.chunkRow.flatMap { preloaded[$0] } ?? chunk(key, at: version.location, locate: locate)
      guard bytes.count == place.count else {
        throw ReelError(
          .corrupt,
          "chunk \(key) holds \(bytes.count) bytes; block \(version.block) version at seq \(version.seq) needs \(place.count)"
        )
      }
      bytes.withUnsafeBytes { place.copyMemory(from: $0) }
    }
  }

  /// Reads the records of many chunks with few large reads and gives them, as stored, to
  /// `body`: records are sorted by pack and offset and neighbours are read as one span.
  /// Best effort: a record that fails to read is left out, so the caller's own read of
  /// it reports the damage with its context. (A delta's bases are among `wanted` when the
  /// version chain named them, `BlockVersion.deltaBases`; any other is read on its own.)
  ///
  /// All the spans land in one pooled buffer: a pooled buffer per span (64 KiB at least)
  /// for the ~2,000 scattered 4 KiB records of a restore of a volume that takes small
  /// writes grew the heap by 128 MiB, in about 1,800 steps (`mprotect` calls).
  ///
  /// A record in a compression group is handed out where it lies in the group's
  /// decompressed content; each group is read and decompressed once.
  func withRecords<Result>(
    _ wanted: [ChunkKey: ChunkLocation], _ body: ([ChunkKey: UnsafeRawBufferPointer]) throws -> Result
  ) rethrows -> Result {
    let grouped = wanted.filter { $0.value.recordOffset != nil }
    guard grouped.isEmpty else {
      // One location per group: `group(at:)` reads its pack, offset and length.
      let places = Array(Dictionary(grouped.values.map { ($0.group!, $0) }, uniquingKeysWith: { first, _ in first }))
      let decoded = parallelMap(places, workers: 2) { _, place in try? self.group(at: place.value) }
      var groups: [GroupPlace: DecodedGroup] = [:]
      for (place, group) in zip(places, decoded) { groups[place.key] = group }
      return try withExtendedLifetime(groups) {
        try withRecords(wanted.filter { $0.value.recordOffset == nil }) { standing in
          var records = standing
          for (key, location) in grouped {
            guard let place = location.group, let group = groups[place] else { continue }
            records[key] = try? group.record(at: location.recordOffset!, key: key, what: place.description)
          }
          return try body(records)
        }
      }
    }
    let spans = Self.readSpans(wanted)
    var places: [Range<Int>] = []
    var total = 0
    for span in spans {
      let length = Int(span[span.count - 1].1.offset - span[0].1.offset) + span[span.count - 1].1.length
      places.append(total..<(total + length))
      total += length
    }
    guard total > 0 else { return try body([:]) }
    let buffer = spanBuffers.take(total)
    defer { spanBuffers.recycle(buffer) }
    nonisolated(unsafe) let bytes = buffer.bytes
    let backend = self.backend
    let read = parallelMap(Array(zip(spans, places)), workers: 4) { _, item -> Int? in
      let (span, place) = item
      return try? backend.read(
        span[0].1.pack, offset: span[0].1.offset, into: UnsafeMutableRawBufferPointer(rebasing: bytes[place]))
    }
    var records: [ChunkKey: UnsafeRawBufferPointer] = [:]
    for ((span, place), got) in zip(zip(spans, places), read) {
      guard let got else { continue }
      let start = span[0].1.offset
      for (key, location) in span {
        let from = Int(location.offset - start)
        guard from + location.length <= got else { continue }
        records[key] = UnsafeRawBufferPointer(
          rebasing: bytes[(place.lowerBound + from)..<(place.lowerBound + from + location.length)])
      }
    }
    return try body(records)
  }

  /// Records sorted by pack and offset, neighbours grouped into spans of at most 8 MiB that
  /// are read with one call each.
  static func readSpans<Key>(_ wanted: [Key: ChunkLocation]) -> [[(Key, ChunkLocation)]] {
    let sorted = wanted.sorted { ($0.value.pack, $0.value.offset) < ($1.value.pack, $1.value.offset) }
    var spans: [[(Key, ChunkLocation)]] = []
    for (key, location) in sorted {
      if let last = spans.last?.last, last.1.pack == location.pack,
        last.1.offset + UInt64(last.1.length) == location.offset,
        location.offset + UInt64(location.length) - spans.last!.first!.1.offset <= 8 << 20
      {
        spans[spans.count - 1].append((key, location))
      } else {
        spans.append([(key, location)])
      }
    }
    return spans
  }

  /// Serialises ingest and prune on one store: prune must never delete a chunk that an
  /// ingest batch found present and is about to reference.
  package func withStoreLock<T>(_ body: () throws -> T) throws -> T {
    let lock = try PosixFile.openLock(store.layout.root + "/store.lock")
    while flock(lock.descriptor, LOCK_EX) != 0 {
      guard errno == EINTR else { throw PosixFile.error(errno, "lock", lock.path) }
    }
    defer { flock(lock.descriptor, LOCK_UN) }
    return try body()
  }
}

/// A small LRU of decoded chunks: reads of neighbouring ranges and consolidation often
/// touch the same chunk again.
final class ChunkCache: Sendable {
  private let entries: Locked<RecentlyUsed<ChunkKey, [UInt8]>>

  init(capacity: Int) { entries = Locked(RecentlyUsed(capacity: capacity)) }

  func get(_ key: ChunkKey) -> [UInt8]? { entries.withLock { $0.value(for: key) } }

  func put(_ key: ChunkKey, _ bytes: [UInt8]) { entries.withLock { $0.insert(bytes, for: key) } }
}
