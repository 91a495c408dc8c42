import Foundation
import GRDB
import ReelCodec
import ReelCore
import ReelJournal

/// The deduplicated, compressed point-in-time store of a Reel store folder: chunks in a
/// `ChunkBackend`, their history in the catalog. Ingest feeds it from the journals;
/// `VolumeView` reads any volume as of any retained point.
public final class LiveStore: @unchecked Sendable {
  public let store: Store
  let backend: PackBackend
  let cache = ChunkCache(capacity: 256)
  /// Packs stop taking new chunks at this size.
  static let packSizeLimit: UInt64 = 64 << 20

  /// Threads that hash and compress during ingest.
  let workers: Int

  public init(store: Store, backend: PackBackend? = nil, workers: Int = 2) {
    self.store = store
    self.workers = max(1, workers)
    self.backend = backend ?? FolderPackBackend(root: store.layout.root + "/packs")
  }

  var catalog: Catalog { store.catalog }

  /// Plaintext of a chunk; the record's checksum is always checked, the SHA-256 of the
  /// plaintext only when `verify` is set (`reel store check --read-data`).
  func chunk(_ key: String, at location: ChunkLocation?, verify: Bool = false) throws -> [UInt8] {
    if !verify, let cached = cache.get(key) { return cached }
    guard let location else {
      throw ReelError(
        .corrupt, "chunk \(key) has no catalog row",
        remedy: "run `reel store check` to see what it affects; rehydrate the range from a sealed archive")
    }
    let record: [UInt8]
    do {
      record = try backend.read(location.pack, offset: location.offset, length: location.length)
    } catch let error as ReelError where error.kind == .notFound {
      throw ReelError(
        .corrupt, "chunk \(key): its pack \(location.pack) is missing",
        remedy: "run `reel store check` to see what it affects; rehydrate the range from a sealed archive")
    }
    let plaintext = try ChunkCodec.decode(record, key: key, verify: verify)
    cache.put(key, plaintext)
    return plaintext
  }

  /// Rebuilds a block from its version chain (see `Catalog.versionChain`).
  func assemble(_ chain: [BlockVersion], length: Int) throws -> [UInt8] {
    var block = [UInt8](repeating: 0, count: length)
    for version in chain {
      let bytes = try version.chunk.map { try chunk($0, at: version.location) }
      if version.full {
        if let bytes {
          guard bytes.count == length else {
            throw ReelError(.corrupt, "chunk \(version.chunk!) holds \(bytes.count) bytes, block needs \(length)")
          }
          block = bytes
        } else {
          block = [UInt8](repeating: 0, count: length)
        }
      } else {
        guard version.start + version.length <= length, bytes.map({ $0.count == version.length }) ?? true else {
          throw ReelError(.corrupt, "block \(version.block) version at seq \(version.seq) does not fit the block")
        }
        if let bytes {
          block.replaceSubrange(version.start..<(version.start + version.length), with: bytes)
        } else {
          block.replaceSubrange(
            version.start..<(version.start + version.length), with: repeatElement(0, count: version.length))
        }
      }
    }
    return block
  }

  /// Serialises ingest and prune on one store: prune must never delete a chunk that an
  /// ingest batch found present and is about to reference.
  func withStoreLock<T>(_ body: () throws -> T) throws -> T {
    let lock = try PosixFile(path: store.layout.root + "/store.lock", flags: O_RDWR | O_CREAT)
    while flock(lock.descriptor, LOCK_EX) != 0 {
      guard errno == EINTR else { throw PosixFile.error(errno, "lock", lock.path) }
    }
    defer { flock(lock.descriptor, LOCK_UN) }
    return try body()
  }
}

/// A small LRU of decoded chunks: reads of neighbouring ranges and consolidation often
/// touch the same chunk again.
final class ChunkCache: @unchecked Sendable {
  private let lock = NSLock()
  private var entries: [String: (bytes: [UInt8], tick: UInt64)] = [:]
  private var tick: UInt64 = 0
  let capacity: Int

  init(capacity: Int) { self.capacity = capacity }

  func get(_ key: String) -> [UInt8]? {
    lock.withLock {
      guard var entry = entries[key] else { return nil }
      tick += 1
      entry.tick = tick
      entries[key] = entry
      return entry.bytes
    }
  }

  func put(_ key: String, _ bytes: [UInt8]) {
    lock.withLock {
      tick += 1
      entries[key] = (bytes, tick)
      if entries.count > capacity, let oldest = entries.min(by: { $0.value.tick < $1.value.tick })?.key {
        entries.removeValue(forKey: oldest)
      }
    }
  }
}
