import ReelCore
import ReelIO

#if canImport(Glibc)
  import Glibc
#endif

/// What the content writers add to an extraction's report.
struct WrittenContent: Sendable {
  var bytes: UInt64 = 0
  var warnings: [String] = []
}

/// Writes one regular file's data (only its data ranges: holes stay holes) and then its
/// metadata, and gives entries their metadata. Used from several threads at once.
final class ContentWriter: Sendable {
  /// A file made by the walk, to fill.
  struct Job: Sendable {
    var file: PosixFile
    var name: [UInt8]
    var inode: UInt64
    var attributes: FileAttributes
    var path: [UInt8]
    var folder: AnchoredDirectory
    var pending: PendingFolder
  }

  /// Files are copied in pieces of this size, each read straight into a reused buffer
  /// (the store decodes a piece's blocks on several threads) and written from there.
  static let step = 4 << 20
  /// Pieces of one large file copied at once, each by its own thread: while one piece's
  /// pack reads wait on the disk, another's blocks are decoded or written out. One piece
  /// at a time left a core idle a fifth of the time on `reel pg`'s copy of a cluster,
  /// whose relation files are up to 1 GiB each.
  static let piecesInFlight = 2
  let files: any FileSystemReading
  let keepOwners: Bool
  private let done = Locked(WrittenContent())
  /// Buffers for pieces: fresh memory for each cost page faults and zeroing by the kernel.
  private let buffers = BufferPool(retainedBytes: 32 << 20)

  init(files: any FileSystemReading, keepOwners: Bool) {
    self.files = files
    self.keepOwners = keepOwners
  }

  var written: WrittenContent { done.withLock { $0 } }

  func write(_ job: Job) throws {
    try copyData(of: job.inode, size: job.attributes.size, to: job.file)
    try setMetadata(of: job.name, job.inode, job.attributes, path: job.path, in: job.folder)
  }

  private func copyData(of inode: UInt64, size: UInt64, to file: PosixFile) throws {
    var pieces: [(offset: UInt64, length: Int)] = []
    for range in try files.dataRanges(of: inode) {
      var offset = range.lowerBound
      let end = min(range.upperBound, size)
      while offset < end {
        let length = Int(min(UInt64(Self.step), end - offset))
        pieces.append((offset, length))
        offset += UInt64(length)
      }
    }
    // Pieces go to whichever thread is free; each writes its own at its offset, so the
    // order they finish in does not matter.
    let failure = Locked<(any Error)?>(nil)
    let bytesWritten = Locked<UInt64>(0)
    // One write into the file at a time, waited for asleep: the kernel serializes writes
    // to one file anyway, and a writer kept waiting there spun on the lock (2% of the
    // copy's CPU) while the other piece's blocks waited to be decoded.
    let writing = Locked(())
    let files = self.files
    let threads = max(1, min(Self.piecesInFlight, pieces.count))
    let pieceBuffers = (0..<threads).map { _ in buffers.take(Self.step) }
    defer { for buffer in pieceBuffers { buffers.recycle(buffer) } }
    forEachIndexOnThreads(pieces.count, threads: threads, name: "reel-files-piece") { [pieces] worker, index in
      do {
        try Interrupt.check()
        let piece = pieces[index]
        let target = UnsafeMutableRawBufferPointer(rebasing: pieceBuffers[worker].storage[0..<piece.length])
        let got = try files.read(inode, offset: piece.offset, into: target)
        try writing.withLock { _ in
          try file.write(UnsafeRawBufferPointer(rebasing: target[0..<got]), at: piece.offset)
        }
        bytesWritten.withLock { $0 += UInt64(got) }
        return true
      } catch {
        failure.withLock { if $0 == nil { $0 = error } }
        return false
      }
    }
    if let error = failure.withLock({ $0 }) { throw error }
    // The size, and the holes up to it, without writing zeros.
    try file.truncate(to: size)
    // Written back while the next files are read, so the closing syncfs has little left.
    file.startWriteback(offset: 0, count: size)
    let total = bytesWritten.withLock { $0 }
    done.withLock { $0.bytes += total }
  }

