import Foundation
import ReelCore
import ReelFiles
import ReelIO
import ReelStore
import ReelTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// A store whose volumes are made from image files with `reel volume create --from`, read
/// back through real `VolumeView`s.
final class ImageStore {
  let store: TestStore
  var folder: String { store.directory.path }

  init() throws { store = try TestStore() }

  /// The volume as a `VolumeSource` at its latest point.
  func volume(_ name: String, from image: String) throws -> VolumeView {
    try runChecked(store.reel, ["volume", "create", name, "--from", image, "--store", store.root])
    // The image becomes history (seq 0) when the store ingests it.
    try runChecked(store.reel, ["ingest", name, "--store", store.root])
    return try VolumeView(live: LiveStore(store: Store.open(store.layout)), volume: name, at: .latest)
  }

  /// Makes an ext2/3/4 image of `size` with mke2fs (`-d source` fills it from a folder).
  func makeImage(
    _ name: String, type: String = "ext4", size: String = "16M", from source: String? = nil, options: [String] = []
  ) throws -> String {
    let path = folder + "/" + name + ".img"
    // 4 KiB blocks unless asked: mke2fs would pick 1 KiB for these small test sizes.
    var arguments = ["-q", "-F", "-t", type] + (options.contains("-b") ? options : ["-b", "4096"] + options)
    if let source { arguments += ["-d", source] }
    try runChecked(tool("mke2fs"), arguments + [path, size])
    return path
  }

  func debugfs(_ image: String, write: Bool = false, _ commands: [String]) throws -> String {
    let script = folder + "/debugfs.cmd"
    try commands.joined(separator: "\n").write(toFile: script, atomically: true, encoding: .utf8)
    return try runChecked(tool("debugfs"), (write ? ["-w"] : []) + ["-f", script, image]).stdout
  }
}

/// Deterministic bytes that never hold a whole zero block (mke2fs -d makes zero blocks
/// holes, which would blur the sparse-file checks).
func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
  var state = seed &* 0x9E37_79B9_7F4A_7C15 | 1
  return (0..<count).map { _ in
    state ^= state << 13
    state ^= state >> 7
    state ^= state << 17
    return UInt8(truncatingIfNeeded: state) | 1
  }
}

/// Builds the folder the images are made from: the ground truth of every test.
enum SampleTree {
  struct Made {
    let root: String
    /// Paths (relative) of the sparse file and its expected data ranges.
    let sparsePath: String
    let sparseRanges: [Range<UInt64>]
  }

