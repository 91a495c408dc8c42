import Foundation
import ReelCore
import ReelTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// `reel mount` with the kernel as its client: ls, cat, stat, cmp, find, getfattr and
/// sqlite3 on the mount, compared with the folder an image was made from, with a kernel
/// mount of the same image, and with `reel restore`.
@Suite(.serialized) struct MountTests {
  /// A folder with what a file system holds: nested folders of real files, a file of
  /// several extents and its hard link, a sparse file, symlinks, an extended attribute,
  /// odd modes and owners, a name that is not UTF-8, an empty folder and a SQLite database.
  func makeTree(_ root: String, variant: UInt8) throws {
    let manager = FileManager.default
    try manager.createDirectory(atPath: root + "/docs", withIntermediateDirectories: true)
    var copied = 0
    let enumerator = try #require(manager.enumerator(atPath: "/usr/share/doc"))
    while copied < 60, let relative = enumerator.nextObject() as? String {
      let source = "/usr/share/doc/" + relative
      guard (try? manager.destinationOfSymbolicLink(atPath: source)) == nil,
        let attributes = try? manager.attributesOfItem(atPath: source),
        attributes[.type] as? FileAttributeType == .typeRegular
      else { continue }
      let target = root + "/docs/" + relative
      try manager.createDirectory(
        atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
      try manager.copyItem(atPath: source, toPath: target)
      copied += 1
    }
    try manager.createDirectory(atPath: root + "/many", withIntermediateDirectories: true)
    for index in 0..<300 {
      try Data("file \(index) of variant \(variant)\n".utf8).write(to: URL(fileURLWithPath: root + "/many/f\(index)"))
    }
    try writeRandomFile(root + "/big.bin", bytes: 1 << 20 + 12345)
    try runChecked(try tool("ln"), [root + "/big.bin", root + "/big.hard"])
    try runChecked(try tool("truncate"), ["-s", "8M", root + "/sparse.bin"])
    try runChecked(
      try tool("dd"), ["if=/dev/urandom", "of=\(root)/sparse.bin", "bs=4096", "seek=700", "count=3", "conv=notrunc"])
    try manager.createSymbolicLink(atPath: root + "/docs-link", withDestinationPath: "docs")
    try manager.createSymbolicLink(atPath: root + "/absolute-link", withDestinationPath: "/etc/passwd")
    try Data([variant]).write(to: URL(fileURLWithPath: root + "/variant"))
    try runChecked(try tool("setfattr"), ["-n", "user.comment", "-v", "variant \(variant)", root + "/variant"])
    try runChecked(try tool("chown"), ["1234:5678", root + "/variant"])
    try runChecked(try tool("chmod"), ["0640", root + "/variant"])
    try runChecked("/bin/sh", ["-c", "printf odd > \"$0\"/$(printf 'odd\\377name')", root])
    try manager.createDirectory(atPath: root + "/empty", withIntermediateDirectories: true)
    try runChecked(
      try tool("sqlite3"),
      [root + "/db.sqlite", "CREATE TABLE t(x); INSERT INTO t VALUES (\(variant)), (42); VACUUM;"])
  }

  /// An ext4 image of `folder`, as `mkfs.ext4 -d` makes it (256-byte inodes: nanosecond times).
  func makeImage(of folder: String, at image: String) throws {
    try runChecked(try tool("mkfs.ext4"), ["-q", "-F", "-I", "256", "-d", folder, image, "16M"])
  }

  /// Every node under `root`: path, type, mode, owner, size, links, times, link target,
  /// blocks (holes); inode numbers aside, which are the mount's own.
  func listing(_ root: String) throws -> [String] {
    let format = "%P|%y|%m|%U|%G|%s|%n|%T@|%C@|%l|%b\\n"
    let result = try runChecked(try tool("find"), [root, "-printf", format])
    return result.stdout.split(separator: "\n").map(String.init).sorted()
  }

  func isReadOnly(_ path: String, flags: Int32) -> Bool {
    let descriptor = open(path, flags | O_CLOEXEC, 0o644)
    defer { if descriptor >= 0 { close(descriptor) } }
    return descriptor < 0 && errno == EROFS
  }

  @Test func aVolumeMadeFromAnImageShowsItsFilesAndItsDiskImage() throws {
    let store = try TestStore()
    let scratch = store.directory.path
    try makeTree(scratch + "/tree", variant: 1)
    try makeImage(of: scratch + "/tree", at: scratch + "/fs.img")
    try runChecked(
      store.reel, ["volume", "create", "fs", "--size", "16M", "--from", scratch + "/fs.img", "--store", store.root])
    let mount = try MountProcess(store: store, volumes: ["fs"])
    let volume = mount.mountPoint + "/fs"
    #expect(mount.output.contains("Mounted fs at \(volume): latest is seq "))

    let names = { (path: String) in try FileManager.default.contentsOfDirectory(atPath: path).sorted() }
    #expect(try names(mount.mountPoint) == ["fs"])
    #expect(try names(volume) == ["at", "bookmarks", "latest"])
    #expect(try names(volume + "/latest") == ["disk.img", "files"])
    #expect(try names(volume + "/bookmarks") == [])

    // The raw view is the image, byte for byte, as `reel restore` writes it.
    try runChecked(
      store.reel, ["restore", "fs", "--at", "latest", "--output", scratch + "/restored.img", "--store", store.root])
    try runChecked(try tool("cmp"), [volume + "/latest/disk.img", scratch + "/restored.img"])
    try runChecked(try tool("cmp"), [volume + "/latest/disk.img", scratch + "/fs.img"])

    // The files are the folder's, content and metadata, as a kernel mount of the image shows them.
    let files = volume + "/latest/files"
    let diff = try run(try tool("diff"), ["-r", "--no-dereference", "-x", "lost+found", scratch + "/tree", files])
    #expect(diff.succeeded, "diff -r tree files:\n\(diff.output)")
    let kernel = try KernelMount(in: scratch + "/kernel")
    try kernel.mount(scratch + "/fs.img", options: "ro,loop")
    #expect(try listing(files) == listing(kernel.mountPoint))
    let count = { (root: String) in try runChecked("/bin/sh", ["-c", "find \"$0\" | wc -l", root]).stdout }
    #expect(try count(files) == count(kernel.mountPoint))
    for path in ["variant", "big.bin", "docs"] {
      let attributes = { (root: String) in
        try runChecked(try tool("getfattr"), ["-d", "-m", "-", "--absolute-names", root + "/" + path]).stdout
          .replacingOccurrences(of: root, with: "ROOT")
      }
      #expect(try attributes(files) == attributes(kernel.mountPoint), "getfattr \(path)")
    }
    #expect(
      try runChecked(try tool("getfattr"), ["-n", "user.comment", "--only-values", files + "/variant"]).stdout
        == "variant 1")
    #expect(try runChecked(try tool("readlink"), [files + "/docs-link"]).stdout == "docs\n")
    #expect(try runChecked(try tool("cat"), [files + "/docs-link/../variant"]).stdout == "\u{1}")
    let query = try runChecked(try tool("sqlite3"), ["-readonly", files + "/db.sqlite", "SELECT sum(x) FROM t"])
    #expect(query.stdout == "43\n")
    try kernel.unmount()

    // Nothing can be written, not even by root.
    #expect(isReadOnly(files + "/new", flags: O_WRONLY | O_CREAT))
    #expect(isReadOnly(files + "/big.bin", flags: O_WRONLY))
    #expect(isReadOnly(files + "/big.bin", flags: O_RDWR))
    #expect(isReadOnly(volume + "/latest/disk.img", flags: O_WRONLY))
    #expect(mkdir(files + "/folder", 0o755) < 0 && errno == EROFS)
    #expect(unlink(files + "/variant") < 0 && errno == EROFS)

    #expect(try mount.unmount() == 0)
    #expect(!mount.isMounted)
    #expect(mount.output.contains("Unmounted \(mount.mountPoint)."))
    #expect(!mount.log.contains("reel mount:"), "problems logged:\n\(mount.log)")
  }

