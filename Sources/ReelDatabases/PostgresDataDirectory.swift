import Foundation
import ReelCore
import ReelFiles

#if canImport(Glibc)
  import Glibc
#endif

/// A PostgreSQL data directory inside a file system at one point: found, checked, and
/// brought out into a private folder of the host with its tablespaces, ready to start.
package struct PostgresDataDirectory: Sendable {
  package let files: any FileSystemReading
  /// The data directory as resolved inside the file system (links followed).
  package let directory: ResolvedFile
  package let version: PostgresVersion
  /// "volume vm at seq 42 (…)", for messages.
  package let place: String

  /// Resolves `path` and checks it is a data directory (PG_VERSION naming a sane major
  /// version, global/pg_control present).
  package static func find(files: any FileSystemReading, path: [UInt8], place: String) throws
    -> PostgresDataDirectory
  {
    let shown = FilePath.display(path)
    let directory = try PathResolver(files: files, place: place).resolve(path)
    guard directory.attributes.kind == .directory else {
      throw ReelError(
        .notFound, "--pgdata \(shown) is not a folder in \(place), so not a PostgreSQL data directory",
        remedy: "give the data directory (the folder holding PG_VERSION), e.g. /var/lib/postgresql/15/main")
    }
    guard let versionFile = try files.lookup(FileName("PG_VERSION"), in: directory.inode),
      versionFile.kind == .regular
    else {
      throw ReelError(
        .notFound, "\(shown) in \(place) is not a PostgreSQL data directory: it has no PG_VERSION file",
        remedy:
          "give the data directory (the folder holding PG_VERSION, e.g. /var/lib/postgresql/15/main); look with `reel files ls` at the same point"
      )
    }
    let version = try PostgresVersion.parse(
      try files.read(versionFile.inode, offset: 0, length: 64), path: "\(shown)/PG_VERSION in \(place)")
    let control = try files.lookup(FileName("global"), in: directory.inode).flatMap {
      $0.kind == .directory ? try files.lookup(FileName("pg_control"), in: $0.inode) : nil
    }
    guard control != nil else {
      throw ReelError(
        .corrupt, "\(shown) in \(place) has a PG_VERSION but no global/pg_control: not a whole data directory",
        remedy: "check --pgdata; a data directory that was never initialized (or half deleted) cannot be started")
    }
    return PostgresDataDirectory(files: files, directory: directory, version: version, place: place)
  }

  /// Copies the data directory into `folder`/cluster and each tablespace (and a `pg_wal`
  /// kept elsewhere) into `folder`/tablespaces, re-points their links at the copies, and
  /// makes the copy startable: no stale postmaster.pid, no recovery or standby signal
  /// (each one removed is reported), a postgresql.conf (empty when the cluster keeps its
  /// configuration outside the data directory). WAL segments recovery cannot read are
  /// left out. `beforeRelations` is called with the copy's path once everything but
  /// `base` (the databases' relation files, most of the bytes) is there, so a check of
  /// the control file and the WAL can run while `base` is copied. Returns the copy's path
  /// and what to tell the user.
  package func bringOut(into folder: String, beforeRelations: (_ dataDirectory: String) throws -> Void = { _ in })
    throws -> (dataDirectory: String, notes: [String])
  {
    var notes: [String] = []
    let clusterFolder = folder + "/cluster"
    let relocated = try linkedFolders()
    let walFolders = Set(
      [FilePath.join(directory.path, Array("pg_wal".utf8)), FilePath.join(directory.path, Array("pg_xlog".utf8))]
        + relocated.filter { !$0.relativePath.hasPrefix("pg_tblspc/") }.map(\.target.path))
    let unreadWAL = unreadWALSegments(in: walFolders)
    let relations = try files.lookup(FileName("base"), in: directory.inode).flatMap { entry -> ResolvedFile? in
      guard entry.kind == .directory else { return nil }
      return ResolvedFile(
        path: FilePath.join(directory.path, entry.name.bytes), inode: entry.inode,
        attributes: try files.attributes(of: entry.inode))
    }
    _ = try Extraction.run(
      files: files, sources: [directory], to: clusterFolder, replace: false,
      leaveOut: { path, inode, attributes in
        try path == relations?.path || unreadWAL(path, inode, attributes)
      })
    let copy =
      directory.inode == files.rootInode ? clusterFolder : clusterFolder + "/" + FilePath.display(directory.name)
    if !relocated.isEmpty { try makeFolder(folder + "/tablespaces") }
    for (index, link) in relocated.enumerated() {
      let destination = "\(folder)/tablespaces/\(index)"
      _ = try Extraction.run(
        files: files, sources: [link.target], to: destination, replace: false, leaveOut: unreadWAL)
      let extracted =
        link.target.inode == files.rootInode ? destination : destination + "/" + FilePath.display(link.target.name)
      let linkPath = copy + "/" + link.relativePath
      guard unlink(linkPath) == 0, symlink(extracted, linkPath) == 0 else {
        throw ReelError(.io, "cannot re-point \(linkPath) at \(extracted)", errno: errno)
      }
    }
    try beforeRelations(copy)
    if let relations { _ = try Extraction.run(files: files, sources: [relations], to: copy, replace: false) }
    for name in ["postmaster.pid", "postmaster.opts"] { unlink(copy + "/" + name) }
    for name in ["recovery.signal", "standby.signal", "recovery.conf"] where unlink(copy + "/" + name) == 0 {
      notes.append(
        "\(name) was in the data directory at that point; the throwaway copy was started without it (crash recovery to the end of the WAL it holds, no archive, no primary)"
      )
    }
    if !FileManager.default.fileExists(atPath: copy + "/postgresql.conf") {
      try writePrivateFile(
        copy + "/postgresql.conf", "# made by reel pg: the cluster keeps its configuration elsewhere\n")
      notes.append(
        "the data directory has no postgresql.conf (Debian keeps it in /etc/postgresql); the copy runs with default settings"
      )
    }
    guard chmod(copy, 0o700) == 0 else { throw ReelError(.io, "cannot make \(copy) private", errno: errno) }
    return (copy, notes)
  }

  /// Leaves out the WAL segments in `walFolders` that crash recovery cannot read (recycled
  /// ahead of the insert position, `WALSegment`): on a busy cluster they are most of
  /// `pg_wal`, up to `max_wal_size`, and copying them was a third of the time `reel pg`
  /// took. The server makes new segments as it needs them.
  private func unreadWALSegments(in walFolders: Set<[UInt8]>) -> Extraction.LeaveOut {
    { [files] path, inode, attributes in
      guard attributes.kind == .regular, let slash = path.lastIndex(of: UInt8(ascii: "/")),
        walFolders.contains(slash == 0 ? [UInt8(ascii: "/")] : Array(path[..<slash])),
        let start = WALSegment.startAddress(name: Array(path[(slash + 1)...]), size: attributes.size)
      else { return false }
      return WALSegment.isUnwritten(firstBytes: try files.read(inode, offset: 0, length: 16), start: start)
    }
  }

  /// A link inside the data directory (pg_tblspc/OID, pg_wal) to a folder elsewhere in the
  /// same file system.
  private struct LinkedFolder {
    var relativePath: String
    var target: ResolvedFile
  }

  private func linkedFolders() throws -> [LinkedFolder] {
    var links: [(relative: String, entry: DirectoryEntry, folder: [UInt8])] = []
    if let wal = try files.lookup(FileName("pg_wal"), in: directory.inode)
      ?? files.lookup(FileName("pg_xlog"), in: directory.inode), wal.kind == .symlink
    {
      links.append((wal.name.description, wal, directory.path))
    }
    if let spaces = try files.lookup(FileName("pg_tblspc"), in: directory.inode), spaces.kind == .directory {
      let spacesPath = FilePath.join(directory.path, spaces.name.bytes)
      for entry in try TreeWalk.sortedEntries(files, of: spaces.inode) where entry.kind == .symlink {
        try ExtractionName.check(entry.name.bytes, in: spacesPath)
        links.append(("pg_tblspc/" + entry.name.description, entry, spacesPath))
      }
    }
    return try links.map { link in
      let target = try files.symlinkTarget(of: link.entry.inode)
      let absolute = target.first == UInt8(ascii: "/") ? target : FilePath.join(link.folder, target)
      let what = link.relative.hasPrefix("pg_tblspc/") ? "the tablespace link" : "the WAL link"
      let resolved: ResolvedFile
      do {
        resolved = try PathResolver(files: files, place: place).resolve(absolute)
      } catch let error as ReelError where error.kind == .notFound {
        throw ReelError(
          .notFound,
          "\(what) \(directory.displayPath)/\(link.relative) points at \(FilePath.display(target)), which is not in the file system of \(place)",
          remedy:
            "that folder lives on another file system or volume; bring it out yourself (reel files get on its volume) or start the cluster from a restored image"
        )
      }
      guard resolved.attributes.kind == .directory else {
        throw ReelError(
          .corrupt,
          "\(what) \(directory.displayPath)/\(link.relative) points at \(FilePath.display(target)), which is not a folder in \(place)"
        )
      }
      return LinkedFolder(relativePath: link.relative, target: resolved)
    }
  }
}

