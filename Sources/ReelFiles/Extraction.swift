import ReelCore
import ReelIO

#if canImport(Glibc)
  import Glibc
#endif

/// What `files get` wrote.
package struct ExtractionReport: Sendable, Equatable {
  package var files = 0
  package var directories = 0
  package var symbolicLinks = 0
  /// Names made with link(2) for a file already written by this extraction.
  package var hardLinks = 0
  /// Device files, fifos and sockets.
  package var specialFiles = 0
  /// Bytes of data written (holes are not written).
  package var bytes: UInt64 = 0
  /// What could not be kept, for the user (an ACL the destination refuses, a device file
  /// when not root).
  package var warnings: [String] = []

  package init() {}
}

/// Names from the file system are untrusted: a damaged or hostile image may hold any bytes.
package enum ExtractionName {
  /// Refuses names that are not one path component: empty, `.`, `..`, or holding `/` or NUL.
  package static func check(_ name: [UInt8], in folder: [UInt8]) throws {
    let bad =
      name.isEmpty || name == [UInt8(ascii: ".")] || name == [UInt8(ascii: "."), UInt8(ascii: ".")]
      || name.contains(UInt8(ascii: "/")) || name.contains(0)
    guard bad else { return }
    let shown = name.map { $0 >= 0x20 && $0 < 0x7f ? String(UnicodeScalar($0)) : "\\x" + hex($0) }.joined()
    throw ReelError(
      .corrupt,
      "the folder \(FilePath.display(folder)) holds an entry named \"\(shown)\", which is not a file name; nothing was written for it",
      remedy: "the file system is damaged or hostile; copy the other files one by one")
  }

  private static func hex(_ byte: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(byte >> 4)], digits[Int(byte & 15)]])
  }
}

