import Foundation
import ReelCore

#if canImport(Glibc)
  import Glibc
#endif

enum ReelErrorForMount {
  static func inodeOutOfRange(_ inode: UInt64) -> ReelError {
    ReelError(
      .incompatible, "inode \(inode) is past what reel mount can number (2^32 per point)",
      remedy: "read the file with `reel files` instead")
  }

  static func notDirectory() -> ReelError {
    ReelError(.usage, "not a directory", errno: ENOTDIR)
  }

  static func isDirectory() -> ReelError {
    ReelError(.usage, "is a directory", errno: EISDIR)
  }

  static func notSymlink() -> ReelError {
    ReelError(.usage, "not a symbolic link", errno: EINVAL)
  }

  static func missing() -> ReelError {
    ReelError(.notFound, "no such file or directory", errno: ENOENT)
  }

  static func unknownInode(_ inode: UInt64) -> ReelError {
    ReelError(.notFound, "inode \(inode) is not known to this mount", errno: ESTALE)
  }
}

/// What the kernel is told for an error, and the one line the user is told on standard
/// error: each distinct message once, so a `find` over a damaged file system does not
/// print the same complaint ten thousand times.
final class MountErrorLog: Sendable {
  private let seen = Locked<Set<String>>([])
  private let write: @Sendable (String) -> Void
  private static let rememberedLimit = 10_000

  init(write: @escaping @Sendable (String) -> Void) {
    self.write = write
  }

  /// The errno for `error`; logs it unless it is an ordinary "not found" or a refusal
  /// the caller expects (`quiet`).
  func errno(for error: any Error, quiet: Bool = false) -> Int32 {
    guard let error = error as? ReelError else {
      report("\(error)")
      return EIO
    }
    let number = Self.errno(for: error)
    if !quiet && number != ENOENT && number != ENOTDIR && number != EISDIR && number != EROFS
      && number != ENODATA && number != ERANGE
    {
      report(error.description)
    }
    return number
  }

  func report(_ line: String) {
    let first = seen.withLock { seen in
      guard seen.count < Self.rememberedLimit else { return !seen.contains(line) }
      return seen.insert(line).inserted
    }
    if first { write(line) }
  }

  static func errno(for error: ReelError) -> Int32 {
    if let number = error.errno, error.kind != .corrupt { return number }
    switch error.kind {
    case .notFound: return ENOENT
    case .corrupt: return EIO
    // "Wrong medium type": a file system this reader cannot show (the log names it).
    case .incompatible: return EMEDIUMTYPE
    case .usage: return EINVAL
    case .interrupted: return EINTR
    default: return EIO
    }
  }
}
