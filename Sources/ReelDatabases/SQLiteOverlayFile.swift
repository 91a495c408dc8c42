import ReelCore
import ReelFiles

/// One file SQLite sees (the database, its `-wal` or its `-journal`): the bytes the file
/// system held at the point, under an in-memory overlay that takes every write, truncation
/// and deletion SQLite makes. The file system is only ever read.
///
/// Not thread-safe on its own: the VFS reaches it under the database's lock.
final class SQLiteOverlayFile {
  /// Overlay pages: SQLite writes whole database pages, but journal and WAL writes are
  /// headers and page records at any offset.
  static let chunkSize = 64 << 10

  private let files: any FileSystemReading
  /// The inode at the point, or nil when the file did not exist then (or was deleted).
  private var baseInode: UInt64?
  /// Base bytes at or past this offset were cut off by a truncation: they read as zeros.
  private var baseLimit: UInt64
  private var chunks: [UInt64: [UInt8]] = [:]
  private(set) var exists: Bool
  private(set) var size: UInt64
  /// Whether SQLite wrote, truncated or deleted anything (for tests and messages).
  private(set) var modified = false

  init(files: any FileSystemReading, inode: UInt64?, size: UInt64) {
    self.files = files
    self.baseInode = inode
    self.baseLimit = inode == nil ? 0 : size
    self.exists = inode != nil
    self.size = inode == nil ? 0 : size
  }

  /// Up to `count` bytes from `offset`; fewer only past the end.
  func read(offset: UInt64, count: Int) throws -> [UInt8] {
    guard offset < size else { return [] }
    let end = min(size, offset + UInt64(count))
    var result: [UInt8] = []
    result.reserveCapacity(Int(end - offset))
    var position = offset
    while position < end {
      let chunkStart = position - position % UInt64(Self.chunkSize)
      let chunkEnd = min(end, chunkStart + UInt64(Self.chunkSize))
      if let chunk = chunks[chunkStart] {
        result += chunk[Int(position - chunkStart)..<Int(chunkEnd - chunkStart)]
        position = chunkEnd
        continue
      }
      // A run of chunks the overlay does not hold is one read of the file system.
      var runEnd = chunkEnd
      while runEnd < end, chunks[runEnd] == nil { runEnd = min(end, runEnd + UInt64(Self.chunkSize)) }
      result += try baseBytes(from: position, to: runEnd)
      position = runEnd
    }
    return result
  }

  func write(_ bytes: UnsafeRawBufferPointer, offset: UInt64) throws {
    modified = true
    exists = true
    var done = 0
    while done < bytes.count {
      let position = offset + UInt64(done)
      let chunkStart = position - position % UInt64(Self.chunkSize)
      var chunk = try chunks[chunkStart] ?? loadChunk(at: chunkStart)
      let inChunk = Int(position - chunkStart)
      let count = min(bytes.count - done, Self.chunkSize - inChunk)
      chunk.withUnsafeMutableBytes { target in
        target.baseAddress!.advanced(by: inChunk).copyMemory(
          from: bytes.baseAddress!.advanced(by: done), byteCount: count)
      }
      chunks[chunkStart] = chunk
      done += count
    }
    size = max(size, offset + UInt64(bytes.count))
  }

  func truncate(to newSize: UInt64) {
    modified = true
    if newSize < size {
      baseLimit = min(baseLimit, newSize)
      for start in chunks.keys where start >= newSize { chunks[start] = nil }
      let partial = newSize - newSize % UInt64(Self.chunkSize)
      if partial < newSize, var chunk = chunks[partial] {
        let from = Int(newSize - partial)
        chunk.replaceSubrange(from..<chunk.count, with: repeatElement(0, count: chunk.count - from))
        chunks[partial] = chunk
      }
    }
    size = newSize
  }

  /// What SQLite's xDelete does: the name is gone (a later create starts empty).
  func delete() {
    modified = true
    exists = false
    baseInode = nil
    baseLimit = 0
    chunks = [:]
    size = 0
  }

  /// What opening with SQLITE_OPEN_CREATE does to a file that does not exist.
  func create() {
    guard !exists else { return }
    modified = true
    exists = true
  }

  private func loadChunk(at start: UInt64) throws -> [UInt8] {
    var chunk = try baseBytes(from: start, to: min(size, start + UInt64(Self.chunkSize)))
    chunk += repeatElement(0, count: Self.chunkSize - chunk.count)
    return chunk
  }

  /// The file system's bytes of `start..<end`, zeros past what a truncation cut off.
  private func baseBytes(from start: UInt64, to end: UInt64) throws -> [UInt8] {
    guard start < end else { return [] }
    var bytes: [UInt8] = []
    if let baseInode, start < baseLimit {
      let readEnd = min(end, baseLimit)
      bytes = try files.read(baseInode, offset: start, length: Int(readEnd - start))
    }
    if bytes.count < Int(end - start) { bytes += repeatElement(0, count: Int(end - start) - bytes.count) }
    return bytes
  }
}