/// Copies files and trees out of a file system into a folder of the host, keeping mode,
/// owner (when root), times to the nanosecond, symbolic links, hard links (within one
/// extraction), holes and extended attributes. Every entry is made relative to a folder
/// descriptor and never through a link (`AnchoredDirectory`), so nothing is written outside
/// the destination, whatever the names and links in the file system or already in it.
package final class Extraction {
  private let files: any FileSystemReading
  private let destination: AnchoredDirectory
  private let replace: Bool
  private let keepOwners: Bool
  private var report = ExtractionReport()
  /// For each file with several links written so far: where its first name went.
  private var firstNames: [UInt64: (folder: [[UInt8]], name: [UInt8])] = [:]
  private static let step = 1 << 20

  private init(files: any FileSystemReading, destination: AnchoredDirectory, replace: Bool) {
    self.files = files
    self.destination = destination
    self.replace = replace
    keepOwners = geteuid() == 0
  }

  /// Writes each of `sources` into `folder` (created if missing) under its own name; the
  /// root folder's contents go straight into `folder`. `replace`: an existing file of the
  /// same name is replaced and an existing folder is written into; without it, either is
  /// an error naming it.
  package static func run(
    files: any FileSystemReading, sources: [ResolvedFile], to folder: String, replace: Bool
  ) throws -> ExtractionReport {
    let destination = try AnchoredDirectory.open(folder, create: true)
    let extraction = Extraction(files: files, destination: destination, replace: replace)
    for source in sources {
      if source.inode == files.rootInode && source.attributes.kind == .directory {
        try extraction.writeContents(of: source.inode, path: source.path, into: destination, at: [])
      } else {
        try extraction.place(source.name, source.inode, source.attributes, path: source.path, in: destination, at: [])
      }
    }
    // One call makes every file, folder and their metadata durable.
    try destination.syncFileSystem()
    return extraction.report
  }

  private func writeContents(
    of directory: UInt64, path: [UInt8], into folder: AnchoredDirectory, at relative: [[UInt8]]
  ) throws {
    for entry in try TreeWalk.sortedEntries(files, of: directory) {
      try ExtractionName.check(entry.name.bytes, in: path)
      try place(
        entry.name.bytes, entry.inode, try files.attributes(of: entry.inode),
        path: FilePath.join(path, entry.name.bytes), in: folder, at: relative)
    }
  }

  private func place(
    _ name: [UInt8], _ inode: UInt64, _ attributes: FileAttributes, path: [UInt8], in folder: AnchoredDirectory,
    at relative: [[UInt8]]
  ) throws {
    try Interrupt.check()
    if attributes.kind != .directory && attributes.linkCount > 1 {
      if let first = firstNames[inode] {
        try makeRoom(for: name, in: folder, directory: false)
        try folder.makeHardLink(name, to: first.name, in: try open(first.folder))
        report.hardLinks += 1
        return
      }
      firstNames[inode] = (relative, name)
    }
    switch attributes.kind {
    case .directory:
      if try makeRoom(for: name, in: folder, directory: true) != S_IFDIR {
        try folder.makeDirectory(name)
      }
      try writeContents(of: inode, path: path, into: try folder.subdirectory(name), at: relative + [name])
      report.directories += 1
    case .regular:
      try makeRoom(for: name, in: folder, directory: false)
      let file = try folder.createFile(name)
      try copyData(of: inode, size: attributes.size, to: file)
      report.files += 1
    case .symlink:
      try makeRoom(for: name, in: folder, directory: false)
      try folder.makeSymbolicLink(name, target: try files.symlinkTarget(of: inode))
      report.symbolicLinks += 1
    case .characterDevice, .blockDevice, .fifo, .socket:
      let isDevice = attributes.kind == .characterDevice || attributes.kind == .blockDevice
      if isDevice && !keepOwners {
        report.warnings.append("\(FilePath.display(path)): a device file; only root can make one, skipped")
        return
      }
      try makeRoom(for: name, in: folder, directory: false)
      try folder.makeNode(name, mode: mode_t(FileMode.typeBits(attributes.kind)) | 0o600, device: attributes.device)
      report.specialFiles += 1
    }
    try setMetadata(of: name, inode, attributes, path: path, in: folder)
  }

  private func copyData(of inode: UInt64, size: UInt64, to file: PosixFile) throws {
    for range in try files.dataRanges(of: inode) {
      var offset = range.lowerBound
      let end = min(range.upperBound, size)
      while offset < end {
        try Interrupt.check()
        let bytes = try files.read(inode, offset: offset, length: Int(min(UInt64(Self.step), end - offset)))
        guard !bytes.isEmpty else { break }
        try file.write(bytes, at: offset)
        report.bytes += UInt64(bytes.count)
        offset += UInt64(bytes.count)
      }
    }
    // The size, and the holes up to it, without writing zeros.
    try file.truncate(to: size)
  }

  private func setMetadata(
    of name: [UInt8], _ inode: UInt64, _ attributes: FileAttributes, path: [UInt8], in folder: AnchoredDirectory
  ) throws {
    let metadata = EntryMetadata(
      owner: keepOwners ? (attributes.uid, attributes.gid) : nil,
      permissions: attributes.kind == .symlink ? nil : mode_t(attributes.permissions),
      extendedAttributes: try files.extendedAttributes(of: inode).map { ($0.name, $0.value) },
      accessTime: timespec(attributes.accessTime), modificationTime: timespec(attributes.modificationTime))
    for failure in try folder.setMetadata(of: name, metadata) {
      // ACLs are kept where the destination takes them; elsewhere the mode still holds.
      guard failure.name.hasPrefix("system.posix_acl_") else { throw failure.error }
      report.warnings.append("\(FilePath.display(path)): \(failure.name) not kept: \(failure.error.message)")
    }
  }

  /// Clears the way for `name`. Returns `S_IFDIR` when a folder already there is to be
  /// written into (only with `replace`, and only for a folder); a file or link there is
  /// removed with `replace` (a link is removed, never followed); else an error names it.
  @discardableResult
  private func makeRoom(for name: [UInt8], in folder: AnchoredDirectory, directory: Bool) throws -> mode_t? {
    guard let existing = try folder.entryType(name) else { return nil }
    guard replace else {
      throw ReelError(
        .alreadyExists, "\(folder.pathOf(name)) already exists; it was left as it is",
        remedy: "add --force to replace files (folders are written into), or choose another --to")
    }
    if existing == S_IFDIR {
      guard directory else {
        throw ReelError(
          .alreadyExists, "\(folder.pathOf(name)) is a folder where a file is to go; it was left as it is",
          remedy: "remove the folder if it is yours, or choose another --to")
      }
      return S_IFDIR
    }
    try folder.removeEntry(name)
    return nil
  }

  /// A folder of this extraction by its names below the destination, opened without
  /// following links.
  private func open(_ relative: [[UInt8]]) throws -> AnchoredDirectory {
    var folder = destination
    for name in relative { folder = try folder.subdirectory(name) }
    return folder
  }
}

extension timespec {
  init(_ time: FileTime) {
    self.init(tv_sec: Int(time.seconds), tv_nsec: Int(time.nanoseconds))
  }
}
