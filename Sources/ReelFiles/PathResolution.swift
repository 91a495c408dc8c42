import ReelCore

#if canImport(Glibc)
  import Glibc
#endif

/// A file found by its path inside a file system.
package struct ResolvedFile: Sendable, Equatable {
  /// Absolute, without `.`, `..` or links before the last name (the file's own name is
  /// kept when it is a link that was not followed).
  package var path: [UInt8]
  package var inode: UInt64
  package var attributes: FileAttributes

  package init(path: [UInt8], inode: UInt64, attributes: FileAttributes) {
    self.path = path
    self.inode = inode
    self.attributes = attributes
  }

  package var displayPath: String { FilePath.display(path) }
  /// The last name of the path ("" for the root).
  package var name: [UInt8] { FilePath.components(path).last ?? [] }
}

/// Paths inside a file system, as bytes.
package enum FilePath {
  /// The kernel's limit on links followed while resolving one path (ELOOP after it).
  package static let maximumLinks = 40

  package static func components(_ path: [UInt8]) -> [[UInt8]] {
    path.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: true).map(Array.init)
  }

  package static func join(_ parent: [UInt8], _ name: [UInt8]) -> [UInt8] {
    parent == [UInt8(ascii: "/")] || parent.isEmpty ? [UInt8(ascii: "/")] + name : parent + [UInt8(ascii: "/")] + name
  }

  /// For people: invalid UTF-8 shows as U+FFFD.
  package static func display(_ path: [UInt8]) -> String { String(decoding: path, as: UTF8.self) }
}

/// Resolves paths the way the kernel would inside the mounted file system: absolute from
/// its root whatever the caller's folder, `..` of the root is the root, symbolic links
/// followed inside the file system (never the host's), at most `FilePath.maximumLinks`.
package struct PathResolver: Sendable {
  package let files: any FileSystemReading
  /// Where the file system is, for messages: "volume vm at seq 42 (2026-…Z)".
  package let place: String

  package init(files: any FileSystemReading, place: String) {
    self.files = files
    self.place = place
  }

  /// `followLastLink`: false for `ls -l` and `get`, which show or copy a link itself.
  package func resolve(_ path: String, followLastLink: Bool = true) throws -> ResolvedFile {
    try resolve(Array(path.utf8), followLastLink: followLastLink)
  }

  package func resolve(_ path: [UInt8], followLastLink: Bool = true) throws -> ResolvedFile {
    let root = files.rootInode
    // The folders walked so far, root first, so `..` steps back along the path taken.
    var stack: [(name: [UInt8], inode: UInt64)] = []
    var remaining = FilePath.components(path)[...]
    var linksFollowed = 0
    var current = root
    var currentKind = FileKind.directory
    while let name = remaining.popFirst() {
      let walked = walkedPath(stack)
      guard currentKind == .directory else {
        throw ReelError(
          .notFound, "\(FilePath.display(path)): \(FilePath.display(walked)) is not a directory in \(place)",
          errno: ENOTDIR)
      }
      if name == [UInt8(ascii: ".")] { continue }
      if name == [UInt8(ascii: "."), UInt8(ascii: ".")] {
        stack.removeLast(stack.isEmpty ? 0 : 1)
        current = stack.last?.inode ?? root
        continue
      }
      guard let entry = try files.lookup(FileName(name), in: current) else {
        let missing = FilePath.join(walked, name)
        let detail =
          FilePath.components(path) == FilePath.components(missing) ? "" : " (\(FilePath.display(missing)) is missing)"
        throw ReelError(
          .notFound, "\(FilePath.display(path)): no such file or directory in \(place)\(detail)",
          remedy: "see what \(FilePath.display(walked)) holds with `reel files ls` at the same point", errno: ENOENT)
      }
      if entry.kind == .symlink && (followLastLink || !remaining.isEmpty) {
        linksFollowed += 1
        guard linksFollowed <= FilePath.maximumLinks else {
          throw ReelError(
            .notFound,
            "\(FilePath.display(path)): too many levels of symbolic links (a link loop at \(FilePath.display(FilePath.join(walked, name)))) in \(place)",
            errno: ELOOP)
        }
        let target = try files.symlinkTarget(of: entry.inode)
        if target.first == UInt8(ascii: "/") {
          stack.removeAll()
          current = root
        }
        currentKind = .directory
        remaining = (FilePath.components(target) + remaining)[...]
        continue
      }
      stack.append((name, entry.inode))
      current = entry.inode
      currentKind = entry.kind
    }
    let attributes = try files.attributes(of: current)
    return ResolvedFile(path: walkedPath(stack), inode: current, attributes: attributes)
  }

  private func walkedPath(_ stack: [(name: [UInt8], inode: UInt64)]) -> [UInt8] {
    stack.isEmpty ? [UInt8(ascii: "/")] : stack.reduce([]) { $0 + [UInt8(ascii: "/")] + $1.name }
  }
}
