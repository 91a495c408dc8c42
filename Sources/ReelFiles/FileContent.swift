import ReelCore

/// A file's bytes in large pieces, never the whole file in memory.
package enum FileContent {
  package static let step = 4 << 20

  package static func stream(
    _ files: any FileSystemReading, _ file: ResolvedFile, _ body: ([UInt8]) throws -> Void
  ) throws {
    var offset: UInt64 = 0
    let size = file.attributes.size
    while offset < size {
      try Interrupt.check()
      let bytes = try files.read(file.inode, offset: offset, length: Int(min(UInt64(step), size - offset)))
      guard !bytes.isEmpty else { break }
      try body(bytes)
      offset += UInt64(bytes.count)
    }
  }
}

/// File types as people and `find -type` name them.
package enum FileKinds {
  /// `f`, `d`, `l`, `c`, `b`, `p`, `s`, as `find -type` takes them.
  package static func parse(_ letter: String) throws -> FileKind {
    switch letter {
    case "f": .regular
    case "d": .directory
    case "l": .symlink
    case "c": .characterDevice
    case "b": .blockDevice
    case "p": .fifo
    case "s": .socket
    default:
      throw ReelError(
        .usage, "unknown file type \(letter)",
        remedy: "use f (file), d (folder), l (symbolic link), c, b (devices), p (fifo) or s (socket)")
    }
  }

  /// "a folder", "a symbolic link"…, for messages.
  package static func phrase(_ kind: FileKind) -> String {
    switch kind {
    case .regular: "a file"
    case .directory: "a folder"
    case .symlink: "a symbolic link"
    case .characterDevice: "a character device"
    case .blockDevice: "a block device"
    case .fifo: "a fifo"
    case .socket: "a socket"
    }
  }
}
