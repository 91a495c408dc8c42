import CLinux
import Foundation
import ReelCore

#if canImport(Glibc)
  import Glibc
#endif

/// Direct I/O (O_DIRECT) for large files written or read once in order — archives and
/// their staged members: the bytes go between the disk and a few reused, aligned buffers
/// instead of through the page cache. Writing a fresh page-cache page costs more than the
/// copy itself (the kernel allocates and charges every page; on virtual machines the host
/// faults it in too), a sealed archive is not read again soon, and a read-back that
/// bypasses the cache proves what the disk holds. Where the file system refuses O_DIRECT
/// (tmpfs, some network file systems) the same calls go through the page cache.
package enum DirectIO {
  /// Buffer and offset alignment every Linux file system accepts for O_DIRECT.
  package static let alignment = 4096
  /// Bytes per read or write.
  package static let blockSize = 1 << 20

  /// Opens (or creates) `path`, then asks for direct I/O on it. Opening with O_DIRECT
  /// instead would, on a file system that refuses it, fail only after O_CREAT made the
  /// file, and a retry with O_EXCL would then find it there.
  static func openDirect(_ path: String, flags: Int32, mode: mode_t) throws -> (PosixFile, direct: Bool) {
    let file = try PosixFile(path: path, flags: flags, mode: mode)
    return (file, setDirect(file, true))
  }

  /// Turns direct I/O on or off for an open file; false when the file system refuses.
  @discardableResult
  static func setDirect(_ file: PosixFile, _ on: Bool) -> Bool {
    let flags = fcntl(file.descriptor, F_GETFL)
    guard flags >= 0 else { return false }
    let wanted = on ? flags | reel_o_direct() : flags & ~reel_o_direct()
    return wanted == flags || fcntl(file.descriptor, F_SETFL, wanted) == 0
  }

  static func isDirect(_ file: PosixFile) -> Bool {
    fcntl(file.descriptor, F_GETFL) & reel_o_direct() != 0
  }

  static func allocate() -> UnsafeMutableRawBufferPointer {
    .allocate(byteCount: blockSize, alignment: alignment)
  }

  /// A second descriptor of `file`'s own inode (through /proc/self/fd, whatever its name
  /// points at now) that reads or writes with direct I/O, for the large aligned pieces;
  /// `file` stays for the small ones. Nil where the file system refuses direct I/O.
  package static func direct(_ file: PosixFile, writing: Bool) -> PosixFile? {
    let descriptor = open("/proc/self/fd/\(file.descriptor)", (writing ? O_WRONLY : O_RDONLY) | O_CLOEXEC)
    guard descriptor >= 0 else { return nil }
    let other = PosixFile(adopting: descriptor, path: file.path)
    return setDirect(other, true) ? other : nil
  }
}

