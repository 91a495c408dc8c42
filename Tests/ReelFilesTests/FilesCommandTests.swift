import Foundation
import ReelCore
import ReelFiles
import ReelTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// `reel files` run as a user would, on volumes made from ext4 images that mkfs.ext4 -d
/// filled from real folders; the folders are the oracle.
@Suite(.serialized) struct FilesCommandTests {
  @Test func getKeepsContentModesOwnersTimesLinksHolesXattrsAndSpecialFiles() throws {
    let store = try TestStore()
    let source = store.directory.path + "/source"
    try makeTree(source)
    try createVolume(store, "vm", from: source)
    let out = store.directory.path + "/out"
    let result = try store.reelCommand(["files", "get", "vm", "/", "--at", "latest", "--to", out, "--json"])
    #expect(result.succeeded, "\(result.output)")
    let report = try #require(
      try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    #expect(report["hard_links"] as? Int == 1)
    #expect(report["symbolic_links"] as? Int == 4)
    // Before anything reads the copy (relatime would move it).
    let notes = try lstatOf(out + "/notes.txt")
    #expect(notes.st_atim.tv_sec == 1_588_748_889 && notes.st_atim.tv_nsec == 987_654_321, "atime of notes.txt")
    // Holes are not written: the 3 MiB file and the few bytes of the others.
    #expect((report["bytes"] as? Int ?? 0) < 4 << 20)

    for path in try relativePaths(source) {
      let original = try lstatOf(source + "/" + path)
      let copy = try lstatOf(out + "/" + path)
      #expect(copy.st_mode == original.st_mode, "mode of \(path)")
      #expect(copy.st_uid == original.st_uid && copy.st_gid == original.st_gid, "owner of \(path)")
      #expect(copy.st_size == original.st_size, "size of \(path)")
      if (original.st_mode & S_IFMT) != S_IFLNK {
        #expect(copy.st_mtim.tv_sec == original.st_mtim.tv_sec, "mtime of \(path)")
        #expect(copy.st_mtim.tv_nsec == original.st_mtim.tv_nsec, "mtime nanoseconds of \(path)")
      }
      switch original.st_mode & S_IFMT {
      case S_IFREG:
        #expect(try sha256(out + "/" + path) == (try sha256(source + "/" + path)), "content of \(path)")
      case S_IFLNK:
        #expect(
          try FileManager.default.destinationOfSymbolicLink(atPath: out + "/" + path)
            == (try FileManager.default.destinationOfSymbolicLink(atPath: source + "/" + path)))
      case S_IFCHR:
        #expect(copy.st_rdev == original.st_rdev, "device number of \(path)")
      default: break
      }
    }
    let xattrs = try runChecked(try tool("getfattr"), ["-d", "-m", "user\\.", out + "/notes.txt"]).stdout
    #expect(xattrs.contains("user.comment=\"kept\""), "\(xattrs)")
    let acl = ["-n", "system.posix_acl_access", "-e", "hex", "--absolute-names"]
    let copiedACL = try runChecked(try tool("getfattr"), acl + [out + "/dir/sub/deep.txt"]).stdout
    let sourceACL = try runChecked(try tool("getfattr"), acl + [source + "/dir/sub/deep.txt"]).stdout
    #expect(copiedACL.split(separator: "\n").last == sourceACL.split(separator: "\n").last, "\(copiedACL)")
    #expect(copiedACL.contains("e803"), "\(copiedACL)")
    let hard = try lstatOf(out + "/notes-hardlink.txt")
    #expect(hard.st_ino == (try lstatOf(out + "/notes.txt")).st_ino)
    #expect(hard.st_nlink == 2)
    let sparse = try lstatOf(out + "/sparse.bin")
    #expect(sparse.st_size == 16 << 20)
    #expect(Int(sparse.st_blocks) * 512 < 1 << 20, "the holes of sparse.bin were written")
    #expect(try fileBytes(out + "/sparse.bin", at: 9 << 20, count: 5) == Array("tail\n".utf8))
  }

  @Test func lsCatAndFindShowTheTree() throws {
    let store = try TestStore()
    let source = store.directory.path + "/source"
    try makeTree(source)
    try createVolume(store, "vm", from: source)
    let long = try store.reelCommand(["files", "ls", "vm", "/", "--at", "latest", "-l"])
    #expect(long.succeeded, "\(long.output)")
    #expect(long.stdout.contains("drwsr-x---"), "\(long.stdout)")
    #expect(long.stdout.contains(" 1234  5678 "), "\(long.stdout)")
    #expect(long.stdout.contains("2021-03-04T05:06:07.123456789Z notes.txt"), "\(long.stdout)")
    #expect(long.stdout.contains("link-to-notes -> notes.txt"), "\(long.stdout)")
    let recursive = try store.reelCommand(["files", "ls", "vm", "/dir", "--at", "latest", "-R"])
    #expect(recursive.stdout.split(separator: "\n").contains("/dir/sub/deep.txt"), "\(recursive.stdout)")
    // A folder reached through a link is listed, like ls does.
    // `..` after a link is the parent of where the link led (/dir), as in the kernel.
    let throughLink = try store.reelCommand(["files", "ls", "vm", "/link-to-dir/../sub", "--at", "latest"])
    #expect(throughLink.stdout == "deep.txt\n", "\(throughLink.output)")

    let cat = try store.reelCommand(["files", "cat", "vm", "/link-to-notes", "--at", "latest"])
    #expect(cat.stdout == "notes of the day\n", "\(cat.output)")
    let big = try run(store.reel, ["files", "cat", "vm", "/dir/random.bin", "--at", "latest", "--store", store.root])
    #expect(Array(big.stdout.utf8).count > 0)
    let copy = store.directory.path + "/random.copy"
    let piped = try run(
      "/bin/sh",
      ["-c", "\"$0\" files cat vm /dir/random.bin --at latest --store \"$1\" > \"$2\"", store.reel, store.root, copy])
    #expect(piped.succeeded, "\(piped.output)")
    #expect(try sha256(copy) == (try sha256(source + "/dir/random.bin")))

    let named = try store.reelCommand(["files", "find", "vm", "--at", "latest", "--name", "*.txt", "--type", "f"])
    #expect(named.stdout == "/dir/sub/deep.txt\n/notes-hardlink.txt\n/notes.txt\n", "\(named.output)")
    let large = try store.reelCommand(["files", "find", "vm", "--at", "latest", "--larger", "1M"])
    #expect(large.stdout == "/dir/random.bin\n/sparse.bin\n", "\(large.output)")
    let newer = try store.reelCommand(
      ["files", "find", "vm", "/", "--at", "latest", "--newer", "2021-03-04T05:06:07.123456788Z", "--type", "f"])
    #expect(newer.stdout.contains("/notes.txt\n"), "\(newer.output)")
    let notNewer = try store.reelCommand(
      [
        "files", "find", "vm", "/", "--at", "latest", "--newer", "2021-03-04T05:06:07.123456789Z", "--name",
        "notes.txt",
      ])
    #expect(notNewer.stdout == "", "\(notNewer.output)")
    let json = try store.reelCommand(["files", "ls", "vm", "/", "--at", "latest", "--json"])
    let first = try #require(json.stdout.split(separator: "\n").first)
    let object = try #require(try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])
    #expect(object["name"] as? String == "dir")
    #expect(object["mode"] as? String == "drwsr-x---")
  }

  @Test func badPathsPointsAndVolumesAreClearErrors() throws {
    let store = try TestStore()
    let source = store.directory.path + "/source"
    try makeTree(source)
    try createVolume(store, "vm", from: source)
    let missing = try store.reelCommand(["files", "cat", "vm", "/dir/nope.txt", "--at", "latest"])
    #expect(missing.status == 66)
    #expect(
      missing.stderr.contains("/dir/nope.txt: no such file or directory in volume vm at seq 0"), "\(missing.stderr)")
    let loop = try store.reelCommand(["files", "cat", "vm", "/loop-a", "--at", "latest"])
    #expect(loop.status == 66)
    #expect(loop.stderr.contains("too many levels of symbolic links"), "\(loop.stderr)")
    let throughFile = try store.reelCommand(["files", "ls", "vm", "/notes.txt/x", "--at", "latest"])
    #expect(throughFile.status == 66)
    #expect(throughFile.stderr.contains("/notes.txt is not a directory"), "\(throughFile.stderr)")
    let folder = try store.reelCommand(["files", "cat", "vm", "/dir", "--at", "latest"])
    #expect(folder.status == 64)
    #expect(folder.stderr.contains("/dir is a folder"), "\(folder.stderr)")
    let before = try store.reelCommand(["files", "ls", "vm", "--at", "2001-01-01T00:00:00Z"])
    #expect(before.status == 66)
    #expect(before.stderr.contains("before volume vm existed"), "\(before.stderr)")
    try store.createVolume("blank", size: "8M")
    let blank = try store.reelCommand(["files", "ls", "blank", "--at", "latest"])
    #expect(blank.status == 66)
    #expect(blank.stderr.contains("no file system"), "\(blank.stderr)")
    // The store is left as it was: reading never writes history.
    #expect(try store.records("vm").isEmpty)
  }

  @Test func getNeverWritesOutsideTheDestination() throws {
    let store = try TestStore()
    let source = store.directory.path + "/source"
    try makeTree(source)
    try createVolume(store, "vm", from: source)
    let victim = store.directory.path + "/victim"
    try FileManager.default.createDirectory(atPath: victim, withIntermediateDirectories: true)
    try Data("precious\n".utf8).write(to: URL(fileURLWithPath: victim + "/notes.txt"))
    let out = store.directory.path + "/out"
    try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
    // Links planted where the tree's folder and file go.
    try FileManager.default.createSymbolicLink(atPath: out + "/dir", withDestinationPath: victim)
    try FileManager.default.createSymbolicLink(atPath: out + "/notes.txt", withDestinationPath: victim + "/notes.txt")

    let refused = try store.reelCommand(["files", "get", "vm", "/dir", "/notes.txt", "--at", "latest", "--to", out])
    #expect(refused.status == 73, "\(refused.output)")
    #expect(refused.stderr.contains("already exists"), "\(refused.stderr)")
    let forced = try store.reelCommand(
      ["files", "get", "vm", "/dir", "/notes.txt", "--at", "latest", "--to", out, "--force"])
    #expect(forced.succeeded, "\(forced.output)")
    #expect(try FileManager.default.contentsOfDirectory(atPath: victim) == ["notes.txt"])
    #expect(try String(contentsOfFile: victim + "/notes.txt", encoding: .utf8) == "precious\n")
    #expect((try lstatOf(out + "/dir")).st_mode & S_IFMT == S_IFDIR)
    #expect(try String(contentsOfFile: out + "/notes.txt", encoding: .utf8) == "notes of the day\n")
    #expect(try sha256(out + "/dir/random.bin") == (try sha256(source + "/dir/random.bin")))

    // --to inside a link loop.
    try FileManager.default.createSymbolicLink(atPath: out + "/loop-a", withDestinationPath: "loop-b")
    try FileManager.default.createSymbolicLink(atPath: out + "/loop-b", withDestinationPath: "loop-a")
    let loop = try store.reelCommand(["files", "get", "vm", "/notes.txt", "--at", "latest", "--to", out + "/loop-a/x"])
    #expect(loop.status == 64, "\(loop.output)")
    #expect(loop.stderr.contains("link loop"), "\(loop.stderr)")
  }

  /// Files are filled by other threads after the walk has moved on: a folder's mode and
  /// times must still come last, or a user who is not root could not finish writing into
  /// a folder without write or search permission, and its time would move.
  @Test func getAsAnotherUserClosesFoldersOnlyWhenEverythingInsideIsWritten() throws {
    let store = try TestStore()
    let source = store.directory.path + "/source"
    try FileManager.default.createDirectory(atPath: source + "/locked/sealed", withIntermediateDirectories: true)
    for index in 0..<40 { try write(source + "/locked/f\(index)", String(repeating: "line \(index)\n", count: index)) }
    try writeRandomFile(source + "/locked/big.bin", bytes: 5 << 20 + 777)
    try write(source + "/locked/sealed/inner.txt", "inside a folder nobody may enter\n")
    chmod(source + "/locked/sealed", 0o000)
    chmod(source + "/locked", 0o500)
    try touch(source + "/locked/sealed", "2021-03-04T05:06:09.25Z")
    try touch(source + "/locked", "2021-03-04T05:06:10.75Z")
    try createVolume(store, "vm", from: source)
    try runChecked(try tool("chown"), ["-R", "nobody:nogroup", store.directory.path])
    let out = store.directory.path + "/out"

    let got = try runAsNobody([
      store.reel, "files", "get", "vm", "/locked", "--at", "latest", "--to", out, "--store", store.root,
    ])
    #expect(got.succeeded, "\(got.output)")
    for folder in ["locked", "locked/sealed"] {
      let copied = try lstatOf(out + "/" + folder)
      let original = try lstatOf(source + "/" + folder)
      #expect(copied.st_mode == original.st_mode, "\(folder)")
      #expect(
        copied.st_mtim.tv_sec == original.st_mtim.tv_sec && copied.st_mtim.tv_nsec == original.st_mtim.tv_nsec,
        "\(folder)")
    }
    #expect(try sha256(out + "/locked/big.bin") == (try sha256(source + "/locked/big.bin")))
    #expect(
      try String(contentsOfFile: out + "/locked/sealed/inner.txt", encoding: .utf8)
        == "inside a folder nobody may enter\n")
    for index in 0..<40 {
      #expect(
        try String(contentsOfFile: out + "/locked/f\(index)", encoding: .utf8)
          == String(repeating: "line \(index)\n", count: index))
    }
  }

  @Test func partitionPicksTheFileSystemInAGPTTable() throws {
    let store = try TestStore()
    let folder = store.directory.path
    try FileManager.default.createDirectory(atPath: folder + "/source", withIntermediateDirectories: true)
    try write(folder + "/source/p2.txt", "in partition 2\n")
    let disk = folder + "/disk.img"
    try runChecked(try tool("truncate"), ["-s", "64M", disk])
    try runChecked(try tool("sgdisk"), ["-n", "1:2048:+8M", "-n", "2:0:0", disk])
    let info = try runChecked(try tool("sgdisk"), ["-i", "2", disk]).stdout
    func sector(_ label: String) throws -> Int {
      let line = try #require(info.split(separator: "\n").first { $0.hasPrefix(label) })
      return try #require(Int(line.split(separator: " ")[2]))
    }
    let first = try sector("First sector:")
    let last = try sector("Last sector:")
    try runChecked(
      try tool("mkfs.ext4"),
      ["-q", "-F", "-E", "offset=\(first * 512)", "-d", folder + "/source", disk, "\((last - first + 1) / 2)k"])
    try #require(store.reelCommand(["volume", "create", "disk", "--size", "64M", "--from", disk]).succeeded)
    let chosen = try store.reelCommand(["files", "cat", "disk", "/p2.txt", "--at", "latest", "--partition", "2"])
    #expect(chosen.stdout == "in partition 2\n", "\(chosen.output)")
    // The one partition with a file system is found without --partition.
    let found = try store.reelCommand(["files", "cat", "disk", "/p2.txt", "--at", "latest"])
    #expect(found.stdout == "in partition 2\n", "\(found.output)")
    let empty = try store.reelCommand(["files", "ls", "disk", "--at", "latest", "--partition", "1"])
    #expect(empty.status == 66)
    #expect(empty.stderr.contains("partition 1"), "\(empty.stderr)")
  }

  @Test func namesFromTheFileSystemThatAreNotOneComponentAreRefused() throws {
    for bad in ["", ".", "..", "a/b", "/", "a\u{0}b"] {
      #expect(throws: ReelError.self, "\(bad.debugDescription)") {
        try ExtractionName.check(Array(bad.utf8), in: Array("/dir".utf8))
      }
    }
    try ExtractionName.check(Array("...".utf8), in: Array("/".utf8))
    try ExtractionName.check([0xff, 0x41], in: Array("/".utf8))
  }

  @Test func diffAndHistoryAcrossPointsWrittenThroughTheServer() throws {
    let store = try TestStore()
    let folder = store.directory.path
    // Three versions of one folder, as three images with the same UUID and hash seed.
    let versions = [folder + "/v1", folder + "/v2", folder + "/v3"]
    for (index, path) in versions.enumerated() {
      try FileManager.default.createDirectory(atPath: path + "/docs", withIntermediateDirectories: true)
      try write(path + "/tracked.txt", "version \(index + 1)\n")
      try write(path + "/docs/readme", "same in all\n")
      try touch(path + "/docs/readme", "2022-01-01T00:00:00Z")
      try touch(path + "/docs", "2022-01-01T00:00:00Z")
    }
    try write(versions[0] + "/removed.txt", "gone later\n")
    try write(versions[1] + "/added.txt", "new\n")
    try write(versions[2] + "/added.txt", "new\n")
    // Same size and same mtime, different bytes: only a byte comparison sees it.
    try write(versions[0] + "/same-size.bin", "AAAA")
    try write(versions[1] + "/same-size.bin", "ABAA")
    try write(versions[2] + "/same-size.bin", "ABAA")
    for path in versions {
      try touch(path + "/same-size.bin", "2022-01-01T00:00:00Z")
      chmod(path + "/docs/readme", path == versions[0] ? 0o644 : 0o600)
    }
    let images = try versions.enumerated().map { index, path in
      let image = folder + "/image\(index + 1).img"
      try makeImage(image, from: path)
      return image
    }
    try #require(
      store.reelCommand(["volume", "create", "vm", "--size", "64M", "--from", images[0]]).succeeded)
    let server = try ServerProcess(store: store, volumes: ["vm"])
    try runChecked(try tool("nbdcopy"), ["--flush", images[1], store.uri("vm")])
    try #require(store.reelCommand(["bookmark", "vm", "second"]).succeeded)
    try runChecked(try tool("nbdcopy"), ["--flush", images[2], store.uri("vm")])
    #expect(server.stop() == 0)

    let diff = try store.reelCommand(["files", "diff", "vm", "--from", "seq:0", "--to", "second"])
    #expect(diff.succeeded, "\(diff.output)")
    let lines = diff.stdout.split(separator: "\n").map(String.init)
    #expect(lines.contains("A /added.txt"), "\(diff.stdout)")
    #expect(lines.contains("D /removed.txt"), "\(diff.stdout)")
    #expect(lines.contains("M /same-size.bin (content)"), "\(diff.stdout)")
    #expect(lines.contains { $0.hasPrefix("M /docs/readme (mode") }, "\(diff.stdout)")
    #expect(lines.contains { $0.hasPrefix("M /tracked.txt (") && $0.contains("content") }, "\(diff.stdout)")
    #expect(!lines.contains { $0.contains("/docs/readme") && $0.contains("content") }, "\(diff.stdout)")
    let none = try store.reelCommand(["files", "diff", "vm", "--from", "second", "--to", "latest", "/same-size.bin"])
    #expect(none.succeeded && none.stdout.isEmpty, "\(none.output)")

    let history = try store.reelCommand(["files", "history", "vm", "/tracked.txt", "--json"])
    #expect(history.succeeded, "\(history.output)")
    let entries = try history.stdout.split(separator: "\n").map {
      try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])
    }
    // Every version listed restores to the content the history names, and the three
    // versions written are among them, in order.
    var contents: [String] = []
    for entry in entries where entry["exists"] as? Bool == true {
      let seq = try #require(entry["seq"] as? Int)
      let out = folder + "/restored-\(seq)"
      try #require(
        store.reelCommand(["files", "get", "vm", "/tracked.txt", "--at", "seq:\(seq)", "--to", out]).succeeded)
      #expect(try sha256(out + "/tracked.txt") == entry["sha256"] as? String)
      let text = try String(contentsOfFile: out + "/tracked.txt", encoding: .utf8)
      if contents.last != text { contents.append(text) }
    }
    let wanted = ["version 1\n", "version 2\n", "version 3\n"]
    #expect(contents.filter(wanted.contains) == wanted, "\(contents)")
    let records = try store.records("vm").count
    #expect(entries.count < records, "history listed every record (\(records)) instead of the changes")
    let text = try store.reelCommand(["files", "history", "vm", "/tracked.txt", "--from", "second"])
    #expect(text.stdout.contains("Restore any version: reel files get vm --at seq:N /tracked.txt --to DIR"))
  }
}

