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

  /// Adds what the content writers did.
  mutating func merge(_ written: WrittenContent) {
    bytes += written.bytes
    warnings += written.warnings
  }
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
  private let leaveOut: LeaveOut?
  private let writer: ContentWriter
  private let writers: ContentWriters
  private var report = ExtractionReport()
  /// For each file with several links written so far: where its first name went.
  private var firstNames: [UInt64: (folder: [[UInt8]], name: [UInt8])] = [:]

  /// Says, for an entry below a source folder (its path in the file system, its inode and
  /// attributes), that it is not to be written: a caller that knows nothing will read it.
  package typealias LeaveOut = (_ path: [UInt8], _ inode: UInt64, _ attributes: FileAttributes) throws -> Bool

  private init(
    files: any FileSystemReading, destination: AnchoredDirectory, replace: Bool, leaveOut: LeaveOut?, threads: Int
  ) {
    self.files = files
    self.destination = destination
    self.replace = replace
    self.leaveOut = leaveOut
    writer = ContentWriter(files: files, keepOwners: geteuid() == 0)
    writers = ContentWriters(writer, threads: threads)
  }

  /// Threads writing file contents while the walk goes on: reading from the store
  /// (catalog lookups, pack reads, decoding) waits on the disk, and two files in flight
  /// keep it and both cores busy (measured: docs/files.md, Performance).
  package static let defaultThreads = 2

  /// Writes each of `sources` into `folder` (created if missing) under its own name; the
  /// root folder's contents go straight into `folder`. `replace`: an existing file of the
  /// same name is replaced and an existing folder is written into; without it, either is
  /// an error naming it. `leaveOut`: entries inside the sources it names are skipped (and,
  /// for a folder, everything in it).
  package static func run(
    files: any FileSystemReading, sources: [ResolvedFile], to folder: String, replace: Bool,
    leaveOut: LeaveOut? = nil, threads: Int = defaultThreads
  ) throws -> ExtractionReport {
    let destination = try AnchoredDirectory.open(folder, create: true)
    let extraction = Extraction(
      files: files, destination: destination, replace: replace, leaveOut: leaveOut, threads: threads)
    let top = PendingFolder(parent: nil, failures: extraction.writers.failures) {}
    do {
      for source in sources {
        if source.inode == files.rootInode && source.attributes.kind == .directory {
          try extraction.writeContents(of: source.inode, path: source.path, into: destination, at: [], pending: top)
        } else {
          try extraction.place(
            source.name, source.inode, source.attributes, path: source.path, in: destination, at: [], pending: top)
        }
      }
    } catch {
      // What was handed to the writers is finished (it was copied before the error), then
      // the walk's own error is the one told.
      _ = try? extraction.writers.finish()
      throw error
    }
    top.entryDone()
    try extraction.writers.finish()
    extraction.report.merge(extraction.writer.written)
    // One call makes every file, folder and their metadata durable.
    try destination.syncFileSystem()
    return extraction.report
  }

  private func writeContents(
    of directory: UInt64, path: [UInt8], into folder: AnchoredDirectory, at relative: [[UInt8]],
    pending: PendingFolder
  ) throws {
    for entry in try TreeWalk.sortedEntries(files, of: directory) {
      try ExtractionName.check(entry.name.bytes, in: path)
      let entryPath = FilePath.join(path, entry.name.bytes)
      let attributes = try files.attributes(of: entry.inode)
      if let leaveOut, try leaveOut(entryPath, entry.inode, attributes) { continue }
      try place(entry.name.bytes, entry.inode, attributes, path: entryPath, in: folder, at: relative, pending: pending)
    }
  }

  /// Makes the entry `name` in `folder`; a regular file's contents and metadata are
  /// written by the writers, everything else here. `pending` is the folder's own
  /// bookkeeping: its metadata is set once everything in it is written.
  private func place(
    _ name: [UInt8], _ inode: UInt64, _ attributes: FileAttributes, path: [UInt8], in folder: AnchoredDirectory,
    at relative: [[UInt8]], pending: PendingFolder
  ) throws {
    try Interrupt.check()
    try writers.checkFailure()
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
      // Its times and mode go last, once the writers have finished everything inside it.
      let writer = self.writer
      let inner = PendingFolder(parent: pending, failures: writers.failures) {
        try writer.setMetadata(of: name, inode, attributes, path: path, in: folder)
      }
      do {
        try writeContents(
          of: inode, path: path, into: try folder.subdirectory(name), at: relative + [name], pending: inner)
      } catch {
        inner.abandon()
        throw error
      }
      inner.entryDone()
      report.directories += 1
      return
    case .regular:
      try makeRoom(for: name, in: folder, directory: false)
      let file = try folder.createFile(name)
      pending.entryStarted()
      writers.write(
        ContentWriter.Job(
          file: file, name: name, inode: inode, attributes: attributes, path: path, folder: folder, pending: pending))
      report.files += 1
      return
    case .symlink:
      try makeRoom(for: name, in: folder, directory: false)
      try folder.makeSymbolicLink(name, target: try files.symlinkTarget(of: inode))
      report.symbolicLinks += 1
    case .characterDevice, .blockDevice, .fifo, .socket:
      let isDevice = attributes.kind == .characterDevice || attributes.kind == .blockDevice
      if isDevice && !writer.keepOwners {
        report.warnings.append("\(FilePath.display(path)): a device file; only root can make one, skipped")
        return
      }
      try makeRoom(for: name, in: folder, directory: false)
      try folder.makeNode(name, mode: mode_t(FileMode.typeBits(attributes.kind)) | 0o600, device: attributes.device)
      report.specialFiles += 1
    }
    try writer.setMetadata(of: name, inode, attributes, path: path, in: folder)
  }

  /// Clears the way for `name`. Returns `S_IFDIR` when a folder already there is to be
  /// written into (only with `replace`, and only for a folder); a file or link there is
  /// removed with `replace` (a link is removed, never followed); else an error names it.
  @discardableResult
  private func makeRoom(for name: [UInt8], in folder: AnchoredDirectory, directory: Bool) throws -> mode_t? {
    guard let existing = try folder.entryType(name) else { return nil }
    guard replace else {
      throw ReelError(
        .alreadyExists,
        "\(folder.pathOf(name)) already exists; it was left as it is (what was copied before it stays)",
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