/// Small host-side file steps of `reel pg`, on its own private folder only.
func makeFolder(_ path: String, mode: mode_t = 0o700) throws {
  guard mkdir(path, mode) == 0 else { throw ReelError(.io, "cannot create \(path)", errno: errno) }
}

func writePrivateFile(_ path: String, _ text: String) throws {
  let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600)
  guard descriptor >= 0 else { throw ReelError(.io, "cannot create \(path)", errno: errno) }
  defer { close(descriptor) }
  let bytes = Array(text.utf8)
  guard write(descriptor, bytes, bytes.count) == bytes.count else {
    throw ReelError(.io, "cannot write \(path)", errno: errno)
  }
}

/// Gives everything under `path` (links themselves, never what they point at) to `account`.
func giveTree(_ path: String, to account: PostgresAccount) throws {
  guard lchown(path, account.uid, account.gid) == 0 else {
    throw ReelError(.io, "cannot give \(path) to \(account.name)", errno: errno)
  }
  guard let names = FileManager.default.subpaths(atPath: path) else { return }
  for name in names where lchown(path + "/" + name, account.uid, account.gid) != 0 {
    throw ReelError(.io, "cannot give \(path)/\(name) to \(account.name)", errno: errno)
  }
}

/// Removes `reel pg`'s private folder. Removing the copy of a large cluster frees its
/// memory (tmpfs) or blocks page by page in the kernel, on the thread that unlinks each
/// file: the files of a megabyte or more are unlinked first, largest first, on two
/// threads at once (a 1 GiB copy took 0.15 s on one), then the rest goes. Links are
/// never followed: every step is relative to a folder opened without following one.
enum PrivateFolder {
  static let largeFileBytes: off_t = 1 << 20
  static let threads = 2

