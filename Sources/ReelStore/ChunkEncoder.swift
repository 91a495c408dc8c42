import Foundation
import ReelCodec
import ReelCore

/// What became of one piece of content handed to a `ChunkEncoder`.
enum EncodedChunk: Sendable {
  case zeros
  /// A chunk with this content was stored or found earlier in this run.
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
  /// Results by ticket, with the size of the content they came from.
  private var finished: [Int: (result: EncodedChunk, size: Int)] = [:]
  private var nextTicket = 0
  private var nextToTake = 0
  private var running = 0
  private var stopping = false
  /// Chunks this run has appended or found in the catalog, so repeats skip compression.
  /// Workers do not query the catalog themselves: one query per chunk (a lock and an
  /// fstat per SQLite statement) cost 8% of ingest; the ingest thread asks for whole
  /// batches of names instead, and a chunk stored by an earlier run is compressed once
  /// for nothing.
  private var locations: [String: ChunkLocation] = [:]
  /// Bytes submitted and not yet taken back; the submitter keeps this bounded.
  private(set) var bytesInFlight = 0

  init(workers: Int) {
    running = workers
    for _ in 0..<workers {
      let thread = Thread { [self] in work() }
      thread.name = "reel-chunk-encoder"
      thread.start()
    }
  }

  /// Queues `content` (a store block or part of one); its result comes back from
  /// `takeReady` after those of everything submitted before it.
  func submit(_ content: ArraySlice<UInt8>) {
    condition.lock()
    defer { condition.unlock() }
    queue.append((nextTicket, content))
    nextTicket += 1
    bytesInFlight += content.count
    condition.signal()
  }

  /// The oldest results not yet taken, in order: waits for the first, then takes those
  /// already finished behind it, up to `limit`.
  func takeReady(limit: Int) -> [EncodedChunk] {
    condition.lock()
    defer { condition.unlock() }
    while finished[nextToTake] == nil { condition.wait() }
    var results: [EncodedChunk] = []
    while results.count < limit, let done = finished.removeValue(forKey: nextToTake) {
      results.append(done.result)
      bytesInFlight -= done.size
      nextToTake += 1
    }
    return results
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
      finished[job.ticket] = (result, job.content.count)
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
    defer { condition.unlock() }
    return locations[key]
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
