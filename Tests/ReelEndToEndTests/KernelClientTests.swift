import Foundation
import ReelCore
import ReelJournal
import ReelTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// The kernel as a client: nbdfuse exposes the export as a file, ext4 lives on it through
/// a loop device, and bookmarks taken between changes restore to exactly what the device
/// held.
@Suite(.serialized) struct KernelClientTests {
  /// Copies up to `limit` regular files from /usr/share/doc into `destination`.
  func copyRealFiles(into destination: String, limit: Int) throws -> Int {
    var copied = 0
    let root = "/usr/share/doc"
    let enumerator = try #require(FileManager.default.enumerator(atPath: root))
    while copied < limit, let relative = enumerator.nextObject() as? String {
      let source = root + "/" + relative
      var isDirectory: ObjCBool = false
      guard FileManager.default.fileExists(atPath: source, isDirectory: &isDirectory), !isDirectory.boolValue,
        (try? FileManager.default.destinationOfSymbolicLink(atPath: source)) == nil
      else { continue }
      let target = destination + "/" + relative
      try FileManager.default.createDirectory(
        atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
      try FileManager.default.copyItem(atPath: source, toPath: target)
      copied += 1
    }
    return copied
  }

  func bookmark(_ store: TestStore, _ volume: String, _ label: String) throws -> Seq {
    let result = try store.reelCommand(["bookmark", volume, label])
    try #require(result.succeeded, "bookmark failed: \(result.stderr)")
    #expect(result.stdout.hasPrefix("Bookmark \(label) at seq "))
    let seqText = try #require(result.stdout.split(separator: " ").dropFirst(4).first?.dropLast())
    return try #require(Seq(seqText))
  }

  @Test func ext4OnNBDFuseAndLoopRestoresAtEachBookmark() throws {
    let store = try TestStore()
    try store.createVolume("fs", size: "64M")
    let server = try ServerProcess(store: store, volumes: ["fs"])
    let kernel = try KernelMount(in: store.directory.path)
    let device = kernel.device
    let mountPoint = kernel.mountPoint

    try kernel.connect(store.uri("fs"), servedBy: server)
    try kernel.formatExt4()
    try kernel.mount()
    let copied = try copyRealFiles(into: mountPoint + "/docs", limit: 300)
    #expect(copied >= 100)
    try runChecked(try tool("sync"), [])
    try kernel.unmount()
    try runChecked(try tool("sync"), [])
    let firstSeq = try bookmark(store, "fs", "after-copy")
    let firstSum = try sha256(device)

    try kernel.mount()
    let docs = try FileManager.default.contentsOfDirectory(atPath: mountPoint + "/docs").sorted()
    for name in docs.prefix(docs.count / 2) { try FileManager.default.removeItem(atPath: mountPoint + "/docs/" + name) }
    try Data(repeating: 0x7A, count: 3 << 20).write(to: URL(fileURLWithPath: mountPoint + "/new.bin"))
    try runChecked(try tool("sync"), [])
    try kernel.unmount()
    try runChecked(try tool("sync"), [])
    let secondSeq = try bookmark(store, "fs", "after-changes")
    let secondSum = try sha256(device)
    #expect(firstSum != secondSum)
    #expect(secondSeq > firstSeq)

    #expect(try kernel.disconnect() == 0)
    #expect(server.stop() == 0)

    // The journal, replayed independently up to each bookmark, gives what the device held.
    let scratch = store.directory.path + "/replayed.img"
    for (seq, sum) in [(firstSeq, firstSum), (secondSeq, secondSum)] {
      try Data(try store.replay("fs", upTo: seq)).write(to: URL(fileURLWithPath: scratch))
      #expect(try sha256(scratch) == sum, "journal replay to seq \(seq)")
    }
    // And `reel restore`, where it exists, agrees.
    if try run(store.reel, ["restore", "--help"]).succeeded {
      for (label, sum) in [("after-copy", firstSum), ("after-changes", secondSum)] {
        let output = store.directory.path + "/\(label).img"
        let restored = try store.reelCommand(["restore", "fs", "--at", label, "--output", output])
        try #require(restored.succeeded, "\(restored.stderr)")
        #expect(try sha256(output) == sum, "reel restore --at \(label)")
      }
    }
    let summary = try store.journal("fs").summarize()
    #expect(summary.bookmarks.map(\.label) == ["after-copy", "after-changes"])

    // Browse the past without restoring: each bookmark served read-only from the live
    // store, through nbdfuse and a read-only loop mount, shows the files as they were.
    for (label, sum) in [("after-copy", firstSum), ("after-changes", secondSum)] {
      let past = try ServerProcess(store: store, volumes: ["fs"], extra: ["--at", label, "--read-only"])
      #expect(past.output.contains("as of bookmark \"\(label)\""))
      try kernel.connect(store.uri("fs"), servedBy: past, readOnly: true)
      #expect(try sha256(device) == sum, "served read-only at \(label)")
      try kernel.mount(options: "ro,loop,noload")
      let listed = try FileManager.default.contentsOfDirectory(atPath: mountPoint + "/docs")
      let newFile = mountPoint + "/new.bin"
      if label == "after-copy" {
        #expect(listed.sorted() == docs)
        #expect(!FileManager.default.fileExists(atPath: newFile))
      } else {
        #expect(listed.count == docs.count - docs.count / 2)
        #expect(FileManager.default.contents(atPath: newFile) == Data(repeating: 0x7A, count: 3 << 20))
      }
      try kernel.unmount()
      #expect(try kernel.disconnect() == 0)
      // A writer is refused: the export is read-only.
      let write = try run(try tool("qemu-io"), ["-f", "raw", "-c", "write -P 0x11 0 4096", store.uri("fs")])
      #expect(
        !write.succeeded || write.stdout.contains("Operation not permitted") || write.stderr.contains("read-only"))
      #expect(past.stop() == 0)
    }
    // Nothing written while browsing: the journal is as it was.
    #expect(try store.journal("fs").summarize().lastSeq == summary.lastSeq)
  }
}