  private struct LargeFile: Sendable {
    var folder: Int32
    var name: String
    var size: off_t
  }

  static func remove(_ path: String) {
    let root = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
    if root >= 0 {
      var large: [LargeFile] = []
      var folders: [Int32] = []
      collect(root, into: &large, folders: &folders)
      large.sort { $0.size > $1.size }
      forEachIndexOnThreads(large.count, threads: threads, name: "reel-pg-remove") { [large] _, index in
        unlinkat(large[index].folder, large[index].name, 0)
        return true
      }
      for folder in folders { close(folder) }
    }
    try? FileManager.default.removeItem(atPath: path)
  }

  /// Notes the large regular files under the open folder `folder` (which it keeps open,
  /// in `folders`, for the unlinks).
  private static func collect(_ folder: Int32, into large: inout [LargeFile], folders: inout [Int32]) {
    folders.append(folder)
    let listing = dup(folder)
    guard listing >= 0, let stream = fdopendir(listing) else {
      if listing >= 0 { close(listing) }
      return
    }
    defer { closedir(stream) }
    var subfolders: [String] = []
    while let entry = readdir(stream) {
      let name = withUnsafeBytes(of: entry.pointee.d_name) { bytes in
        String(cString: bytes.baseAddress!.assumingMemoryBound(to: CChar.self))
      }
      guard name != "." && name != ".." else { continue }
      var status = stat()
      guard fstatat(folder, name, &status, AT_SYMLINK_NOFOLLOW) == 0 else { continue }
      switch status.st_mode & S_IFMT {
      case S_IFREG where status.st_size >= largeFileBytes:
        large.append(LargeFile(folder: folder, name: name, size: status.st_size))
      case S_IFDIR:
        subfolders.append(name)
      default:
        break
      }
    }
    for name in subfolders {
      let inner = openat(folder, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
      if inner >= 0 { collect(inner, into: &large, folders: &folders) }
    }
  }
}
