import Foundation
import ReelCore
import ReelJournal
import ReelTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// What `reel files` shows at an instant is what the kernel shows after mounting an image
/// restored at that instant: at bookmarks taken with the file system mounted (its journal
/// still to replay), at a clean unmount, and at instants in the middle of writing that
/// nobody marked.
@Suite(.serialized) struct FilesConsistencyTests {
  /// The kernel writes everything `files get` must carry: thousands of entries in one
  /// directory, files of several extents, fast and slow symlinks, hard links, sparse
  /// files, extended attributes, odd modes and owners, a fifo and a device.
  func writeFirstState(_ root: String) throws {
    let files = FileManager.default
    try files.createDirectory(atPath: root + "/big", withIntermediateDirectories: true)
    for index in 0..<2000 {
      let text = String(repeating: "entry \(index)\n", count: index % 7 + 1)
      try text.write(toFile: root + "/big/f\(String(format: "%04d", index))", atomically: false, encoding: .utf8)
    }
    try files.createDirectory(atPath: root + "/docs", withIntermediateDirectories: true)
    var copied = 0
    let enumerator = try #require(files.enumerator(atPath: "/usr/share/doc"))
    while copied < 150, let relative = enumerator.nextObject() as? String {
      let source = "/usr/share/doc/" + relative
      var isDirectory: ObjCBool = false
      guard files.fileExists(atPath: source, isDirectory: &isDirectory), !isDirectory.boolValue,
        (try? files.destinationOfSymbolicLink(atPath: source)) == nil
      else { continue }
      let flat = relative.replacingOccurrences(of: "/", with: "_")
      try files.copyItem(atPath: source, toPath: root + "/docs/" + flat)
      copied += 1
    }
    // Two files grown in turns, each write flushed, so each ends up in several extents.
    try files.createDirectory(atPath: root + "/frag", withIntermediateDirectories: true)
    for name in ["a", "b"] { _ = files.createFile(atPath: root + "/frag/" + name, contents: nil) }
    let handles = try ["a", "b"].map { try #require(FileHandle(forWritingAtPath: root + "/frag/" + $0)) }
    for round in 0..<32 {
      for (index, handle) in handles.enumerated() {
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(repeating: UInt8(truncatingIfNeeded: round * 2 + index + 1), count: 64 << 10))
        try handle.synchronize()
      }
    }
    for handle in handles { try handle.close() }
    try files.createSymbolicLink(atPath: root + "/short-link", withDestinationPath: "docs")
    try files.createSymbolicLink(
      atPath: root + "/long-link", withDestinationPath: String(repeating: "far/away/", count: 14) + "target")
    try files.linkItem(atPath: root + "/frag/a", toPath: root + "/hard-a1")
    try files.linkItem(atPath: root + "/frag/a", toPath: root + "/big/hard-a2")
    // Sparse: data at 1 MiB and 5 MiB of an 8 MiB file.
    let sparse = root + "/sparse.bin"
    _ = files.createFile(atPath: sparse, contents: nil)
    let handle = try #require(FileHandle(forWritingAtPath: sparse))
    for offset in [1 << 20, 5 << 20] {
      try handle.seek(toOffset: UInt64(offset))
      try handle.write(contentsOf: Data(repeating: 0xAB, count: 40 << 10))
    }
    try handle.truncate(atOffset: 8 << 20)
    try handle.close()
    let setfattr = try tool("setfattr")
    try runChecked(setfattr, ["-n", "user.note", "-v", "kept in the inode", root + "/docs"])
    try runChecked(setfattr, ["-n", "user.large", "-v", String(repeating: "x", count: 1500), root + "/frag/b"])
    try runChecked(setfattr, ["-n", "trusted.reel", "-v", "0x00ff10", root + "/sparse.bin"])
    try runChecked(try tool("chmod"), ["4750", root + "/frag/b"])
    try runChecked(try tool("chown"), ["1234:5678", root + "/big/f0007"])
    try runChecked(try tool("mkfifo"), [root + "/pipe"])
    try runChecked(try tool("mknod"), [root + "/null-device", "c", "1", "3"])
    try runChecked(try tool("touch"), ["-h", "-d", "2001-02-03T04:05:06.123456789Z", root + "/short-link"])
  }

