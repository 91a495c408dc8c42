import Foundation
import ReelCore

#if canImport(Glibc)
  import Glibc
#endif

/// The steps that make a file's existence and contents survive power loss.
package enum Durable {
  /// Makes directory entries (create, rename, unlink) inside `directory` durable.
  package static func syncDirectory(_ directory: String) throws {
    let dir = try PosixFile(path: directory, flags: O_RDONLY | O_DIRECTORY)
    try dir.sync()
  }

  /// Writes `bytes` to `path` so that after a crash the file holds either its old
  /// contents or all of `bytes`: temporary file, fsync, rename, fsync the directory. The
  /// temporary file is created new (`O_EXCL|O_NOFOLLOW`, owner-only `mode`), so nothing
  /// planted at its name is written through; the rename replaces a link at `path` itself.
  package static func replaceFile(at path: String, with bytes: [UInt8], mode: mode_t = 0o600) throws {
    let temporary = path + ".tmp-\(getpid())"
    do {
      let file = try PosixFile.createNew(temporary, mode: mode, leftover: true)
      // A mode wider than owner-only is meant (a metrics file): not the umask's to narrow.
      if mode & ~0o700 != 0 && fchmod(file.descriptor, mode) != 0 {
        throw PosixFile.error(errno, "chmod", temporary)
      }
      try file.write(bytes, at: 0)
      try file.sync()
    } catch {
      if (error as? ReelError)?.errno != EEXIST { unlink(temporary) }
      throw error
    }
    do {
      try rename(temporary, to: path)
    } catch {
      unlink(temporary)
      throw error
    }
  }

  /// Writes `bytes` to a new file at `path`, never replacing anything there, not even a
  /// file created a moment ago by someone else or a dangling symbolic link: a temporary
  /// file created with `mode` in the same folder, written and fsynced, then hard-linked to
  /// `path` (which fails if the name is taken), then the folder fsynced. A crash leaves no
  /// file or a whole one (and perhaps a `.NAME.tmp-PID` to delete). A taken name fails
  /// with errno EEXIST.
  package static func createNew(at path: String, with bytes: [UInt8], mode: mode_t) throws {
    let directory = parent(of: path)
    let temporary = directory + "/." + (path as NSString).lastPathComponent + ".tmp-\(getpid())"
    do {
      let file = try PosixFile.createNew(temporary, mode: mode)
      defer { unlink(temporary) }
      try file.write(bytes, at: 0)
      try file.sync()
      if link(temporary, path) != 0 {
        let code = errno
        // File systems without hard links (FAT, some FUSE): check, then rename.
        guard code == EPERM || code == EOPNOTSUPP || code == ENOSYS else {
          throw PosixFile.error(code, "link to", path)
        }
        var info = stat()
        guard lstat(path, &info) != 0 else { throw PosixFile.error(EEXIST, "link to", path) }
        guard Glibc.rename(temporary, path) == 0 else { throw PosixFile.error(errno, "rename to", path) }
      }
    }
    try syncDirectory(directory)
  }

  /// Creates `path` empty and owner-only if nothing is there, for files another library
  /// creates with its own default mode (SQLite: 0644 less the umask, and its journal, WAL
  /// and shared-memory files copy the database file's mode). A link at `path` is refused.
  package static func createOwnerOnlyIfMissing(_ path: String) throws {
    _ = try PosixFile(path: path, flags: O_WRONLY | O_CREAT | O_NOFOLLOW, mode: 0o600)
  }

  /// Renames `source` to `destination` (replacing it) and makes the rename durable.
  package static func rename(_ source: String, to destination: String) throws {
    guard Glibc.rename(source, destination) == 0 else { throw PosixFile.error(errno, "rename to", destination) }
    try syncDirectory(parent(of: destination))
  }

  /// `path` made absolute against the current folder, for paths that are recorded (in a
  /// catalog, a report) and used again later from elsewhere.
  package static func absolute(_ path: String) -> String {
    guard !path.hasPrefix("/") else { return path }
    let base = FileManager.default.currentDirectoryPath
    return ((base as NSString).appendingPathComponent(path.isEmpty ? "." : path) as NSString).standardizingPath
  }

  /// The folder holding `path`, as a path that can be opened: `deletingLastPathComponent`
  /// gives "" for a bare relative name such as `archives`, which is the current folder.
  package static func parent(of path: String) -> String {
    let parent = (path as NSString).deletingLastPathComponent
    return parent.isEmpty ? "." : parent
  }

  /// Creates `path` and any missing parents (owner-only, `mode`, whatever the umask),
  /// syncing each parent it created into. Existing folders keep their mode.
  package static func makeDirectory(_ path: String, mode: mode_t = 0o700) throws {
    var missing: [String] = []
    var current = path.isEmpty ? "." : path
    while !FileManager.default.fileExists(atPath: current) {
      missing.append(current)
      let parent = (current as NSString).deletingLastPathComponent
      if parent == current || parent.isEmpty { break }
      current = parent
    }
    for directory in missing.reversed() {
      if mkdir(directory, mode) != 0 {
        guard errno == EEXIST else { throw PosixFile.error(errno, "mkdir", directory) }
      } else if mode & ~0o700 != 0 {
        // The umask may have taken bits the caller asked for on purpose.
        chmod(directory, mode)
      }
      try syncDirectory(parent(of: directory))
    }
  }
}