/// Appends to a new file in 1 MiB direct writes issued on a background thread, so the disk
/// works while the caller prepares the next bytes. `finish` writes the tail and reports
/// the first failure; the caller still fsyncs (`file.sync()`) for the metadata and the
/// disk's cache.
// Its state is shared with its write queue under `condition`, which the compiler cannot see.
package final class DirectFileWriter: @unchecked Sendable {
  package let file: PosixFile
  private let openedDirect: Bool
  package private(set) var size: UInt64 = 0
  private var current: UnsafeMutableRawBufferPointer
  private var filled = 0
  private let writes = DispatchQueue(label: "reel.direct-writer")
  private let condition = NSCondition()
  private var spare: [UnsafeMutableRawBufferPointer]
  private let all: [UnsafeMutableRawBufferPointer]
  private var failure: (any Error)?
  private var finished = false
  /// Bytes handed to the background writes so far (whole buffers, then the padded tail).
  private var queued: UInt64 = 0
  /// The file's first bytes whose writes have completed (writes run one at a time, in
  /// order), not counting the tail's padding; and whether that is all there will be.
  private var completed: UInt64 = 0
  private var allCompleted = false

  /// Creates `path` (which must not exist) for writing; `buffers` bounds the bytes waiting
  /// for the disk to `buffers` MiB.
  package init(creating path: String, mode: mode_t = 0o600, buffers: Int = 4) throws {
    precondition(buffers >= 2)
    (file, openedDirect) = try DirectIO.openDirect(path, flags: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, mode: mode)
    all = (0..<buffers).map { _ in DirectIO.allocate() }
    current = all[0]
    spare = Array(all.dropFirst())
  }

  deinit {
    writes.sync {}
    for buffer in all { buffer.deallocate() }
  }

  package var path: String { file.path }

  /// Whether the writes bypass the page cache (still true after `finish`).
  package var direct: Bool { DirectIO.isDirect(file) }

  package func append(_ bytes: UnsafeRawBufferPointer) throws {
    precondition(!finished)
    var offset = 0
    while offset < bytes.count {
      let count = min(bytes.count - offset, current.count - filled)
      UnsafeMutableRawBufferPointer(rebasing: current[filled..<(filled + count)])
        .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)]))
      filled += count
      offset += count
      if filled == current.count { try handOff() }
    }
    size += UInt64(bytes.count)
  }

  package func append(_ bytes: [UInt8]) throws {
    try bytes.withUnsafeBytes { try append($0) }
  }

  /// Writes what is buffered and waits for every write; the file then holds exactly
  /// `size` bytes.
  package func finish() throws {
    guard !finished else { return }
    finished = true
    if filled > 0 {
      // A direct write must cover whole aligned blocks: pad the tail, then cut it off.
      let padded = openedDirect ? (filled + DirectIO.alignment - 1) / DirectIO.alignment * DirectIO.alignment : filled
      if padded > filled {
        UnsafeMutableRawBufferPointer(rebasing: current[filled..<padded]).initializeMemory(as: UInt8.self, repeating: 0)
      }
      try handOff(count: padded, logical: filled)
    }
    writes.sync {}
    defer {
      condition.withLock {
        allCompleted = true
        condition.broadcast()
      }
    }
    if let failure = condition.withLock({ failure }) { throw failure }
    if openedDirect, try file.size() != size { try file.truncate(to: size) }
  }

  /// Waits until the writes have completed past `offset` or there are no more; returns how
  /// far they have completed and whether that is the end (after `finish`, or a failure).
  /// A reader on another thread can follow the writer with it and read back, from the
  /// disk, each piece whose direct write has returned.
  package func waitForWrites(beyond offset: UInt64) -> (completed: UInt64, final: Bool) {
    condition.withLock {
      while completed <= offset && !allCompleted && failure == nil { condition.wait() }
      return (completed, allCompleted || failure != nil)
    }
  }

  /// Queues the current buffer (its first `count` bytes, default all that is filled, of
  /// which the first `logical` are the file's) for writing and takes a free one, waiting
  /// while every buffer is in flight.
  private func handOff(count: Int? = nil, logical: Int? = nil) throws {
    nonisolated(unsafe) let buffer = current
    let length = count ?? filled
    let end = queued + UInt64(logical ?? length)
    let start = queued
    queued += UInt64(length)
    writes.async { [self] in
      var writeError: (any Error)?
      if condition.withLock({ failure == nil }) {
        let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<length])
        do {
          try file.write(bytes, at: start)
        } catch {
          // Some file systems accept O_DIRECT when it is set and refuse it at write: go
          // on through the page cache.
          if DirectIO.isDirect(file), DirectIO.setDirect(file, false) {
            do { try file.write(bytes, at: start) } catch { writeError = error }
          } else {
            writeError = error
          }
        }
      }
      condition.withLock {
        if failure == nil, let writeError { failure = writeError }
        if failure == nil { completed = end }
        spare.append(buffer)
        condition.broadcast()
      }
    }
    filled = 0
    current = condition.withLock {
      while spare.isEmpty { condition.wait() }
      return spare.removeLast()
    }
    if let failure = condition.withLock({ failure }) { throw failure }
  }
}

/// Reads a file from its start in 1 MiB direct reads (through the page cache where the file
/// system refuses O_DIRECT).
// Its read cursor and buffer are used by one thread at a time (a read-back handed to a worker).
package final class DirectFileReader: @unchecked Sendable {
  package let file: PosixFile
  private let buffer = DirectIO.allocate()
  private var start = 0
  private var end = 0
  private var offset: UInt64 = 0

  package init(path: String) throws {
    (file, _) = try DirectIO.openDirect(path, flags: O_RDONLY, mode: 0)
  }

  /// Whether the reads bypass the page cache.
  package var direct: Bool { DirectIO.isDirect(file) }

  deinit { buffer.deallocate() }

  /// Copies the next bytes into `destination`; 0 at the end of the file.
  package func read(into destination: UnsafeMutableRawBufferPointer) throws -> Int {
    if start == end {
      start = 0
      end = try fill()
      offset += UInt64(end)
      if end == 0 { return 0 }
    }
    let count = min(destination.count, end - start)
    destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[start..<(start + count)]))
    start += count
    return count
  }

  /// The `count` bytes at `offset` (at most one block, from an aligned offset), read in one
  /// go; the view is valid until the next read. Fails when the file ends before them, so a
  /// file another thread is still writing can be read up to where its writes have completed.
  package func read(exactly count: Int, at offset: UInt64) throws -> UnsafeRawBufferPointer {
    precondition(count <= buffer.count && offset % UInt64(DirectIO.alignment) == 0)
    // Direct reads cover whole aligned blocks; past the end of the file they come back short.
    let aligned = min(buffer.count, (count + DirectIO.alignment - 1) / DirectIO.alignment * DirectIO.alignment)
    let got = try read(count: aligned, at: offset)
    guard got >= count else {
      throw ReelError(
        .io, "\(file.path): ends at byte \(offset + UInt64(got)), before the \(offset + UInt64(count)) bytes written")
    }
    return UnsafeRawBufferPointer(rebasing: buffer[0..<count])
  }

  /// One read of the next block. A short read means the end of the file: another read from
  /// the unaligned offset after it would be refused under O_DIRECT.
  private func fill() throws -> Int {
    try read(count: buffer.count, at: offset)
  }

  private func read(count wanted: Int, at offset: UInt64) throws -> Int {
    while true {
      let count = pread(file.descriptor, buffer.baseAddress, wanted, off_t(offset))
      if count >= 0 { return count }
      if errno == EINTR { continue }
      // Refused at read though accepted when set (as for writes): read through the cache.
      if errno == EINVAL, DirectIO.isDirect(file), DirectIO.setDirect(file, false) { continue }
      throw PosixFile.error(errno, "read", file.path)
    }
  }
}