  /// Deletes, renames, overwrites and metadata changes, flushed only by the kernel's own
  /// commits except once in the middle.
  func writeSecondState(_ root: String) throws {
    let files = FileManager.default
    for index in stride(from: 0, to: 2000, by: 2) {
      try files.removeItem(atPath: root + "/big/f\(String(format: "%04d", index))")
    }
    try files.moveItem(atPath: root + "/docs", toPath: root + "/documents")
    try runChecked(try tool("sync"), [])
    let handle = try #require(FileHandle(forWritingAtPath: root + "/frag/b"))
    try handle.seek(toOffset: 300 << 10)
    try handle.write(contentsOf: Data(repeating: 0xEE, count: 200 << 10))
    try handle.close()
    try "new after the first bookmark\n".write(toFile: root + "/big/new.txt", atomically: true, encoding: .utf8)
    try runChecked(try tool("setfattr"), ["-n", "user.note", "-v", "changed", root + "/documents"])
    try runChecked(try tool("chmod"), ["600", root + "/hard-a1"])
    try files.removeItem(atPath: root + "/long-link")
  }

  @Test func filesGetEqualsTheKernelAtBookmarksAndCrashInstants() throws {
    let store = try TestStore()
    try store.createVolume("fs", size: "96M")
    let server = try ServerProcess(store: store, volumes: ["fs"])
    let kernel = try KernelMount(in: store.directory.path)
    try kernel.connect(store.uri("fs"), servedBy: server)
    try kernel.formatExt4(["-b", "4096"])
    try kernel.mount()
    let formatted = try store.bookmark("fs", "formatted")
    try writeFirstState(kernel.mountPoint)
    try runChecked(try tool("sync"), [])
    let first = try store.bookmark("fs", "one")  // mounted: its journal still to replay
    try writeSecondState(kernel.mountPoint)
    _ = try store.bookmark("fs", "two")
    try kernel.unmount()
    let last = try store.bookmark("fs", "three")  // a clean unmount
    #expect(try kernel.disconnect() == 0)
    #expect(server.stop() == 0)

    // Instants nobody marked, in the middle of writing: spread over the records, and one
    // drawn at random (printed, to replay a failure with `--at seq:N`).
    let seqs = try store.records("fs").map(\.seq).filter { $0 > formatted && $0 < last }
    try #require(seqs.count > 20)
    var unmarked = [0.15, 0.4, 0.65, 0.9].map { seqs[Int(Double(seqs.count) * $0)] }
    unmarked.append(try #require(seqs.randomElement()))
    print("FilesConsistencyTests: unmarked instants \(unmarked.map { "seq:\($0)" })")
    #expect(first > formatted)

    let points = ["one", "two", "three"] + unmarked.map { "seq:\($0)" }
    var pointsWithJournalToReplay: [String] = []
    for point in points {
      let image = store.directory.path + "/restored.img"
      let restored = try store.reelCommand(["restore", "fs", "--at", point, "--output", image, "--force"])
      try #require(restored.succeeded, "restore at \(point): \(restored.stderr)")
      let header = try runChecked(try tool("dumpe2fs"), ["-h", image]).stdout
      if header.contains("needs_recovery") { pointsWithJournalToReplay.append(point) }
      // Writable, as the kernel replays the journal onto the device (a read-only loop
      // device refuses the mount); the image is a scratch copy.
      try kernel.mount(image, options: "loop")
      let expected = try TreeManifest(of: kernel.mountPoint)
      try kernel.unmount()

      let extracted = store.directory.path + "/get-" + point.replacingOccurrences(of: ":", with: "-")
      let get = try store.reelCommand(["files", "get", "fs", "--at", point, "/", "--to", extracted])
      try #require(get.succeeded, "files get at \(point): \(get.stderr)")
      let got = try TreeManifest(of: extracted)
      let differences = expected.differences(from: got)
      #expect(differences.isEmpty, "at \(point), kernel vs reel files get:\n\(differences.joined(separator: "\n"))")
      let bookmarked = !point.hasPrefix("seq:")
      #expect(expected.entries.count > (bookmarked ? 1000 : 1), "at \(point) the tree is too small to test anything")
    }
    // Otherwise the journal replay was not tested at all.
    #expect(pointsWithJournalToReplay.count >= 3, "points needing recovery: \(pointsWithJournalToReplay)")
    #expect(!pointsWithJournalToReplay.contains("three"), "a clean unmount leaves nothing to replay")
  }
}