  static func write(_ bytes: [UInt8], to path: String, mode: mode_t = 0o644) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)
    guard fd >= 0 else { throw SupportError("open \(path): \(errno)") }
    defer { close(fd) }
    let written = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
    guard written == bytes.count else { throw SupportError("write \(path)") }
    fchmod(fd, mode)
  }

  static func setAttribute(_ path: String, _ name: String, _ value: [UInt8]) throws {
    let hex = "0x" + value.map { String(format: "%02x", $0) }.joined()
    try runChecked(tool("setfattr"), ["-h", "-n", name, "-v", hex, path])
  }

  /// glibc's makedev, which Swift does not import.
  static func deviceNumber(_ major: UInt64, _ minor: UInt64) -> dev_t {
    dev_t(((major & 0xFFFF_F000) << 32) | ((major & 0xFFF) << 8) | ((minor & 0xFFFF_FF00) << 12) | (minor & 0xFF))
  }

  static func check(_ status: Int32, _ what: String) throws {
    guard status == 0 else { throw SupportError("\(what): \(String(cString: strerror(errno)))") }
  }

  /// `bigDirectory`: how many entries the folder `many` gets. `devices`: add device nodes
  /// and a fifo (ext2/3/4 all keep them).
  static func make(in parent: String, bigDirectory: Int = 0, special: Bool = true) throws -> Made {
    let root = parent + "/tree"
    let manager = FileManager.default
    try manager.createDirectory(atPath: root + "/docs/deep/deeper", withIntermediateDirectories: true)
    try write([], to: root + "/empty")
    try write(Array("hello\n".utf8), to: root + "/hello.txt")
    try write(pattern(4095, seed: 1), to: root + "/docs/block-minus-one")
    try write(pattern(4096, seed: 2), to: root + "/docs/one-block")
    try write(pattern(5000, seed: 3), to: root + "/docs/deep/five-thousand", mode: 0o600)
    try write(pattern(3 << 20 + 123, seed: 4), to: root + "/docs/deep/deeper/three-mib")
    try write(pattern(70, seed: 5), to: root + "/docs/seventy", mode: 0o4755)
    try write(Array("name with spaces and ünïcödé\n".utf8), to: root + "/docs/naïve name.txt")
    // Not UTF-8: names are bytes.
    let latin1 = root + "/docs/caf\u{E9}-latin1"
    _ = latin1
    let rawName = Array((root + "/docs/caf").utf8) + [0xE9, 0x00]
    let fd = rawName.withUnsafeBufferPointer {
      $0.withMemoryRebound(to: CChar.self) { open($0.baseAddress!, O_WRONLY | O_CREAT | O_TRUNC, 0o640) }
    }
    guard fd >= 0 else { throw SupportError("open latin-1 name") }
    close(fd)

    try check(symlink("hello.txt", root + "/fast-link"), "symlink")
    let longTarget = "docs/deep/" + String(repeating: "long-target-", count: 12) + "end"
    try check(symlink(longTarget, root + "/slow-link"), "symlink")
    try check(symlink("/nowhere/at/all", root + "/docs/dangling"), "symlink")
    try check(link(root + "/hello.txt", root + "/docs/hard-link"), "link")
    try check(link(root + "/hello.txt", root + "/docs/deep/hard-link-2"), "link")
    try check(chown(root + "/docs/one-block", 70000, 80000), "chown")
    try check(chown(root + "/docs", 1000, 1000), "chown")
    try check(chmod(root + "/docs/deep", 0o1777), "chmod")

    // Sparse: data, a hole, data, a hole to the end.
    let sparse = root + "/sparse"
    let sparseFD = open(sparse, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    let head = pattern(8192, seed: 6)
    let middle = pattern(4096, seed: 7)
    _ = head.withUnsafeBytes { pwrite(sparseFD, $0.baseAddress, $0.count, 0) }
    _ = middle.withUnsafeBytes { pwrite(sparseFD, $0.baseAddress, $0.count, 1 << 20) }
    // It ends in data: mke2fs 1.47.0 -d with inline_data sets the size of a file that
    // ends in a hole to the end of its last data (the unwritten-extent test has one).
    _ = middle.withUnsafeBytes { pwrite(sparseFD, $0.baseAddress, $0.count, (3 << 20) - 4096) }
    close(sparseFD)

    try setAttribute(root + "/hello.txt", "user.comment", Array("a note".utf8))
    try setAttribute(root + "/docs/seventy", "user.big", pattern(700, seed: 8))
    try setAttribute(root + "/docs/seventy", "trusted.secret", Array("t".utf8))
    try setAttribute(root + "/docs", "user.on-a-directory", Array("d".utf8))
    // user::rw- user:1000:r-- group::r-- mask::r-- other::r--
    let acl: [UInt8] = [
      2, 0, 0, 0, 1, 0, 6, 0, 0xFF, 0xFF, 0xFF, 0xFF, 2, 0, 4, 0, 0xE8, 3, 0, 0, 4, 0, 4, 0, 0xFF, 0xFF, 0xFF, 0xFF,
      0x10, 0, 4, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x20, 0, 4, 0, 0xFF, 0xFF, 0xFF, 0xFF,
    ]
    try setAttribute(root + "/docs/one-block", "system.posix_acl_access", acl)

    if special {
      try check(mkfifo(root + "/fifo", 0o640), "mkfifo")
      try check(mknod(root + "/null-device", S_IFCHR | 0o666, deviceNumber(1, 3)), "mknod")
      try check(mknod(root + "/big-device", S_IFBLK | 0o600, deviceNumber(259, 300_000)), "mknod")
    }
    if bigDirectory > 0 {
      try manager.createDirectory(atPath: root + "/many", withIntermediateDirectories: false)
      for index in 0..<bigDirectory {
        let name = String(format: "entry-%05d-%@", index, String(repeating: "x", count: index % 40))
        try write(index % 100 == 0 ? pattern(index + 1, seed: UInt64(index)) : [], to: root + "/many/" + name)
      }
    }
    // Times last: every change above moved the folders' mtimes.
    var times = [timespec(tv_sec: 1_600_000_000, tv_nsec: 0), timespec(tv_sec: 1_500_000_000, tv_nsec: 0)]
    try check(utimensat(AT_FDCWD, root + "/hello.txt", &times, AT_SYMLINK_NOFOLLOW), "utimensat")
    return Made(
      root: root, sparsePath: "sparse",
      sparseRanges: [0..<8192, (1 << 20)..<((1 << 20) + 4096), ((3 << 20) - 4096)..<(3 << 20)])
  }
}