  func setMetadata(
    of name: [UInt8], _ inode: UInt64, _ attributes: FileAttributes, path: [UInt8], in folder: AnchoredDirectory
  ) throws {
    let metadata = EntryMetadata(
      owner: keepOwners ? (attributes.uid, attributes.gid) : nil,
      permissions: attributes.kind == .symlink ? nil : mode_t(attributes.permissions),
      extendedAttributes: try files.extendedAttributes(of: inode).map { ($0.name, $0.value) },
      accessTime: timespec(attributes.accessTime), modificationTime: timespec(attributes.modificationTime))
    for failure in try folder.setMetadata(of: name, metadata) {
      // ACLs are kept where the destination takes them; elsewhere the mode still holds.
      guard failure.name.hasPrefix("system.posix_acl_") else { throw failure.error }
      done.withLock {
        $0.warnings.append("\(FilePath.display(path)): \(failure.name) not kept: \(failure.error.message)")
      }
    }
  }
}

/// A few threads filling the files the walk makes, in the order it makes them. The first
/// failure stops the walk (`checkFailure`); files already handed over (made, so already
/// in the destination) are still filled.
final class ContentWriters: Sendable {
  let failures = Locked<(any Error)?>(nil)
  private let queue: BoundedQueue<ContentWriter.Job>
  private let threads: [WorkerThread]
  private let writer: ContentWriter

  init(_ writer: ContentWriter, threads count: Int) {
    self.writer = writer
    // Each queued job holds an open file: a few are enough to keep the writers busy.
    let queue = BoundedQueue<ContentWriter.Job>(capacity: 2 * max(1, count))
    self.queue = queue
    let failures = self.failures
    threads = WorkerThread.group(max(1, count), name: { "reel-files-get\($0)" }) { _ in
      while let job = try? queue.take() {
        do {
          try writer.write(job)
          job.pending.entryDone()
        } catch {
          failures.withLock { if $0 == nil { $0 = error } }
          job.pending.abandon()
        }
      }
    }
  }

  deinit {
    queue.cancel()
    threads.joinAll()
  }

  func write(_ job: ContentWriter.Job) {
    queue.put(job)
  }

  func checkFailure() throws {
    if let failure = failures.withLock({ $0 }) { throw failure }
  }

  /// Waits for every file handed over, then throws the first failure if there was one.
  func finish() throws {
    queue.close()
    threads.joinAll()
    try checkFailure()
  }
}

/// A folder being extracted: its metadata (times, mode) is set once every entry in it is
/// complete, including files the writers fill after the walk has moved on, so nothing
/// changes the folder after its times are set and a folder without write or search
/// permission is closed only when nothing more goes in. Counts one entry while the walk
/// lists it; a folder abandoned on an error keeps the metadata it was made with.
final class PendingFolder: Sendable {
  private struct State {
    var open = 1
    var abandoned = false
  }
  private let state = Locked(State())
  private let parent: PendingFolder?
  private let failures: Locked<(any Error)?>
  private let finish: @Sendable () throws -> Void

  init(parent: PendingFolder?, failures: Locked<(any Error)?>, finish: @escaping @Sendable () throws -> Void) {
    self.parent = parent
    self.failures = failures
    self.finish = finish
    parent?.entryStarted()
  }

  func entryStarted() {
    state.withLock { $0.open += 1 }
  }

  func entryDone() {
    let (complete, abandoned) = state.withLock { state -> (Bool, Bool) in
      state.open -= 1
      return (state.open == 0, state.abandoned)
    }
    guard complete else { return }
    if !abandoned && failures.withLock({ $0 == nil }) {
      do {
        try finish()
      } catch {
        failures.withLock { if $0 == nil { $0 = error } }
      }
    }
    parent?.entryDone()
  }

  func abandon() {
    state.withLock { $0.abandoned = true }
    entryDone()
  }
}
