import ArgumentParser
import Foundation
import ReelCore
import ReelFiles
import ReelIO
import ReelStore

struct FilesCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "files",
    abstract: "Read the files inside a volume at any point, without restoring it.",
    discussion: """
      The volume's file system (ext2/3/4, whole volume or a partition: --partition N) is \
      read from the store as it was at POINT; the journal is replayed in memory, so any \
      instant reads as the kernel would show it after mounting an image restored there. \
      Paths are inside that file system: absolute from its root, links followed inside it. \
      POINT: as for `reel restore` (RFC 3339 time, -10m, "2 hours ago", a bookmark, seq:N, \
      latest). Nothing is written to the store.
      """,
    subcommands: [List.self, Cat.self, Get.self, Find.self, Diff.self, History.self])

  /// The options every files command shares.
  struct Source: ParsableArguments {
    @OptionGroup var options: StoreOption
    @Option(help: "The partition holding the file system (1-based), when the volume has a partition table.")
    var partition: Int?

    func open(_ volume: String, at point: String) throws -> FilesAtPoint {
      let store = try Store.open(StoreLayout.resolve(options.store))
      let parsed = try Point.parse(point)
      let opened = try FilesAtPoint.open(
        live: LiveStore(store: store), volume: volume, at: parsed.point, partition: partition)
      for warning in opened.warnings { warn(warning) }
      return opened
    }
  }

  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "ls", abstract: "List a folder (or show a file) at a point.")

    @OptionGroup var source: Source
    @Argument(help: "Volume name.") var volume: String
    @Argument(help: "Path inside the file system (default /).") var path: String = "/"
    @Option(parsing: .unconditional, help: "The point: RFC 3339 time, -10m, bookmark, seq:N, latest.")
    var at: String
    @Flag(name: .customShort("l"), help: "Long listing: mode, links, owner (uid gid), size, mtime, link target.")
    var long = false
    @Flag(name: .customShort("R"), help: "Everything below the folder, by path.") var recursive = false
    @Flag(help: "JSON Lines output: one object per file.") var json = false

    func run() throws {
      let opened = try source.open(volume, at: at)
      let start = try opened.resolver.resolve(path, followLastLink: !long)
      let files = opened.files
      func show(_ file: WalkedFile, name: String) throws {
        let target = file.attributes.kind == .symlink ? try files.symlinkTarget(of: file.inode) : nil
        if json {
          say(jsonText(ListedFileJSON(file, name: name, target: target)))
        } else if long {
          say(longLine(file.attributes, name: name, target: target))
        } else {
          say(name)
        }
      }
      try TreeWalk.walk(files, from: start) { file in
        if start.attributes.kind != .directory {
          // As typed, like ls: a link followed to a file is shown by the link's path.
          try show(file, name: path)
          return false
        }
        if file.depth == 0 { return true }
        try show(file, name: recursive ? file.displayPath : FilePath.display(file.name))
        return recursive
      }
    }

    private func longLine(_ attributes: FileAttributes, name: String, target: [UInt8]?) -> String {
      let isDevice = attributes.kind == .characterDevice || attributes.kind == .blockDevice
      let size =
        isDevice ? "\(major(attributes.device)), \(minor(attributes.device))" : String(attributes.size)
      let link = target.map { " -> " + FilePath.display($0) } ?? ""
      return
        "\(FileMode.describe(attributes.kind, attributes.permissions)) \(pad(attributes.linkCount, 3)) \(pad(attributes.uid, 5)) \(pad(attributes.gid, 5)) \(pad(size, 10)) \(attributes.modificationTime.rfc3339) \(name)\(link)"
    }
  }

  struct Cat: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "cat", abstract: "Write a file's content at a point to standard output.")

    @OptionGroup var source: Source
    @Argument(help: "Volume name.") var volume: String
    @Argument(help: "Path inside the file system.") var path: String
    @Option(parsing: .unconditional, help: "The point: RFC 3339 time, -10m, bookmark, seq:N, latest.")
    var at: String

    func run() throws {
      let opened = try source.open(volume, at: at)
      let file = try opened.resolver.resolve(path)
      guard file.attributes.kind == .regular else {
        throw ReelError(
          .usage, "\(file.displayPath) is \(FileKinds.phrase(file.attributes.kind)) in \(opened.place), not a file",
          remedy: file.attributes.kind == .directory ? "list it with `reel files ls`" : nil)
      }
      Interrupt.install()
      try FileContent.stream(opened.files, file) { bytes in
        try bytes.withUnsafeBytes { try writeAll(1, $0) }
      }
    }
  }

  struct Get: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "get", abstract: "Copy files and folders at a point out into a folder.",
      discussion: """
        Keeps mode, owner (when run as root), access and modification times (to the \
        nanosecond), symbolic links (copied as links, never followed), hard links among the \
        files copied, holes of sparse files, extended attributes (ACLs too, where the \
        destination takes them; a refused ACL is reported, not fatal) and device files and \
        fifos (devices only as root). Everything is made inside --to through folder \
        descriptors without following links, so nothing lands outside it. A name already \
        there is an error unless --force (files are replaced, folders written into). \
        Everything is synced to disk before the command returns.
        """)

    @OptionGroup var source: Source
    @Argument(help: "Volume name.") var volume: String
    @Argument(help: "Paths inside the file system; `/` copies the root's contents into --to.")
    var paths: [String]
    @Option(parsing: .unconditional, help: "The point: RFC 3339 time, -10m, bookmark, seq:N, latest.")
    var at: String
    @Option(help: "Folder to write into (created if missing).") var to: String
    @Flag(help: "Replace files already there; write into folders already there.") var force = false
    @Flag(help: "JSON output.") var json = false

    func run() throws {
      guard !paths.isEmpty else { throw ValidationError("give at least one PATH to copy") }
      let opened = try source.open(volume, at: at)
      let sources = try paths.map { try opened.resolver.resolve($0, followLastLink: false) }
      Interrupt.install()
      let report = try Extraction.run(files: opened.files, sources: sources, to: to, replace: force)
      for warning in report.warnings { warn(warning) }
      if json {
        say(jsonText(ExtractionJSON(report, opened: opened, to: to)))
      } else {
        say(
          "Copied from \(opened.place) to \(to): \(report.files) files, \(report.directories) folders, \(report.symbolicLinks) symbolic links, \(report.hardLinks) hard links, \(report.specialFiles) special files; \(ByteSize.describe(report.bytes)) of data"
        )
      }
    }
  }

  struct Find: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "find", abstract: "Print the paths of files at a point that match every criterion given.")

    @OptionGroup var source: Source
    @Argument(help: "Volume name.") var volume: String
    @Argument(help: "Folder to search (default /).") var path: String = "/"
    @Option(parsing: .unconditional, help: "The point: RFC 3339 time, -10m, bookmark, seq:N, latest.")
    var at: String
    @Option(help: "Shell pattern for the file's name (fnmatch: *, ?, [...]); quote it.") var name: String?
    @Option(
      parsing: .unconditional, help: "Modified after this time (RFC 3339, -10m, \"2 hours ago\").")
    var newer: String?
    @Option(help: "Larger than this size (512, 64K, 16M, 1G).") var larger: String?
    @Option(help: "Type: f (file), d (folder), l (symbolic link), c, b, p (fifo), s (socket).") var type: String?
    @Flag(help: "JSON Lines output: one object per file.") var json = false

    func run() throws {
      var search = FileSearch(namePattern: name)
      if let newer {
        guard case .time(let time) = try Point.parse(newer).point else {
          throw ReelError(.usage, "--newer takes a time, not \(newer)", remedy: "give an RFC 3339 time or -10m")
        }
        search.newerThan = time
      }
      if let larger { search.largerThan = try ByteSize.parse(larger) }
      if let type { search.kind = try FileKinds.parse(type) }
      let opened = try source.open(volume, at: at)
      let start = try opened.resolver.resolve(path)
      try search.run(opened.files, from: start) { file in
        if json {
          let target = file.attributes.kind == .symlink ? try opened.files.symlinkTarget(of: file.inode) : nil
          say(jsonText(ListedFileJSON(file, name: file.displayPath, target: target)))
        } else {
          say(file.displayPath)
        }
      }
    }
  }

  struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "diff", abstract: "What was added, removed or changed between two points.",
      discussion: """
        One line per path: `A path` (added), `D path` (removed), `M path (what)` with what \
        changed: type, size, mode, owner, mtime, content, target, xattrs, device. Both trees \
        are walked by name; content is compared byte for byte.
        """)

    @OptionGroup var source: Source
    @Argument(help: "Volume name.") var volume: String
    @Argument(help: "Folder or file to compare (default /).") var path: String = "/"
    @Option(parsing: .unconditional, help: "The older point.") var from: String
    @Option(parsing: .unconditional, help: "The newer point.") var to: String
    @Flag(help: "JSON Lines output: one object per change.") var json = false

    func run() throws {
      let before = try source.open(volume, at: from)
      let after = try source.open(volume, at: to)
      let old = try resolveIfPresent(before)
      let new = try resolveIfPresent(after)
      guard old != nil || new != nil else {
        throw ReelError(.notFound, "\(path): no such file or directory in \(before.place) nor in \(after.place)")
      }
      Interrupt.install()
      try TreeDiff(old: before.files, new: after.files).compare(old, new) { change in
        if json {
          say(jsonText(FileChangeJSON(change)))
        } else {
          say(
            "\(change.kind.rawValue) \(change.displayPath)\(change.what.isEmpty ? "" : " (\(change.what.joined(separator: ", ")))")"
          )
        }
      }
    }

    private func resolveIfPresent(_ opened: FilesAtPoint) throws -> ResolvedFile? {
      do {
        return try opened.resolver.resolve(path)
      } catch let error as ReelError where error.errno == ENOENT || error.errno == ENOTDIR {
        return nil
      }
    }
  }

  struct History: ParsableCommand {
    static let configuration = CommandConfiguration(
      commandName: "history", abstract: "Every distinct version of one file across the volume's history.",
      discussion: """
        Finds the records where the file changed by bisecting over the records that wrote \
        to the volume (it does not open the file system at every record): the state of the \
        path (exists, type, size, mode, owner, mtime, ctime, content hash, link target, \
        extended attributes) is compared at both ends of a range, and a range whose ends \
        differ is split until each change stands between two neighbouring records. A change \
        undone inside a range whose ends are equal (A→B→A) is not seen unless its ctime \
        moved, which the kernel does on every write, so only changes made around the file \
        system (raw writes to the volume) can hide. Each version is restorable with \
        `reel files get NAME --at seq:N PATH --to DIR`. A final symbolic link is the \
        link's own history.
        """)

    @OptionGroup var source: Source
    @Argument(help: "Volume name.") var volume: String
    @Argument(help: "Path inside the file system.") var path: String
    @Option(parsing: .unconditional, help: "Start of the range (default: the oldest point kept).") var from: String?
    @Option(parsing: .unconditional, help: "End of the range (default: latest).") var to: String?
    @Flag(help: "JSON Lines output: one object per version.") var json = false

    func run() throws {
      let store = try Store.open(StoreLayout.resolve(source.options.store))
      let live = LiveStore(store: store)
      let end = try FilesAtPoint.open(
        live: live, volume: volume, at: try Point.parse(to ?? "latest").point, partition: source.partition)
      for warning in end.warnings { warn(warning) }
      let descriptor = end.view.descriptor
      let startView: VolumeView
      if let from {
        startView = try VolumeView(live: live, volume: volume, at: try Point.parse(from).point)
      } else {
        startView = try VolumeView(
          live: live, volume: volume, at: .seq(try live.historyBounds(of: descriptor).retainedFrom))
      }
      let start = VolumeChange(seq: startView.resolved.seq, time: startView.resolved.time)
      guard start.seq <= end.view.resolved.seq else {
        throw ReelError(
          .usage, "--from (seq \(start.seq)) is after --to (seq \(end.view.resolved.seq))",
          remedy: "give the older point as --from")
      }
      let candidates = try live.changes(of: descriptor, after: start.seq, through: end.view.resolved.seq)
      Interrupt.install()
      let partition = source.partition
      let versions = try FileHistory.versions(of: Array(path.utf8), start: start, candidates: candidates) { seq in
        if seq == end.view.resolved.seq { return end.files }
        do {
          return try FilesAtPoint.open(live: live, volume: volume, seq: seq, partition: partition).files
        } catch let error as ReelError where error.kind != .io {
          return nil
        }
      }
      for version in versions {
        if json {
          say(jsonText(FileVersionJSON(version)))
        } else {
          say(historyLine(version))
        }
      }
      if !json {
        say("Restore any version: reel files get \(volume) --at seq:N \(path) --to DIR")
      }
    }

    private func historyLine(_ version: FileVersion) -> String {
      let state = version.state
      let what = version.changes.isEmpty ? "as of --from" : version.changes.joined(separator: ", ")
      var line = "seq:\(version.seq)  \(version.time.rfc3339)  \(what)"
      if state.exists, let kind = state.kind {
        line += "  [\(FileMode.describe(kind, state.permissions)) \(state.uid) \(state.gid) \(state.size)"
        if let mtime = state.modificationTime { line += " \(mtime.rfc3339)" }
        line += "]"
      } else {
        line += state.fileSystem ? "  [absent]" : "  [file system unreadable]"
      }
      return line
    }
  }
}

/// Right-aligns `value` in `width` characters, like `ls -l`'s columns.
private func pad(_ value: some CustomStringConvertible, _ width: Int) -> String {
  let text = value.description
  return String(repeating: " ", count: max(0, width - text.count)) + text
}

private func major(_ device: UInt64) -> UInt64 { ((device >> 32) & 0xffff_f000) | ((device >> 8) & 0xfff) }
private func minor(_ device: UInt64) -> UInt64 { ((device >> 12) & 0xffff_ff00) | (device & 0xff) }

/// Writes all of `bytes` to descriptor `fd` (standard output for `files cat`).
private func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws {
  var done = 0
  while done < bytes.count {
    let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
    if n < 0 {
      if errno == EINTR { continue }
      throw PosixFile.error(errno, "write", "standard output")
    }
    done += n
  }
}