/// A tree with every kind of thing `files get` must keep.
private func makeTree(_ root: String) throws {
  let manager = FileManager.default
  try manager.createDirectory(atPath: root + "/dir/sub", withIntermediateDirectories: true)
  try write(root + "/notes.txt", "notes of the day\n")
  try write(root + "/dir/sub/deep.txt", "deep\n")
  try writeRandomFile(root + "/dir/random.bin", bytes: 3 << 20 + 12345)
  try runChecked(try tool("truncate"), ["-s", "16M", root + "/sparse.bin"])
  try runChecked(
    "/bin/sh", ["-c", "printf 'tail\\n' | dd of=\"$0\" bs=1M seek=9 conv=notrunc status=none", root + "/sparse.bin"])
  try runChecked(try tool("setfattr"), ["-n", "user.comment", "-v", "kept", root + "/notes.txt"])
  // user::rw- user:1000:r-- group::r-- mask::r-- other::r--, in the kernel's xattr form.
  try runChecked(
    try tool("setfattr"),
    [
      "-n", "system.posix_acl_access", "-v",
      "0x0200000001000600ffffffff02000400e803000004000400ffffffff10000400ffffffff20000400ffffffff",
      root + "/dir/sub/deep.txt",
    ])
  try manager.linkItem(atPath: root + "/notes.txt", toPath: root + "/notes-hardlink.txt")
  try manager.createSymbolicLink(atPath: root + "/link-to-notes", withDestinationPath: "notes.txt")
  try manager.createSymbolicLink(atPath: root + "/link-to-dir", withDestinationPath: "dir/sub")
  try manager.createSymbolicLink(atPath: root + "/loop-a", withDestinationPath: "loop-b")
  try manager.createSymbolicLink(atPath: root + "/loop-b", withDestinationPath: "loop-a")
  try runChecked(try tool("mkfifo"), [root + "/pipe"])
  try runChecked(try tool("mknod"), [root + "/null-device", "c", "1", "3"])
  try runChecked(try tool("chown"), ["1234:5678", root + "/notes.txt"])
  chmod(root + "/dir", 0o4750)
  try touch(root + "/notes.txt", "2021-03-04T05:06:07.123456789Z")
  try touch(root + "/dir", "2021-03-04T05:06:08.5Z")
}