  /// A volume served and written while it is mounted: bookmarks and instants from before
  /// the mount and after it, each the state written then; `latest` stays the state at
  /// mount time; SIGTERM unmounts.
  @Test func bookmarksAndInstantsOfAServedVolumeShowWhatWasWrittenThen() throws {
    let store = try TestStore()
    let scratch = store.directory.path
    var images: [String] = []
    for variant in 1...3 {
      try makeTree(scratch + "/tree\(variant)", variant: UInt8(variant))
      try makeImage(of: scratch + "/tree\(variant)", at: scratch + "/fs\(variant).img")
      images.append(scratch + "/fs\(variant).img")
    }
    try store.createVolume("fs", size: "16M")
    let server = try ServerProcess(store: store, volumes: ["fs"])
    func write(_ image: String, bookmark label: String) throws -> String {
      try runChecked(try tool("nbdcopy"), [image, store.uri("fs")])
      try runChecked(store.reel, ["bookmark", "fs", label, "--store", store.root])
      let instant = Timestamp.now().rfc3339
      usleep(20_000)
      return instant
    }
    let first = try write(images[0], bookmark: "first")
    let second = try write(images[1], bookmark: "second")

    let mount = try MountProcess(store: store, volumes: ["fs"])
    let volume = mount.mountPoint + "/fs"
    let names = { (path: String) in try FileManager.default.contentsOfDirectory(atPath: path).sorted() }
    #expect(try names(volume + "/bookmarks") == ["first", "second"])
    #expect(try names(volume + "/at") == [])
    let cmp = { (path: String, image: String) in
      let result = try run(try tool("cmp"), [path, image])
      #expect(result.succeeded, "cmp \(path) \(image): \(result.output)")
    }
    try cmp(volume + "/bookmarks/first/disk.img", images[0])
    try cmp(volume + "/bookmarks/second/disk.img", images[1])
    try cmp(volume + "/at/\(first)/disk.img", images[0])
    try cmp(volume + "/at/\(second)/disk.img", images[1])
    try cmp(volume + "/latest/disk.img", images[1])
    let diff = { (tree: String, files: String) in
      let result = try run(try tool("diff"), ["-r", "--no-dereference", "-x", "lost+found", tree, files])
      #expect(result.succeeded, "diff -r \(tree) \(files):\n\(result.output)")
    }
    try diff(scratch + "/tree1", volume + "/bookmarks/first/files")
    try diff(scratch + "/tree1", volume + "/at/\(first)/files")
    try diff(scratch + "/tree2", volume + "/latest/files")
    // The same instant with another offset is another folder with the same content.
    let offset = try #require(Timestamp(rfc3339: first))
    let shifted = Timestamp(nanoseconds: offset.nanoseconds + 3_600_000_000_000).rfc3339
      .replacingOccurrences(of: "Z", with: "+01:00")
    try cmp(volume + "/at/\(shifted)/disk.img", images[0])
    #expect(try names(volume + "/at") == [])

    // Written while mounted: a new bookmark appears and an instant after it finds it.
    let third = try write(images[2], bookmark: "third")
    let deadline = Date(timeIntervalSinceNow: 180)
    while try !names(volume + "/bookmarks").contains("third") && Date() < deadline { usleep(100_000) }
    #expect(try names(volume + "/bookmarks") == ["first", "second", "third"])
    try cmp(volume + "/bookmarks/third/disk.img", images[2])
    try cmp(volume + "/at/\(third)/disk.img", images[2])
    try diff(scratch + "/tree3", volume + "/at/\(third)/files")
    try cmp(volume + "/latest/disk.img", images[1])

    // Instants that name nothing: not there, and the log says why (once).
    var info = stat()
    let future = Timestamp(nanoseconds: Timestamp.now().nanoseconds + 3_600_000_000_000).rfc3339
    #expect(stat(volume + "/at/\(future)", &info) < 0 && errno == ENOENT)
    #expect(stat(volume + "/at/2000-01-01T00:00:00Z", &info) < 0 && errno == ENOENT)
    #expect(stat(volume + "/at/yesterday", &info) < 0 && errno == ENOENT)
    #expect(stat(volume + "/bookmarks/fourth", &info) < 0 && errno == ENOENT)
    #expect(mount.log.contains("is in the future"), "\(mount.log)")
    #expect(mount.log.contains("before volume fs existed"), "\(mount.log)")

    #expect(try mount.stop(SIGTERM) == 0)
    #expect(!mount.isMounted)
    #expect(server.stop() == 0)
  }

