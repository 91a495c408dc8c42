import Foundation

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
  /// contents or all of `bytes`: temporary file, fsync, rename, fsync the directory.
  package static func replaceFile(at path: String, with bytes: [UInt8]) throws {
    let temporary = path + ".tmp-\(getpid())"
    do {
      let file = try PosixFile(path: temporary, flags: O_WRONLY | O_CREAT | O_TRUNC)
      try file.write(bytes, at: 0)
      try file.sync()
    } catch {
      unlink(temporary)
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
      let file = try PosixFile(path: temporary, flags: O_WRONLY | O_CREAT | O_EXCL, mode: mode)
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

  /// Creates `path` and any missing parents, syncing each parent it created into.
  package static func makeDirectory(_ path: String) throws {
    var missing: [String] = []
    var current = path.isEmpty ? "." : path
    while !FileManager.default.fileExists(atPath: current) {
      missing.append(current)
      let parent = (current as NSString).deletingLastPathComponent
      if parent == current || parent.isEmpty { break }
      current = parent
    }
    for directory in missing.reversed() {
      if mkdir(directory, 0o755) != 0 && errno != EEXIST {
        throw PosixFile.error(errno, "mkdir", directory)
      }
      try syncDirectory(parent(of: directory))
    }
  }
}
