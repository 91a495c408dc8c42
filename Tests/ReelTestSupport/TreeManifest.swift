import CTestSupport
import Foundation
import ReelCodec

#if canImport(Glibc)
  import Glibc
#endif

/// Everything a user can see of a folder tree, read through the kernel: what `reel files
/// get` and `reel mount` are held to against a kernel mount of a restored image.
/// Access times are left out (reading changes them) and so are change times (nothing can
/// set them).
package struct TreeManifest: Equatable {
  package struct Entry: Equatable, CustomStringConvertible {
    package var kind: String
    package var permissions: mode_t
    package var uid: uid_t
    package var gid: gid_t
    package var size: Int64
    package var modification: String
    /// SHA-256 of a regular file's bytes; a symlink's target; a device's number.
    package var content: String
    /// Byte ranges holding data (SEEK_DATA/SEEK_HOLE), for regular files.
    package var dataRanges: [Range<Int64>]
    package var extendedAttributes: [String: [UInt8]]
    /// The other paths in the tree that are the same inode (hard links).
    package var links: [String]

    package var description: String {
      let attributes = extendedAttributes.keys.sorted().map { "\($0)=\(extendedAttributes[$0]!.count)B" }
      return
        "\(kind) \(String(permissions, radix: 8)) \(uid):\(gid) size \(size) mtime \(modification) "
        + "\(content.prefix(16)) data \(dataRanges) xattrs \(attributes) links \(links)"
    }
  }

  package var entries: [String: Entry]

  /// Reads the tree under `root` (not `root` itself), without following symlinks.
  /// `holes: false` leaves out the data ranges (for trees on file systems that allocate
  /// differently).
  package init(of root: String, holes: Bool = true) throws {
    entries = [:]
    var inodes: [String: [String]] = [:]
    var pending = [""]
    while let relative = pending.popLast() {
      let directory = relative.isEmpty ? root : root + "/" + relative
      for name in try FileManager.default.contentsOfDirectory(atPath: directory) {
        let path = relative.isEmpty ? name : relative + "/" + name
        let full = root + "/" + path
        var info = stat()
        guard lstat(full, &info) == 0 else { throw SupportError("lstat \(full): errno \(errno)") }
        let type = info.st_mode & S_IFMT
        var entry = Entry(
          kind: Self.kindName(type), permissions: info.st_mode & 0o7777, uid: info.st_uid, gid: info.st_gid,
          size: type == S_IFDIR ? 0 : Int64(info.st_size),
          modification: String(format: "%d.%09d", info.st_mtim.tv_sec, info.st_mtim.tv_nsec), content: "",
          dataRanges: [],
          extendedAttributes: try Self.extendedAttributes(full), links: [])
        switch type {
        case S_IFREG:
          entry.content = try Self.hash(full)
          if holes { entry.dataRanges = try Self.dataRanges(full, size: Int64(info.st_size)) }
          if info.st_nlink > 1 { inodes["\(info.st_dev):\(info.st_ino)", default: []].append(path) }
        case S_IFLNK:
          entry.content = try FileManager.default.destinationOfSymbolicLink(atPath: full)
        case S_IFDIR:
          pending.append(path)
        case S_IFCHR, S_IFBLK:
          entry.content = "\(info.st_rdev)"
        default:
          break
        }
        entries[path] = entry
      }
    }
    for paths in inodes.values where paths.count > 1 {
      for path in paths { entries[path]?.links = paths.filter { $0 != path }.sorted() }
    }
  }

  /// Up to `limit` lines naming what differs, empty when the trees are the same.
  package func differences(from other: TreeManifest, limit: Int = 20) -> [String] {
    var lines: [String] = []
    for path in Set(entries.keys).union(other.entries.keys).sorted() where lines.count < limit {
      switch (entries[path], other.entries[path]) {
      case (let mine?, let theirs?) where mine != theirs:
        lines.append("\(path):\n    \(mine)\n vs \(theirs)")
      case (nil, _?): lines.append("\(path): only in the other tree")
      case (_?, nil): lines.append("\(path): missing from the other tree")
      default: break
      }
    }
    return lines
  }

  private static func kindName(_ type: mode_t) -> String {
    switch type {
    case S_IFREG: "file"
    case S_IFDIR: "dir"
    case S_IFLNK: "symlink"
    case S_IFCHR: "char"
    case S_IFBLK: "block"
    case S_IFIFO: "fifo"
    case S_IFSOCK: "socket"
    default: "unknown"
    }
  }

  private static func hash(_ path: String) throws -> String {
    guard let handle = FileHandle(forReadingAtPath: path) else { throw SupportError("cannot open \(path)") }
    defer { try? handle.close() }
    let hasher = SHA256Hasher()
    while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty { hasher.update(Array(chunk)) }
    return hasher.finish().description
  }

  private static func dataRanges(_ path: String, size: Int64) throws -> [Range<Int64>] {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw SupportError("open \(path): errno \(errno)") }
    defer { close(fd) }
    var ranges: [Range<Int64>] = []
    var offset: Int64 = 0
    while offset < size {
      // SEEK_DATA and SEEK_HOLE (3 and 4 on Linux) are not in Glibc's Swift overlay.
      let data = Int64(lseek(fd, off_t(offset), 3))
      if data < 0 { break }  // ENXIO: only a hole is left
      let hole = min(Int64(lseek(fd, off_t(data), 4)), size)
      ranges.append(data..<hole)
      offset = hole
    }
    return ranges
  }

  private static func extendedAttributes(_ path: String) throws -> [String: [UInt8]] {
    let length = llistxattr(path, nil, 0)
    guard length > 0 else { return [:] }
    var names = [CChar](repeating: 0, count: length)
    let listed = llistxattr(path, &names, length)
    guard listed >= 0 else { throw SupportError("llistxattr \(path): errno \(errno)") }
    var result: [String: [UInt8]] = [:]
    for nameBytes in names[0..<listed].split(separator: 0) {
      let name = String(decoding: nameBytes.map { UInt8(bitPattern: $0) }, as: UTF8.self)
      let size = lgetxattr(path, name, nil, 0)
      guard size >= 0 else { continue }
      var value = [UInt8](repeating: 0, count: size)
      let read = lgetxattr(path, name, &value, size)
      if read >= 0 { result[name] = Array(value[0..<read]) }
    }
    return result
  }
}