  /// Without --allow-other only the mounting user gets in; with it the kernel checks each
  /// file's permissions as stored, and the raw image stays the mounting user's.
  @Test func otherUsersGetInOnlyWithAllowOtherAndThenByTheStoredPermissions() throws {
    let store = try TestStore()
    let scratch = store.directory.path
    try makeTree(scratch + "/tree", variant: 1)
    try makeImage(of: scratch + "/tree", at: scratch + "/fs.img")
    try runChecked(
      store.reel, ["volume", "create", "fs", "--size", "16M", "--from", scratch + "/fs.img", "--store", store.root])
    let cat = try tool("cat")

    let privateMount = try MountProcess(store: store, volumes: ["fs"], shared: true)
    let files = privateMount.mountPoint + "/fs/latest/files"
    #expect(try runChecked(cat, [files + "/many/f7"]).stdout == "file 7 of variant 1\n")
    let refused = try runAsNobody(["/bin/ls", privateMount.mountPoint])
    #expect(!refused.succeeded && refused.stderr.contains("Permission denied"), "\(refused.output)")
    #expect(try privateMount.unmount() == 0)

    let shared = try MountProcess(store: store, volumes: ["fs"], extra: ["--allow-other"], shared: true)
    let point = shared.mountPoint + "/fs/latest"
    #expect(try runAsNobody([cat, point + "/files/many/f7"]).stdout == "file 7 of variant 1\n")
    let variant = try runAsNobody([cat, point + "/files/variant"])  // 0640, owner 1234:5678
    #expect(!variant.succeeded && variant.stderr.contains("Permission denied"), "\(variant.output)")
    let image = try runAsNobody([cat, point + "/disk.img"])
    #expect(!image.succeeded && image.stderr.contains("Permission denied"), "\(image.output)")
    #expect(try runChecked(cat, [point + "/files/variant"]).stdout == "\u{1}")  // root may
    #expect(try shared.stop(SIGINT) == 0)
    #expect(!shared.isMounted)
  }