private func makeImage(_ image: String, from folder: String) throws {
  // 256-byte inodes keep nanoseconds; one UUID and hash seed keep the layouts close.
  try runChecked(
    try tool("mkfs.ext4"),
    [
      "-q", "-F", "-I", "256", "-U", "6f0c3c36-3c5a-4d53-9a57-0b8f7d5c2a11", "-E",
      "hash_seed=1b4e28ba-2fa1-11d2-883f-0016d3cca427", "-d", folder, image, "64M",
    ])
}

/// A volume made from `folder`. mkfs.ext4 -d copies times to the second only: the
/// nanoseconds of every modification time are set in the image with debugfs, and
/// notes.txt gets an access time of its own (2020-05-06T07:08:09.987654321Z).
private func createVolume(_ store: TestStore, _ name: String, from folder: String) throws {
  let image = store.directory.path + "/\(name).img"
  try makeImage(image, from: folder)
  var commands = [
    "sif /notes.txt atime @1588748889", "sif /notes.txt atime_extra \(UInt32(987_654_321) << 2)",
  ]
  for path in try relativePaths(folder) {
    let info = try lstatOf(folder + "/" + path)
    guard (info.st_mode & S_IFMT) != S_IFLNK else { continue }
    commands.append("sif /\(path) mtime_extra \(UInt32(info.st_mtim.tv_nsec) << 2)")
  }
  let script = store.directory.path + "/\(name).debugfs"
  try write(script, commands.joined(separator: "\n") + "\n")
  try runChecked(try tool("debugfs"), ["-w", "-f", script, image])
  let created = try store.reelCommand(["volume", "create", name, "--size", "64M", "--from", image])
  try #require(created.succeeded, "\(created.output)")
}

private func write(_ path: String, _ text: String) throws {
  try Data(text.utf8).write(to: URL(fileURLWithPath: path))
}

private func touch(_ path: String, _ time: String) throws {
  try runChecked(try tool("touch"), ["-h", "-d", time, path])
}

private func lstatOf(_ path: String) throws -> stat {
  var info = stat()
  guard lstat(path, &info) == 0 else { throw SupportError("lstat \(path): \(String(cString: strerror(errno)))") }
  return info
}

private func relativePaths(_ root: String) throws -> [String] {
  let found = try runChecked(try tool("find"), [root, "-mindepth", "1"]).stdout
  return found.split(separator: "\n").map { String($0.dropFirst(root.count + 1)) }
}

private func fileBytes(_ path: String, at offset: UInt64, count: Int) throws -> [UInt8] {
  let handle = try #require(FileHandle(forReadingAtPath: path))
  defer { try? handle.close() }
  try handle.seek(toOffset: offset)
  return Array(try handle.read(upToCount: count) ?? Data())
}
