import Foundation
import ReelCore
import ReelFiles
import ReelTestSupport
import Testing

@Suite("a file system that needs recovery reads as the kernel would show it")
struct JournalOverlayTests {
  @Test(
    "a copy of a mounted ext4 taken after fsync reads as the tree copied into it: the journal is replayed in memory")
  func crashCopyOfAMountedFileSystem() throws {
    let store = try ImageStore()
    let tree = try SampleTree.make(in: store.folder)
    // No lazy initialisation: nothing may write behind the copy's back.
    let live = try store.makeImage("live", size: "24M", options: ["-E", "lazy_itable_init=0,lazy_journal_init=0"])
    let crash = store.folder + "/crash.img"
    do {
      let kernel = try KernelMount(in: store.folder + "/kernel")
      try kernel.mount(live, options: "loop")
      try runChecked(tool("cp"), ["-a", tree.root + "/.", kernel.mountPoint])
      // fsync of every file and folder commits the journal without writing the metadata
      // home (syncfs would write it home too): a power cut now leaves what the copy holds.
      try runChecked(
        tool("find"), [kernel.mountPoint, "(", "-type", "f", "-o", "-type", "d", ")", "-exec", "sync", "{}", "+"])
      try runChecked(tool("cp"), ["--sparse=always", live, crash])
    }
    #expect(try runChecked(tool("dumpe2fs"), ["-h", crash]).stdout.contains("needs_recovery"))
    let files = try VolumeFiles.open(try store.volume("crash", from: crash))
    #expect(files.info.replayedTransactions > 0)
    try TreeComparison(source: tree.root, files: files, expectCreationTime: true).expectSame()
  }

  @Test("a journal debugfs wrote: the logged block replaces the file's block at home, the uncommitted one does not")
  func debugfsJournal() throws {
    let store = try ImageStore()
    let source = store.folder + "/source"
    try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: false)
    try SampleTree.write(pattern(8192, seed: 20), to: source + "/file")
    let image = try store.makeImage("journal", from: source)
    let mapped = try store.debugfs(image, ["bmap /file 0"]).trimmingCharacters(in: .whitespacesAndNewlines)
    let first = try #require(UInt64(mapped.split(separator: "\n").last ?? ""), "\(mapped)")
    let logged = pattern(4096, seed: 21)
    let uncommitted = pattern(4096, seed: 22)
    try Data(logged).write(to: URL(fileURLWithPath: store.folder + "/logged"))
    try Data(uncommitted).write(to: URL(fileURLWithPath: store.folder + "/uncommitted"))
    _ = try store.debugfs(
      image, write: true,
      [
        "jo", "jw -b \(first) \(store.folder)/logged", "jw -b \(first + 1) -c \(store.folder)/uncommitted", "jc",
      ])
    let files = try VolumeFiles.open(try store.volume("journal", from: image))
    #expect(files.info.replayedTransactions == 1)
    let file = try #require(try files.lookup(FileName("file"), in: files.rootInode))
    let content = try files.read(file.inode, offset: 0, length: 8192)
    #expect(Array(content[0..<4096]) == logged)
    #expect(Array(content[4096...]) == Array(pattern(8192, seed: 20)[4096...]))
  }

  @Test("needing recovery from a journal on another device is incompatible, with the kernel's way as the remedy")
  func externalJournal() throws {
    let store = try ImageStore()
    let image = try store.makeImage("external")
    // What an external journal looks like from the file system: no journal inode, a
    // journal device number and UUID, and recovery pending.
    _ = try store.debugfs(
      image, write: true,
      ["ssv journal_inum 0", "ssv journal_dev 0x0701", "ssv journal_uuid random", "feature needs_recovery"])
    do {
      _ = try VolumeFiles.open(try store.volume("external", from: image))
      Issue.record("opened a file system whose journal is elsewhere")
    } catch let error as ReelError {
      #expect(error.kind == .incompatible, "\(error)")
      #expect(error.message.contains("journal is on another device"), "\(error)")
      #expect(error.remedy?.contains("reel serve") == true, "\(error)")
    }
  }
}