  /// A whole disk with a GPT: the file system in partition 2 is shown with --partition 2;
  /// partition 1 holds none, so its files/ is missing and the log says why.
  @Test func aPartitionedVolumeShowsTheChosenPartition() throws {
    let store = try TestStore()
    let scratch = store.directory.path
    try makeTree(scratch + "/tree", variant: 2)
    let disk = scratch + "/disk.img"
    try runChecked(try tool("truncate"), ["-s", "24M", disk])
    try runChecked(try tool("sgdisk"), ["--new=1:2048:10239", "--new=2:10240:38911", disk])
    try runChecked(
      try tool("mkfs.ext4"), ["-q", "-F", "-I", "256", "-d", scratch + "/tree", scratch + "/part.img", "14M"])
    try runChecked(
      try tool("dd"), ["if=\(scratch)/part.img", "of=\(disk)", "bs=1M", "seek=5", "conv=notrunc", "status=none"])
    try runChecked(store.reel, ["volume", "create", "disk", "--size", "24M", "--from", disk, "--store", store.root])

    let second = try MountProcess(store: store, volumes: ["disk"], extra: ["--partition", "2"])
    let diff = try run(
      try tool("diff"),
      ["-r", "--no-dereference", "-x", "lost+found", scratch + "/tree", second.mountPoint + "/disk/latest/files"])
    #expect(diff.succeeded, "\(diff.output)")
    try runChecked(try tool("cmp"), [second.mountPoint + "/disk/latest/disk.img", disk])
    #expect(try second.unmount() == 0)

    let first = try MountProcess(store: store, volumes: ["disk"], extra: ["--partition", "1"])
    let point = first.mountPoint + "/disk/latest"
    #expect(try FileManager.default.contentsOfDirectory(atPath: point) == ["disk.img"])
    #expect(first.log.contains("partition 1"), "\(first.log)")
    // Killed outright, it leaves no dead mount behind: Reel's own watcher detaches it
    // (fusermount3's auto_unmount alone missed 2 of 6 kills under load; docs/files.md).
    #expect(try first.stop(SIGKILL) == 128 + SIGKILL)
    let deadline = Date(timeIntervalSinceNow: 30)
    while first.isMounted && Date() < deadline { usleep(50_000) }
    #expect(!first.isMounted, "a dead mount is left at \(first.mountPoint)")
  }

