import ReelCore

/// One file met on a walk.
package struct WalkedFile: Sendable {
  package var path: [UInt8]
  package var inode: UInt64
  package var attributes: FileAttributes
  /// 0 for where the walk started.
  package var depth: Int

  package var displayPath: String { FilePath.display(path) }
  package var name: [UInt8] { FilePath.components(path).last ?? [] }
}

/// Depth-first walks in name order (byte order), never following symbolic links: the same
/// tree always walks the same way, whatever order the file system keeps.
package enum TreeWalk {
  /// Visits `start`, then, when it is a folder and `visit` returns true, its contents.
  package static func walk(
    _ files: any FileSystemReading, from start: ResolvedFile, _ visit: (WalkedFile) throws -> Bool
  ) throws {
    try walk(files, WalkedFile(path: start.path, inode: start.inode, attributes: start.attributes, depth: 0), visit)
  }

  private static func walk(
    _ files: any FileSystemReading, _ file: WalkedFile, _ visit: (WalkedFile) throws -> Bool
  ) throws {
    try Interrupt.check()
    guard try visit(file), file.attributes.kind == .directory else { return }
    for entry in try sortedEntries(files, of: file.inode) {
      let child = WalkedFile(
        path: FilePath.join(file.path, entry.name.bytes), inode: entry.inode,
        attributes: try files.attributes(of: entry.inode), depth: file.depth + 1)
      try walk(files, child, visit)
    }
  }

  /// A folder's entries in byte order of their names.
  package static func sortedEntries(_ files: any FileSystemReading, of directory: UInt64) throws -> [DirectoryEntry] {
    try files.entries(of: directory).sorted { $0.name < $1.name }
  }
}

/// `ls -l`'s spelling of a file's type and permission bits: `drwxr-xr-x`, `-rwsr-x--T`.
package enum FileMode {
  package static func describe(_ kind: FileKind, _ permissions: UInt16) -> String {
    let type: Character =
      switch kind {
      case .regular: "-"
      case .directory: "d"
      case .symlink: "l"
      case .characterDevice: "c"
      case .blockDevice: "b"
      case .fifo: "p"
      case .socket: "s"
      }
    var text = String(type)
    let special: [(UInt16, Character, Character)] = [(0o4000, "s", "S"), (0o2000, "s", "S"), (0o1000, "t", "T")]
    for (index, shift) in [6, 3, 0].enumerated() {
      let bits = (permissions >> UInt16(shift)) & 7
      text.append(bits & 4 != 0 ? "r" : "-")
      text.append(bits & 2 != 0 ? "w" : "-")
      let (flag, withExecute, without) = special[index]
      if permissions & flag != 0 {
        text.append(bits & 1 != 0 ? withExecute : without)
      } else {
        text.append(bits & 1 != 0 ? "x" : "-")
      }
    }
    return text
  }

  /// The `st_mode` type bits for a kind.
  package static func typeBits(_ kind: FileKind) -> UInt32 {
    switch kind {
    case .regular: 0o100000
    case .directory: 0o040000
    case .symlink: 0o120000
    case .characterDevice: 0o020000
    case .blockDevice: 0o060000
    case .fifo: 0o010000
    case .socket: 0o140000
    }
  }
}

extension FileTime {
  /// RFC 3339 in UTC with nanoseconds, as everything else in Reel prints instants.
  package var rfc3339: String {
    Timestamp(nanoseconds: seconds &* 1_000_000_000 &+ Int64(nanoseconds)).rfc3339
  }
}
