import CLinux
import Foundation
import ReelCore

#if canImport(Glibc)
  import Glibc
#endif

/// A file descriptor with the few calls durability needs, each turning errno into a
/// `ReelError` that names the file. Closed when the last reference goes away, so a sync
/// running outside a lock can never see its descriptor reused.
package final class PosixFile: Sendable {
  package let path: String
  package let descriptor: Int32

  /// `mode` applies when `flags` creates the file: owner-only by default, whatever the
  /// caller's umask (docs/store-layout.md, "Modes").
  package init(path: String, flags: Int32, mode: mode_t = 0o600) throws {
    let fd = open(path, flags | O_CLOEXEC, mode)
    guard fd >= 0 else { throw Self.error(errno, "open", path) }
    self.path = path
    self.descriptor = fd
  }

  /// Takes over a descriptor opened another way (relative to a folder: AnchoredDirectory).
  package init(adopting descriptor: Int32, path: String) {
    self.path = path
    self.descriptor = descriptor
  }

  deinit { close(descriptor) }

  private init(descriptor: Int32, path: String) {
    self.descriptor = descriptor
    self.path = path
  }

  /// An empty anonymous file in memory (memfd), gone when closed: for libraries that read
  /// a descriptor (libblkid) what Reel holds elsewhere. `name` shows in /proc/PID/fd.
  package static func anonymousMemory(name: String) throws -> PosixFile {
    let fd = reel_memfd_create(name)
    guard fd >= 0 else { throw Self.error(errno, "memfd_create", "memfd:" + name) }
    return PosixFile(descriptor: fd, path: "memfd:" + name)
  }

  package static func openForReading(_ path: String) throws -> PosixFile {
    try PosixFile(path: path, flags: O_RDONLY)
  }

  /// Creates a file under a name nothing holds yet: never opens an existing file and never
  /// follows a symbolic link at `path`, so a name planted in a folder other users can write
  /// is refused rather than written through. `leftover`: the name is a temporary one of
  /// this user's, which a crashed process with the same pid may have left; a regular file
  /// this user owns there is removed (unlinked, never opened) and the name taken again.
  package static func createNew(
    _ path: String, readable: Bool = false, mode: mode_t = 0o600, leftover: Bool = false
  ) throws -> PosixFile {
    let flags = (readable ? O_RDWR : O_WRONLY) | O_CREAT | O_EXCL | O_NOFOLLOW
    do {
      return try PosixFile(path: path, flags: flags, mode: mode)
    } catch let error as ReelError where error.errno == EEXIST {
      var info = stat()
      if leftover, lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG, info.st_uid == geteuid(),
        unlink(path) == 0
      {
        return try createNew(path, readable: readable, mode: mode)
      }
      let isLink = lstat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFLNK
      var refused = ReelError(
        .alreadyExists,
        "\(path) already exists\(isLink ? " and is a symbolic link" : ""); Reel creates its files only under new names and never writes through an existing file or link; nothing was written to it",
        remedy: "remove \(path) if it is yours and retry, or choose a folder only you can write")
      refused.errno = EEXIST
      throw refused
    }
  }

  /// Opens (creating, owner-only) a lock file, refusing a symbolic link at `path`.
  package static func openLock(_ path: String) throws -> PosixFile {
    try PosixFile(path: path, flags: O_RDWR | O_CREAT | O_NOFOLLOW, mode: 0o600)
  }

  /// Takes an exclusive `flock` on the file unless another open of it holds one (false
  /// then). A child process between fork and exec holds a copy of every descriptor,
  /// close-on-exec ones too, for a moment: a refusal is tried again for up to 0.2 s
  /// before it counts, so a process spawned elsewhere cannot pass for a second holder.
  package func tryLockExclusive() -> Bool {
    for attempt in 1...10 {
      if flock(descriptor, LOCK_EX | LOCK_NB) == 0 { return true }
      guard errno == EWOULDBLOCK || errno == EINTR, attempt < 10 else { return false }
      usleep(20_000)
    }
    return false
  }

  package func size() throws -> UInt64 {
    var info = stat()
    guard fstat(descriptor, &info) == 0 else { throw Self.error(errno, "stat", path) }
    return UInt64(info.st_size)
  }

  /// Reads up to `count` bytes at `offset`; fewer only at end of file.
  package func read(at offset: UInt64, count: Int) throws -> [UInt8] {
    var buffer = [UInt8](repeating: 0, count: count)
    let got = try buffer.withUnsafeMutableBytes { try read(into: $0, at: offset) }
    if got < count { buffer.removeLast(count - got) }
    return buffer
  }

  /// Asks the kernel to start reading `range` into the page cache now, so a later read of
  /// it does not wait on the disk. Only advice: nothing fails if it is not taken.
  package func prefetch(_ range: Range<UInt64>) {
    guard !range.isEmpty else { return }
    _ = posix_fadvise(descriptor, off_t(range.lowerBound), off_t(range.count), Int32(POSIX_FADV_WILLNEED))
  }

  /// Fills `buffer` from `offset`, stopping early only at end of file; returns bytes read.
  package func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws -> Int {
    var done = 0
    while done < buffer.count {
      let n = pread(descriptor, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
      if n < 0 {
        if errno == EINTR { continue }
        throw Self.error(errno, "read", path)
      }
      if n == 0 { break }
      done += n
    }
    return done
  }

  package func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
    var done = 0
    while done < bytes.count {
      let n = pwrite(descriptor, bytes.baseAddress! + done, bytes.count - done, off_t(offset) + off_t(done))
      if n < 0 {
        if errno == EINTR { continue }
        throw Self.error(errno, "write", path)
      }
      done += n
    }
  }

  /// Writes the buffers back to back from `offset` with as few system calls as possible.
  package func write(_ buffers: [UnsafeRawBufferPointer], at offset: UInt64) throws {
    var vectors = buffers.filter { !$0.isEmpty }.map {
      iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count)
    }
    var position = offset
    var first = 0
    while first < vectors.count {
      let n = vectors[first...].withUnsafeBufferPointer {
        pwritev(descriptor, $0.baseAddress, Int32(min($0.count, 1024)), off_t(position))
      }
      if n < 0 {
        if errno == EINTR { continue }
        throw Self.error(errno, "write", path)
      }
      position += UInt64(n)
      advance(&vectors, first: &first, by: n)
    }
  }

  package func write(_ bytes: [UInt8], at offset: UInt64) throws {
    try bytes.withUnsafeBytes { try write($0, at: offset) }
  }

  /// Copies `count` bytes at `sourceOffset` of `source` to `offset` in this file, inside the
  /// kernel where it can (copy_file_range), else through a buffer.
  package func copy(from source: PosixFile, at sourceOffset: UInt64, count: Int, to offset: UInt64) throws {
    var done = 0
    while done < count {
      let n = reel_copy_file_range(
        source.descriptor, Int64(sourceOffset) + Int64(done), descriptor, Int64(offset) + Int64(done), count - done)
      if n > 0 {
        done += Int(n)
        continue
      }
      if n < 0 && errno == EINTR { continue }
      if n < 0 && ![EXDEV, EINVAL, ENOSYS, EOPNOTSUPP].contains(errno) { throw Self.error(errno, "copy into", path) }
      // No in-kernel copy here (or the source ended early): copy what is left by hand.
      let left = count - done
      let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: min(left, 1 << 20), alignment: 4096)
      defer { buffer.deallocate() }
      while done < count {
        let step = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<min(count - done, buffer.count)])
        let got = try source.read(into: step, at: sourceOffset + UInt64(done))
        guard got == step.count else {
          throw ReelError(
            .io, "\(source.path): \(count) bytes expected at \(sourceOffset), the file ends before")
        }
        try write(UnsafeRawBufferPointer(step), at: offset + UInt64(done))
        done += got
      }
    }
  }

  /// Asks the kernel to start writing the range's dirty pages to disk, without waiting,
  /// so a later sync finds less to do. A hint: errors surface at the next sync.
  package func startWriteback(offset: UInt64, count: UInt64) {
    _ = reel_start_writeback(descriptor, Int64(offset), Int64(count))
  }

  /// Data and the metadata needed to read it back (size), not timestamps.
  package func syncData() throws {
    guard fdatasync(descriptor) == 0 else { throw Self.error(errno, "fdatasync", path) }
  }

  package func sync() throws {
    guard fsync(descriptor) == 0 else { throw Self.error(errno, "fsync", path) }
  }

  /// Copies this file (its first `limit` bytes, if given) into each destination at the
  /// same offsets, leaving 4 KiB blocks that are all zeros as holes.
  package func copySparse(to destinations: [PosixFile], limit: UInt64? = nil) throws {
    let chunk = 1 << 20
    let block = 4096
    var buffer = [UInt8](repeating: 0, count: chunk)
    var offset: UInt64 = 0
    while limit.map({ offset < $0 }) ?? true {
      let wanted = Int(min(UInt64(chunk), (limit ?? UInt64.max) - offset))
      let got = try buffer.withUnsafeMutableBytes {
        try read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<wanted]), at: offset)
      }
      if got == 0 { break }
      var start = 0
      while start < got {
        let end = min(start + block, got)
        if buffer[start..<end].contains(where: { $0 != 0 }) {
          for destination in destinations {
            try buffer.withUnsafeBytes {
              try destination.write(UnsafeRawBufferPointer(rebasing: $0[start..<end]), at: offset + UInt64(start))
            }
          }
        }
        start = end
      }
      offset += UInt64(got)
    }
  }

  /// Makes the range read as zeros without storing them (a hole), or by writing zeros
  /// where the file system cannot punch holes.
  package func punchHole(offset: UInt64, length: UInt64) throws {
    guard length > 0 else { return }
    if reel_punch_hole(descriptor, Int64(offset), Int64(length)) == 0 { return }
    guard errno == EOPNOTSUPP || errno == ENOSYS else { throw Self.error(errno, "punch hole in", path) }
    let zeros = [UInt8](repeating: 0, count: Int(min(length, 1 << 20)))
    var done: UInt64 = 0
    while done < length {
      let count = Int(min(UInt64(zeros.count), length - done))
      try zeros.withUnsafeBytes { try write(UnsafeRawBufferPointer(rebasing: $0[0..<count]), at: offset + done) }
      done += UInt64(count)
    }
  }

  package func truncate(to size: UInt64) throws {
    guard ftruncate(descriptor, off_t(size)) == 0 else { throw Self.error(errno, "truncate", path) }
  }

  /// Turns an errno from `operation` on `path` into a user-facing error.
  package static func error(_ code: Int32, _ operation: String, _ given: String) -> ReelError {
    var error = describe(code, operation, given)
    error.errno = code
    return error
  }

  private static func describe(_ code: Int32, _ operation: String, _ given: String) -> ReelError {
    let reason = String(cString: strerror(code))
    // An empty path reaching here is a bug upstream, but the message must still say
    // something a person can act on rather than ": not found".
    let path = given.isEmpty ? "(an empty path)" : given
    switch code {
    case ENOENT:
      return ReelError(.notFound, "\(path): not found (\(operation))")
    case EEXIST:
      return ReelError(.alreadyExists, "\(path): already exists")
    case ELOOP:
      return ReelError(
        .alreadyExists, "\(path): is a symbolic link; Reel does not follow links where it creates files (\(operation))",
        remedy: "remove the link if it is yours, or choose a folder only you can write")
    case ENOSPC, EDQUOT:
      return ReelError(
        .io, "\(path): \(operation) failed: \(reason)",
        remedy: "free space on the file system holding \(path), then retry")
    case EACCES, EPERM, EROFS:
      return ReelError(
        .io, "\(path): \(operation) failed: \(reason)",
        remedy: "check the permissions and mount options of \(path)")
    default:
      return ReelError(.io, "\(path): \(operation) failed: \(reason)")
    }
  }
}

/// Moves a scatter/gather list past `count` bytes a `writev`-style call transferred:
/// `first` skips the vectors done, and a vector done in part is shortened in place.
package func advance(_ vectors: inout [iovec], first: inout Int, by count: Int) {
  var remaining = count
  while first < vectors.count && remaining >= vectors[first].iov_len {
    remaining -= vectors[first].iov_len
    first += 1
  }
  if remaining > 0 {
    vectors[first].iov_base += remaining
    vectors[first].iov_len -= remaining
  }
}
