import Foundation
import GRDB
import ReelCodec
import ReelCore

/// A chunk that a consolidated block may be stored as a delta of: its name and plaintext.
struct DeltaBase: Sendable {
  let name: SHA256Digest
  let plaintext: [UInt8]
}

/// Where a named chunk is stored when the catalog may not know it yet (the chunks of an
/// ingest batch not yet committed); nil: the catalog is asked.
typealias ChunkLocator = (String) throws -> ChunkLocation?

extension LiveStore {
  /// The longest chain of delta bases a reader follows. Ingest writes chains of at most 2
  /// (docs/store-format.md, "Consolidations as deltas"); the bound stops a damaged record
  /// that names itself, or a chain of such, from sending a reader round forever.
  static let maxDeltaDepth = 4

  /// Calls `body` with the plaintext of the chunk named `name`, which `key`'s delta
  /// record refers to: from the cache, from `records` (read ahead), or read where `locate`
  /// or the catalog says. A whole uncompressed record read ahead is handed over where it
  /// lies, and a decoded one in a pooled buffer, neither cached: a restore meets each base
  /// once, and caching them filled 64 MiB of fresh memory in a restore of 64 MiB (peak
  /// RSS 240 MB against 160 MB without).
  func withBasePlaintext<T>(
    named name: String, of key: ChunkKey, records: [ChunkKey: UnsafeRawBufferPointer] = [:],
    locate: ChunkLocator? = nil, depth: Int, _ body: (UnsafeRawBufferPointer) throws -> T
  ) throws -> T {
    guard depth <= Self.maxDeltaDepth else {
      throw ReelError(
        .corrupt, "chunk \(key) is a delta whose chain of bases is more than \(Self.maxDeltaDepth) deep",
        remedy: "run `reel store check --read-data` to see what it affects")
    }
    let baseKey = ChunkKey.named(name)
    if let cached = cache.get(baseKey) { return try cached.withUnsafeBytes(body) }
    // Checked once: directly for a raw record used where it lies, else by the decode.
    if let record = records[baseKey], let header = ChunkRecordHeader(record) {
      if header.encoding == ChunkRecordHeader.encodingRaw && header.storedLength == header.plaintextLength {
        if (try? ChunkCodec.checkedHeader(record, key: baseKey)) != nil {
          return try body(UnsafeRawBufferPointer(rebasing: record[ChunkRecordHeader.size...]))
        }
      } else {
        let buffer = decodedBases.take(header.plaintextLength)
        defer { decodedBases.recycle(buffer) }
        if (try? decode(record, key: baseKey, into: buffer.bytes, records: records, locate: locate, depth: depth))
          != nil
        {
          return try body(UnsafeRawBufferPointer(buffer.bytes))
        }
      }
    }
    // Read on its own, which says what is wrong with it if anything is.
    guard let location = try locate?(name) ?? catalogLocation(ofChunk: name) else {
      throw ReelError(
        .corrupt, "chunk \(key) is stored as a delta of chunk \(name), which has no stored record",
        remedy: "run `reel store check` to see what it affects; rehydrate the range from a sealed archive")
    }
    let plaintext: [UInt8]
    do {
      plaintext = try chunk(baseKey, at: location, locate: locate, depth: depth)
    } catch let error as ReelError where error.kind == .corrupt && depth == 1 {
      // Said once, for the chunk that was asked for, however deep the damage is.
      throw ReelError(
        .corrupt, "chunk \(key) is stored as a delta of a damaged chunk: \(error.message)", remedy: error.remedy)
    }
    return try plaintext.withUnsafeBytes(body)
  }

  /// Decodes a stored record straight into `output` (the plaintext's length); a delta's
  /// base comes through `withBasePlaintext`. `depth`: how many deltas led here.
  func decode(
    _ record: UnsafeRawBufferPointer, key: ChunkKey, into output: UnsafeMutableRawBufferPointer,
    records: [ChunkKey: UnsafeRawBufferPointer], locate: ChunkLocator?, depth: Int = 0
  ) throws {
    guard let baseName = try ChunkCodec.deltaBase(record, key: key) else {
      return try ChunkCodec.decode(record, key: key, into: output)
    }
    try withBasePlaintext(named: baseName, of: key, records: records, locate: locate, depth: depth + 1) {
      try ChunkCodec.decode(record, key: key, into: output, base: $0)
    }
  }

  /// Where the catalog says the chunk named `name` is stored.
  func catalogLocation(ofChunk name: String) throws -> ChunkLocation? {
    try catalog.database.read { db in try Catalog.chunkLocations(db, [name])[name] }
  }
}

extension LiveStore {
  /// The chunk named `name` and the bases it is a delta of, nearest first, each with its
  /// plaintext: what a consolidation of its block may be stored as a delta of.
  func deltaLineage(of name: String, at location: ChunkLocation, locate: ChunkLocator?) throws -> [DeltaBase] {
    var lineage: [(name: String, record: [UInt8])] = []
    var next: (name: String, location: ChunkLocation)? = (name, location)
    while let (name, location) = next {
      guard lineage.count <= Self.maxDeltaDepth else {
        throw ReelError(
          .corrupt, "chunk \(lineage[0].name) is a delta whose chain of bases is more than \(Self.maxDeltaDepth) deep",
          remedy: "run `reel store check --read-data` to see what it affects")
      }
      let record = try storedRecord(.named(name), at: location)
      lineage.append((name, record))
      next = try record.withUnsafeBytes { try ChunkCodec.deltaBase($0, key: .named(name)) }.map { base in
        guard let location = try locate?(base) ?? catalogLocation(ofChunk: base) else {
          throw ReelError(
            .corrupt, "chunk \(name) is stored as a delta of chunk \(base), which has no stored record",
            remedy: "run `reel store check` to see what it affects")
        }
        return (base, location)
      }
    }
    // Decoded from the root (a whole record) down, each the base of the one before it.
    var decoded: [DeltaBase] = []
    for (name, record) in lineage.reversed() {
      let plaintext = try ChunkCodec.decode(record, key: .named(name), verify: false, base: decoded.last?.plaintext)
      guard let digest = SHA256Digest(hex: name) else {
        throw ReelError(.corrupt, "\(name) is not a chunk name (64 hexadecimal digits)")
      }
      decoded.append(DeltaBase(name: digest, plaintext: plaintext))
    }
    return decoded.reversed()
  }
}