  /// A file system whose superblock is damaged: `files/` gives EIO and the log says why,
  /// once; the raw image is still there.
  @Test func aDamagedFileSystemGivesEIOAndTheLogSaysWhy() throws {
    let store = try TestStore()
    let scratch = store.directory.path
    try FileManager.default.createDirectory(atPath: scratch + "/tree", withIntermediateDirectories: true)
    try Data("kept\n".utf8).write(to: URL(fileURLWithPath: scratch + "/tree/file"))
    try makeImage(of: scratch + "/tree", at: scratch + "/fs.img")
    // s_inodes_count (superblock offset 0) changed: the superblock checksum no longer matches.
    try runChecked(
      "/bin/sh",
      ["-c", "printf '\\377\\377' | dd of=\"$0\" bs=1 seek=1024 conv=notrunc status=none", scratch + "/fs.img"])
    try runChecked(
      store.reel, ["volume", "create", "fs", "--size", "16M", "--from", scratch + "/fs.img", "--store", store.root])
    let mount = try MountProcess(store: store, volumes: ["fs"])
    let point = mount.mountPoint + "/fs/latest"
    var info = stat()
    #expect(stat(point + "/files", &info) < 0 && errno == EIO)
    #expect(stat(point + "/files", &info) < 0 && errno == EIO)
    #expect(try FileManager.default.contentsOfDirectory(atPath: point) == ["disk.img"])
    try runChecked(try tool("cmp"), [point + "/disk.img", scratch + "/fs.img"])
    #expect(try mount.unmount() == 0)
    let lines = mount.log.split(separator: "\n").filter { $0.hasPrefix("reel mount:") }
    #expect(lines.count == 1, "\(mount.log)")
  }

  /// An instant in the middle of a kernel's writing, the file system still mounted: its
  /// metadata may be only in the ext4 journal, which the mount replays in memory, so the
  /// files synced before the instant are all there.
  @Test func anInstantWhileTheKernelHasTheFileSystemMountedShowsWhatWasSynced() throws {
    let store = try TestStore()
    let scratch = store.directory.path
    try makeTree(scratch + "/tree", variant: 4)
    try store.createVolume("fs", size: "32M")
    let server = try ServerProcess(store: store, volumes: ["fs"])
    let kernel = try KernelMount(in: scratch + "/kernel")
    try kernel.connect(store.uri("fs"), servedBy: server)
    try kernel.formatExt4()
    try kernel.mount()
    try runChecked(try tool("cp"), ["-a", scratch + "/tree/.", kernel.mountPoint])
    try runChecked(try tool("sync"), ["-f", kernel.mountPoint])
    let instant = Timestamp.now().rfc3339
    usleep(20_000)
    try Data("written later\n".utf8).write(to: URL(fileURLWithPath: kernel.mountPoint + "/later"))

    let mount = try MountProcess(store: store, volumes: ["fs"])
    // A crash image: what the kernel would replay before showing it.
    let features = try runChecked(
      try tool("dumpe2fs"), ["-h", mount.mountPoint + "/fs/at/\(instant)/disk.img"]
    ).stdout
    #expect(features.contains("needs_recovery"))
    let files = mount.mountPoint + "/fs/at/\(instant)/files"
    let diff = try run(try tool("diff"), ["-r", "--no-dereference", "-x", "lost+found", scratch + "/tree", files])
    #expect(diff.succeeded, "diff -r tree \(files):\n\(diff.output)\n\(mount.log)")
    #expect(try mount.unmount() == 0)
    try kernel.unmount()
    #expect(try kernel.disconnect() == 0)
    #expect(server.stop() == 0)
  }
}