/// What lstat says of one path of the source folder.
struct SourceEntry {
  let path: String
  let status: stat
  var kind: FileKind {
    switch status.st_mode & S_IFMT {
    case S_IFREG: .regular
    case S_IFDIR: .directory
    case S_IFLNK: .symlink
    case S_IFCHR: .characterDevice
    case S_IFBLK: .blockDevice
    case S_IFIFO: .fifo
    default: .socket
    }
  }
}

/// Compares a file system read by Reel with the folder it was made from.
struct TreeComparison {
  let source: String
  let files: any FileSystemReading
  /// A 128-byte-inode or ext2/3 file system keeps no birth time; ext4 with large inodes does.
  var expectCreationTime = false

  /// Every path, relative, with its entry in the reader, found by walking `entries`.
  func walk() throws -> [[UInt8]: DirectoryEntry] {
    var found: [[UInt8]: DirectoryEntry] = [:]
    func visit(_ inode: UInt64, _ prefix: [UInt8]) throws {
      for entry in try files.entries(of: inode) {
        if prefix.isEmpty && entry.name == FileName("lost+found") { continue }
        let path = prefix.isEmpty ? entry.name.bytes : prefix + [0x2F] + entry.name.bytes
        found[path] = entry
        if entry.kind == .directory { try visit(entry.inode, path) }
      }
    }
    try visit(files.rootInode, [])
    return found
  }

  func sourceEntries() throws -> [[UInt8]: SourceEntry] {
    var result: [[UInt8]: SourceEntry] = [:]
    func visit(_ relative: [UInt8]) throws {
      let full = Array(source.utf8) + (relative.isEmpty ? [] : [0x2F] + relative)
      guard let directory = Self.withPath(full, { opendir($0) }) else { throw SupportError("opendir") }
      defer { closedir(directory) }
      while let item = readdir(directory) {
        let name = withUnsafeBytes(of: item.pointee.d_name) { Array($0.prefix { $0 != 0 }) }
        if name == [0x2E] || name == [0x2E, 0x2E] { continue }
        let path = relative.isEmpty ? name : relative + [0x2F] + name
        var status = stat()
        guard Self.withPath(full + [0x2F] + name, { lstat($0, &status) }) == 0 else { throw SupportError("lstat") }
        result[path] = SourceEntry(path: String(decoding: path, as: UTF8.self), status: status)
        if status.st_mode & S_IFMT == S_IFDIR { try visit(path) }
      }
    }
    try visit([])
    return result
  }

