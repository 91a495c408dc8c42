import Foundation
import GRDB
import ReelCodec
import ReelCore

/// What became of one piece of content handed to a `ChunkEncoder`.
enum EncodedChunk: Sendable {
  case zeros
  /// A chunk with this content is stored already (committed, or appended earlier in this run).
  case known(key: String, location: ChunkLocation)
  /// New content: the record to append to a pack.
  case new(key: String, record: [UInt8], size: Int)
}

/// Hashes, deduplicates and compresses chunk contents on worker threads while the ingest
/// thread goes on reading and planning; results are taken back in submission order.
/// Before this, each journal record was hashed and compressed while the ingest thread
/// waited, which kept 2 cores about half busy (measured: 85 MB/s, CPU time ≈ wall time).
final class ChunkEncoder: @unchecked Sendable {
  private let condition = NSCondition()
  private var queue: [(ticket: Int, content: ArraySlice<UInt8>)] = []
  private var queueHead = 0
  private var finished: [Int: EncodedChunk] = [:]
  private var sizes: [Int: Int] = [:]
  private var nextTicket = 0
  private var nextToTake = 0
  private var running = 0
  private var stopping = false
  /// Chunks this run has appended or looked up: saves a catalog query per repeat.
  private var locations: [String: ChunkLocation] = [:]
  private let catalog: Catalog
  /// Bytes submitted and not yet taken back; the submitter keeps this bounded.
  private(set) var bytesInFlight = 0

  init(catalog: Catalog, workers: Int) {
    self.catalog = catalog
    running = workers
    for _ in 0..<workers {
      let thread = Thread { [self] in work() }
      thread.name = "reel-chunk-encoder"
      thread.start()
    }
  }

  /// Queues `content` (a store block or part of one) and returns its ticket.
  func submit(_ content: ArraySlice<UInt8>) -> Int {
    condition.lock()
    defer { condition.unlock() }
    let ticket = nextTicket
    nextTicket += 1
    queue.append((ticket, content))
    sizes[ticket] = content.count
    bytesInFlight += content.count
    condition.signal()
    return ticket
  }

  /// True when nothing submitted is waiting to be taken.
  var idle: Bool {
    condition.lock()
    defer { condition.unlock() }
    return nextToTake == nextTicket
  }

  /// The oldest result not yet taken; waits for it.
  func takeNext() -> EncodedChunk {
    condition.lock()
    defer { condition.unlock() }
    while finished[nextToTake] == nil { condition.wait() }
    let result = finished.removeValue(forKey: nextToTake)!
    bytesInFlight -= sizes.removeValue(forKey: nextToTake) ?? 0
    nextToTake += 1
    return result
  }

  /// Records where a new chunk went, so later repeats of it are found without the catalog.
  func remember(_ key: String, at location: ChunkLocation) {
    condition.lock()
    defer { condition.unlock() }
    if locations.count > 200_000 { locations.removeAll() }
    locations[key] = location
  }

  /// Stops the workers once the queue is empty and waits for them.
  func shutdown() {
    condition.lock()
    stopping = true
    condition.broadcast()
    while running > 0 { condition.wait() }
    condition.unlock()
  }

  private func work() {
    let codec = ChunkCodec()
    while true {
      condition.lock()
      while queueHead == queue.count && !stopping { condition.wait() }
      guard queueHead < queue.count else {
        running -= 1
        condition.broadcast()
        condition.unlock()
        return
      }
      let job = queue[queueHead]
      // The slot's slice would keep its whole journal record alive until compaction.
      queue[queueHead].content = []
      queueHead += 1
      if queueHead >= 1024 && queueHead * 2 >= queue.count {
        queue.removeFirst(queueHead)
        queueHead = 0
      }
      condition.unlock()
      let result = encode(job.content, codec: codec)
      condition.lock()
      finished[job.ticket] = result
      condition.broadcast()
      condition.unlock()
    }
  }

  private func encode(_ content: ArraySlice<UInt8>, codec: ChunkCodec) -> EncodedChunk {
    content.withUnsafeBytes { raw in
      if Self.isAllZeros(raw) { return .zeros }
      let digest = SHA256Digest.hash(raw)
      let key = digest.hex
      if let location = knownLocation(key) { return .known(key: key, location: location) }
      return .new(key: key, record: codec.encode(raw, hash: digest), size: raw.count)
    }
  }

  private func knownLocation(_ key: String) -> ChunkLocation? {
    condition.lock()
    let cached = locations[key]
    condition.unlock()
    if let cached { return cached }
    // A failed lookup only costs a compression: the ingest thread dedups again by name.
    // Outside a transaction: one indexed SELECT, without BEGIN/COMMIT around it.
    guard let found = try? catalog.database.unsafeRead({ db in try Catalog.chunkLocation(db, key) }) else { return nil }
    remember(key, at: found)
    return found
  }

  static func isAllZeros(_ bytes: UnsafeRawBufferPointer) -> Bool {
    var index = 0
    let count = bytes.count
    while index + 32 <= count {
      let word =
        bytes.loadUnaligned(fromByteOffset: index, as: UInt64.self)
        | bytes.loadUnaligned(fromByteOffset: index + 8, as: UInt64.self)
        | bytes.loadUnaligned(fromByteOffset: index + 16, as: UInt64.self)
        | bytes.loadUnaligned(fromByteOffset: index + 24, as: UInt64.self)
      if word != 0 { return false }
      index += 32
    }
    while index < count {
      if bytes[index] != 0 { return false }
      index += 1
    }
    return true
  }
}

extension Catalog {
  /// Where the chunk named `key` is stored, if the catalog knows it.
  static func chunkLocation(_ db: Database, _ key: String) throws -> ChunkLocation? {
    let row = try Row.fetchOne(
      db.cachedStatement(sql: "SELECT pack, offset, length FROM chunk WHERE hash = ?"), arguments: [key])
    return row.map {
      ChunkLocation(pack: $0["pack"], offset: UInt64($0["offset"] as Int64), length: Int($0["length"] as Int64))
    }
  }
}
