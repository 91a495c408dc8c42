import CLinux
import Foundation
import ReelCore

#if canImport(Glibc)
  import Glibc
#endif

/// A folder held open, in which entries are made and changed only by one name relative to
/// its descriptor (`openat`, `mkdirat`, `symlinkat`, `linkat`, `mknodat`), never following
/// a symbolic link at that name: what another process plants in the folder cannot redirect
/// a write outside it. Names are bytes; callers check them (no "/", ".", ".." or NUL).
package final class AnchoredDirectory: Sendable {
  /// For messages only: the folder as the user knows it.
  package let path: String
  package let descriptor: Int32

  private init(path: String, descriptor: Int32) {
    self.path = path
    self.descriptor = descriptor
  }

  deinit { close(descriptor) }

  /// Opens `path` (following links in it: the user named it), creating it and missing
  /// parents (0700) when absent.
  package static func open(_ path: String, create: Bool) throws -> AnchoredDirectory {
    var fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if fd < 0 && errno == ENOENT && create {
      try Durable.makeDirectory(path)
      fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    }
    guard fd >= 0 else {
      let code = errno
      if code == ELOOP {
        throw ReelError(
          .usage, "\(path): too many levels of symbolic links (a link loop); nothing was written",
          remedy: "give a folder that is not inside a link loop",
          errno: code)
      }
      if code == ENOTDIR {
        throw ReelError(.usage, "\(path) is not a folder; nothing was written", remedy: "give a folder", errno: code)
      }
      throw PosixFile.error(code, "open folder", path)
    }
    return AnchoredDirectory(path: path, descriptor: fd)
  }

  package func pathOf(_ name: [UInt8]) -> String {
    path + "/" + String(decoding: name, as: UTF8.self)
  }

  /// The kind of what `name` holds (`S_IFREG`…), nil when nothing does; a link is a link.
  package func entryType(_ name: [UInt8]) throws -> mode_t? {
    var info = stat()
    let result = withCName(name) { fstatat(descriptor, $0, &info, AT_SYMLINK_NOFOLLOW) }
    if result != 0 {
      if errno == ENOENT { return nil }
      throw PosixFile.error(errno, "stat", pathOf(name))
    }
    return info.st_mode & S_IFMT
  }

  /// Opens the folder `name` holds, refusing a symbolic link there.
  package func subdirectory(_ name: [UInt8]) throws -> AnchoredDirectory {
    let fd = withCName(name) { openat(descriptor, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
    guard fd >= 0 else { throw PosixFile.error(errno, "open folder", pathOf(name)) }
    return AnchoredDirectory(path: pathOf(name), descriptor: fd)
  }

  package func makeDirectory(_ name: [UInt8], mode: mode_t = 0o700) throws {
    guard withCName(name, { mkdirat(descriptor, $0, mode) }) == 0 else {
      throw PosixFile.error(errno, "mkdir", pathOf(name))
    }
  }

  /// A new regular file (`O_CREAT|O_EXCL|O_NOFOLLOW`): never an existing file or link.
  package func createFile(_ name: [UInt8], mode: mode_t = 0o600) throws -> PosixFile {
    let fd = withCName(name) {
      openat(descriptor, $0, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode)
    }
    guard fd >= 0 else { throw PosixFile.error(errno, "create", pathOf(name)) }
    return PosixFile(adopting: fd, path: pathOf(name))
  }

  package func makeSymbolicLink(_ name: [UInt8], target: [UInt8]) throws {
    let result = withCName(target) { target in withCName(name) { symlinkat(target, descriptor, $0) } }
    guard result == 0 else { throw PosixFile.error(errno, "symlink", pathOf(name)) }
  }

  /// A hard link at `name` to what `existing` holds in `folder` (a link there is linked,
  /// not followed).
  package func makeHardLink(_ name: [UInt8], to existing: [UInt8], in folder: AnchoredDirectory) throws {
    let result = withCName(existing) { old in withCName(name) { linkat(folder.descriptor, old, descriptor, $0, 0) } }
    guard result == 0 else { throw PosixFile.error(errno, "link", pathOf(name)) }
  }

  /// A device file, fifo or socket node (`mode` has the type bits).
  package func makeNode(_ name: [UInt8], mode: mode_t, device: UInt64) throws {
    guard withCName(name, { mknodat(descriptor, $0, mode, dev_t(device)) }) == 0 else {
      throw PosixFile.error(errno, "mknod", pathOf(name))
    }
  }

  /// Removes the file or link `name` holds (never a folder).
  package func removeEntry(_ name: [UInt8]) throws {
    guard withCName(name, { unlinkat(descriptor, $0, 0) }) == 0 else {
      throw PosixFile.error(errno, "remove", pathOf(name))
    }
  }

  /// Gives the entry `name` (a link itself, not what it points to) its owner, permission
  /// bits, extended attributes and times, in the order that keeps each: owner first
  /// (chown clears set-user-ID and file capabilities), attributes while the mode still lets
  /// the owner write (user.* needs it), then the mode, times last. Returns the attributes that could not be set,
  /// with why; everything else failing throws.
  package func setMetadata(of name: [UInt8], _ metadata: EntryMetadata) throws -> [(name: String, error: ReelError)] {
    let node = withCName(name) { openat(descriptor, $0, reel_o_path() | O_NOFOLLOW | O_CLOEXEC) }
    guard node >= 0 else { throw PosixFile.error(errno, "open", pathOf(name)) }
    defer { close(node) }
    if let owner = metadata.owner {
      guard fchownat(node, "", owner.uid, owner.gid, reel_at_empty_path() | AT_SYMLINK_NOFOLLOW) == 0 else {
        throw PosixFile.error(errno, "chown", pathOf(name))
      }
    }
    var failed: [(name: String, error: ReelError)] = []
    // The folder by descriptor, then the name not followed: never a file elsewhere.
    let entryPath = Array("/proc/self/fd/\(descriptor)/".utf8) + name
    for attribute in metadata.extendedAttributes {
      let result = withCName(entryPath) { path in
        attribute.value.withUnsafeBytes { value in
          reel_lsetxattr(path, attribute.name, value.baseAddress, value.count)
        }
      }
      if result != 0 {
        failed.append((attribute.name, PosixFile.error(errno, "set \(attribute.name) on", pathOf(name))))
      }
    }
    if let permissions = metadata.permissions {
      // Through the descriptor: what is at `name` now may no longer be what was opened.
      guard chmod("/proc/self/fd/\(node)", permissions) == 0 else {
        throw PosixFile.error(errno, "chmod", pathOf(name))
      }
    }
    var times = [metadata.accessTime, metadata.modificationTime]
    let result = withCName(name) { utimensat(descriptor, $0, &times, AT_SYMLINK_NOFOLLOW) }
    guard result == 0 else { throw PosixFile.error(errno, "set times of", pathOf(name)) }
    return failed
  }

  /// Commits everything written on the file system holding this folder (files, folders,
  /// their metadata) in one call.
  package func syncFileSystem() throws {
    guard reel_syncfs(descriptor) == 0 else { throw PosixFile.error(errno, "syncfs", path) }
  }

  package func sync() throws {
    guard fsync(descriptor) == 0 else { throw PosixFile.error(errno, "fsync", path) }
  }

  private func withCName<T>(_ name: [UInt8], _ body: (UnsafePointer<CChar>) -> T) -> T {
    (name + [0]).withUnsafeBufferPointer { bytes in
      bytes.withMemoryRebound(to: CChar.self) { body($0.baseAddress!) }
    }
  }
}

/// What `AnchoredDirectory.setMetadata` gives an entry.
package struct EntryMetadata: Sendable {
  /// nil leaves the owner as created (a user other than root cannot give files away).
  package var owner: (uid: uid_t, gid: gid_t)?
  /// nil for symbolic links, whose mode Linux does not keep.
  package var permissions: mode_t?
  package var extendedAttributes: [(name: String, value: [UInt8])]
  package var accessTime: timespec
  package var modificationTime: timespec

  package init(
    owner: (uid: uid_t, gid: gid_t)?, permissions: mode_t?, extendedAttributes: [(name: String, value: [UInt8])],
    accessTime: timespec, modificationTime: timespec
  ) {
    self.owner = owner
    self.permissions = permissions
    self.extendedAttributes = extendedAttributes
    self.accessTime = accessTime
    self.modificationTime = modificationTime
  }
}