  static func withPath<Result>(_ bytes: [UInt8], _ body: (UnsafePointer<CChar>) -> Result) -> Result {
    (bytes + [0]).withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { body($0.baseAddress!) } }
  }

  static func sourceBytes(_ path: [UInt8]) throws -> [UInt8] {
    let fd = withPath(path) { open($0, O_RDONLY) }
    guard fd >= 0 else { throw SupportError("open") }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
      let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
      guard count > 0 else { break }
      bytes += chunk[0..<count]
    }
    return bytes
  }

  /// Every path's attributes as `getfattr -R -d -m - -e hex` lists them (every namespace
  /// root may see), by absolute path; one process for the whole tree.
  static func sourceAttributes(under root: String) throws -> [String: [ExtendedAttribute]] {
    let output = try runChecked(
      tool("getfattr"), ["-R", "-h", "-d", "-m", "-", "-e", "hex", "--absolute-names", root]
    ).stdout
    var result: [String: [ExtendedAttribute]] = [:]
    var path = ""
    for line in output.split(separator: "\n") {
      if line.hasPrefix("# file: ") {
        path = String(line.dropFirst("# file: ".count))
        continue
      }
      guard let equals = line.firstIndex(of: "=") else { continue }
      let rest = line[line.index(after: equals)...]
      let hex = rest.hasPrefix("0x") ? Array(rest.dropFirst(2).utf8) : []
      let value = stride(from: 0, to: hex.count, by: 2).map {
        UInt8(String(decoding: hex[$0..<($0 + 2)], as: UTF8.self), radix: 16)!
      }
      result[path, default: []].append(ExtendedAttribute(name: String(line[..<equals]), value: value))
    }
    return result.mapValues { $0.sorted { $0.name < $1.name } }
  }

  static func sourceDataRanges(_ path: [UInt8], size: UInt64) -> [Range<UInt64>] {
    let fd = withPath(path) { open($0, O_RDONLY) }
    defer { close(fd) }
    var ranges: [Range<UInt64>] = []
    var position: off_t = 0
    while UInt64(position) < size {
      let data = lseek(fd, position, 3 /* SEEK_DATA */)
      guard data >= 0 else { break }
      let hole = lseek(fd, data, 4 /* SEEK_HOLE */)
      ranges.append(UInt64(data)..<UInt64(hole))
      position = hole
    }
    return ranges
  }

  /// Everything: names in every folder, kinds, modes, owners, sizes, mtimes, link counts,
  /// contents, symlink targets, device numbers, hard links, holes, extended attributes.
  func expectSame(sourceLocation: SourceLocation = #_sourceLocation) throws {
    let expected = try sourceEntries()
    let found = try walk()
    #expect(
      Set(found.keys) == Set(expected.keys),
      "names differ: missing \(Set(expected.keys).subtracting(found.keys).map { String(decoding: $0, as: UTF8.self) }), extra \(Set(found.keys).subtracting(expected.keys).map { String(decoding: $0, as: UTF8.self) })",
      sourceLocation: sourceLocation)
    var inodeOfSource: [UInt64: UInt64] = [:]
    let attributesOfSource = try Self.sourceAttributes(under: source)
    for (path, source) in expected {
      guard let entry = found[path] else { continue }
      let name = source.path
      let full = Array(self.source.utf8) + [0x2F] + path
      let attributes = try files.attributes(of: entry.inode)
      let status = source.status
      #expect(entry.kind == source.kind && attributes.kind == source.kind, "\(name)", sourceLocation: sourceLocation)
      #expect(attributes.inode == entry.inode, "\(name)", sourceLocation: sourceLocation)
      #expect(attributes.permissions == UInt16(status.st_mode & 0o7777), "\(name)", sourceLocation: sourceLocation)
      #expect(
        attributes.uid == status.st_uid && attributes.gid == status.st_gid, "\(name)", sourceLocation: sourceLocation)
      #expect(
        attributes.modificationTime.seconds == Int64(status.st_mtim.tv_sec), "\(name)", sourceLocation: sourceLocation)
      #expect(attributes.linkCount == UInt32(status.st_nlink), "\(name) links", sourceLocation: sourceLocation)
      #expect((attributes.creationTime != nil) == expectCreationTime, "\(name)", sourceLocation: sourceLocation)
      if let first = inodeOfSource[UInt64(status.st_ino)] {
        #expect(first == entry.inode, "\(name) is a hard link", sourceLocation: sourceLocation)
      }
      inodeOfSource[UInt64(status.st_ino)] = entry.inode
      let sourceAttributes = attributesOfSource[String(decoding: full, as: UTF8.self)] ?? []
      let readAttributes = try files.extendedAttributes(of: entry.inode).sorted { $0.name < $1.name }
      #expect(
        sourceAttributes == readAttributes, "\(name) xattrs: \(sourceAttributes) read as \(readAttributes)",
        sourceLocation: sourceLocation)
      switch source.kind {
      case .regular:
        #expect(attributes.size == UInt64(status.st_size), "\(name)", sourceLocation: sourceLocation)
        let content = try files.read(entry.inode, offset: 0, length: Int(status.st_size) + 100)
        #expect(content == (try Self.sourceBytes(full)), "\(name) content", sourceLocation: sourceLocation)
        #expect(
          try files.dataRanges(of: entry.inode) == Self.sourceDataRanges(full, size: UInt64(status.st_size)),
          "\(name) data ranges", sourceLocation: sourceLocation)
      case .symlink:
        var target = [CChar](repeating: 0, count: 4096)
        let length = Self.withPath(full) { readlink($0, &target, target.count) }
        #expect(
          try files.symlinkTarget(of: entry.inode) == target[0..<length].map { UInt8(bitPattern: $0) },
          "\(name) target", sourceLocation: sourceLocation)
        #expect(attributes.size == UInt64(length), "\(name)", sourceLocation: sourceLocation)
      case .characterDevice, .blockDevice:
        #expect(attributes.device == UInt64(status.st_rdev), "\(name) device", sourceLocation: sourceLocation)
      default:
        break
      }
    }
  }
}
