import Foundation
import ReelCodec
import ReelCore

/// What became of one piece of content handed to a `ChunkEncoder`.
enum EncodedChunk: Sendable {
  case zeros
  /// A chunk with this content was stored or found earlier in this run.
  case known(key: String, location: ChunkLocation)
  /// New content: the record to append to a pack; `base` names the chunk it is a delta of.
  case new(key: String, record: [UInt8], size: Int, base: String?)
}

/// Hashes, deduplicates and compresses chunk contents on worker threads while the ingest
/// thread goes on reading and planning; results are taken back in submission order.
/// Before this, each journal record was hashed and compressed while the ingest thread
/// waited, which kept 2 cores about half busy (measured: 85 MB/s, CPU time ≈ wall time).
/// Used from the ingest thread; only the queues and `locations` are shared with the workers.
final class ChunkEncoder {
  private struct Job: Sendable {
    let content: ArraySlice<UInt8>
    /// Chunks the content may be stored as a delta of (`LiveStoreFormat.deltaCandidates`).
    let deltas: [(base: DeltaBase, limit: Int)]
    /// Receives the one result.
    let result: BoundedQueue<EncodedChunk>
  }

  private let jobs: BoundedQueue<Job>
  /// Results not yet taken, oldest first from `awaitingHead`, with their contents' sizes.
  private var awaiting: [(result: BoundedQueue<EncodedChunk>, size: Int)] = []
  private var awaitingHead = 0
  /// Chunks this run has appended or found in the catalog, so repeats skip compression.
  /// Workers do not query the catalog themselves: one query per chunk (a lock and an
  /// fstat per SQLite statement) cost 8% of ingest; the ingest thread asks for whole
  /// batches of names instead, and a chunk stored by an earlier run is compressed once
  /// for nothing.
  private let locations: Locked<[String: ChunkLocation]>
  private let workers: [WorkerThread]
  /// Bytes submitted and not yet taken back; the submitter keeps this bounded.
  private(set) var bytesInFlight = 0

  init(workers: Int) {
    let jobs = BoundedQueue<Job>(capacity: .max)
    let locations = Locked<[String: ChunkLocation]>([:])
    self.jobs = jobs
    self.locations = locations
    self.workers = WorkerThread.group(workers, name: { _ in "reel-chunk-encoder" }) { _ in
      let codec = ChunkCodec()
      while let job = try? jobs.take() {
        job.result.put(Self.encode(job.content, deltas: job.deltas, codec: codec, locations: locations))
      }
    }
  }

  /// Queues `content` (a store block or part of one); its result comes back from
  /// `takeReady` after those of everything submitted before it.
  func submit(_ content: ArraySlice<UInt8>, deltas: [(base: DeltaBase, limit: Int)] = []) {
    let result = BoundedQueue<EncodedChunk>(capacity: 1)
    awaiting.append((result, content.count))
    bytesInFlight += content.count
    jobs.put(Job(content: content, deltas: deltas, result: result))
  }

  /// The oldest results not yet taken, in order: waits for the first, then takes those
  /// already finished behind it, up to `limit`.
  func takeReady(limit: Int) -> [EncodedChunk] {
    var results: [EncodedChunk] = []
    while results.count < limit && awaitingHead < awaiting.count {
      let (result, size) = awaiting[awaitingHead]
      // Never closed or cancelled: `take` waits for the worker's result.
      let done: EncodedChunk?
      if results.isEmpty { done = try? result.take() } else { done = try? result.poll() }
      guard let done else { break }
      results.append(done)
      bytesInFlight -= size
      awaitingHead += 1
    }
    if awaitingHead == awaiting.count {
      awaiting.removeAll(keepingCapacity: true)
      awaitingHead = 0
    } else if awaitingHead >= 1024 && awaitingHead * 2 >= awaiting.count {
      awaiting.removeFirst(awaitingHead)
      awaitingHead = 0
    }
    return results
  }

  /// Records where a new chunk went, so later repeats of it are found without the catalog.
  func remember(_ key: String, at location: ChunkLocation) {
    locations.withLock { locations in
      if locations.count > 200_000 { locations.removeAll() }
      locations[key] = location
    }
  }

  /// Stops the workers once the queue is empty and waits for them.
  func shutdown() {
    jobs.close()
    workers.joinAll()
  }

  private static func encode(
    _ content: ArraySlice<UInt8>, deltas: [(base: DeltaBase, limit: Int)], codec: ChunkCodec,
    locations: Locked<[String: ChunkLocation]>
  ) -> EncodedChunk {
    content.withUnsafeBytes { raw in
      if isAllZeros(raw) { return .zeros }
      let digest = SHA256Digest.hash(raw)
      let key = digest.hex
      if let location = locations.withLock({ $0[key] }) { return .known(key: key, location: location) }
      for (base, limit) in deltas {
        let bound = min(limit * 8, raw.count / 2)
        guard differingBytes(raw, base.plaintext, atMost: bound) <= bound else { continue }
        guard let delta = codec.encodeDelta(raw, hash: digest, base: base, limit: limit) else { continue }
        // A large delta may still lose to the block compressed on its own (data that
        // compresses more than 8:1): the smaller is kept.
        if delta.count > raw.count / 64 {
          let whole = codec.encode(raw, hash: digest)
          if whole.count <= delta.count { return .new(key: key, record: whole, size: raw.count, base: nil) }
        }
        return .new(key: key, record: delta, size: raw.count, base: base.name.hex)
      }
      return .new(key: key, record: codec.encode(raw, hash: digest), size: raw.count, base: nil)
    }
  }

  /// About how many bytes of `content` differ from `base`, counted in 64-byte lines and
  /// given up past `bound`. A candidate is compressed only when at most 8 times its cap
  /// differs (a small edit changes a line or two; its delta costs about 20 bytes), and
  /// never when more than half the block does: a block rewritten with new content costs
  /// a `memcmp`, not a compression for nothing.
  static func differingBytes(_ content: UnsafeRawBufferPointer, _ base: [UInt8], atMost bound: Int) -> Int {
    base.withUnsafeBytes { base in
      guard base.count == content.count else { return Int.max }
      var differing = 0
      var offset = 0
      while offset < content.count && differing <= bound {
        let line = min(64, content.count - offset)
        if memcmp(content.baseAddress! + offset, base.baseAddress! + offset, line) != 0 { differing += line }
        offset += line
      }
      return differing
    }
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
