import Foundation
import ReelCore
import ReelFiles
import ReelTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// jbd2 replay against e2fsck as the oracle, on journals the kernel (or e2fsprogs'
/// debugfs journal writer, for formats the kernel no longer writes) really wrote.
@Suite(.serialized) struct JournalReplayTests {
  // MARK: Journals the kernel wrote

  @Test func checksumV3JournalThatWrapsMatchesE2fsck() throws {
    // Written on until the log in the copy runs past the journal's end and back, and holds
    // revoke records (from deleted directories).
    let image = try CrashImage.kernel(
      mkfs: [], mount: "rw", until: { try $0.logWrapped() && $0.logdump().contains("revoke table") }
    ) { root, attempt in
      if attempt == 0 { try metadataWorkload(root, rounds: 150) } else { try churn(root, attempt) }
    }
    let features = try image.journalFeatures()
    #expect(features.contains("journal_checksum_v3") && features.contains("journal_64bit"))
    try image.expectReplayMatchesE2fsck()
  }

  @Test func fourKiBBlocksMatchE2fsck() throws {
    for (mkfs, options) in [([String](), "rw"), ([], "data=journal"), (["-O", "^metadata_csum,^64bit"], "rw")] {
      let image = try CrashImage.kernel(mkfs: mkfs, mount: options, blockSize: 4096) { root in
        try metadataWorkload(root, rounds: 60)
      }
      try image.expectReplayMatchesE2fsck()
    }
  }

  @Test func plainTags64BitMatchE2fsck() throws {
    let image = try CrashImage.kernel(mkfs: ["-O", "^metadata_csum"], mount: "rw") { root in
      try metadataWorkload(root, rounds: 120)
    }
    let features = try image.journalFeatures()
    #expect(features.contains("journal_64bit") && !features.contains("checksum"))
    try image.expectReplayMatchesE2fsck()
  }

  @Test func plainTags32BitMatchE2fsck() throws {
    let image = try CrashImage.kernel(mkfs: ["-O", "^metadata_csum,^64bit"], mount: "rw") { root in
      try metadataWorkload(root, rounds: 120)
    }
    #expect(try !image.journalFeatures().contains("journal_64bit"))
    try image.expectReplayMatchesE2fsck()
  }

  @Test func dataJournalWithEscapedBlockMatchesE2fsck() throws {
    // File data goes through the log too; one data block starts with the jbd2 magic, which
    // the kernel must escape in the log and recovery must restore. (In this mode the kernel
    // logs no revoke records: the ordered-mode tests have them.)
    var magicBlock = [UInt8](repeating: 0x5A, count: 1024)
    magicBlock.replaceSubrange(0..<4, with: [0xC0, 0x3B, 0x39, 0x98])
    let image = try CrashImage.kernel(mkfs: [], mount: "data=journal") { root in
      try metadataWorkload(root, rounds: 60)
      try writeFile(root + "/magic", [UInt8](repeating: 1, count: 1024) + magicBlock, sync: true)
      try metadataWorkload(root, rounds: 10, prefix: "late")
    }
    let result = try image.expectReplayMatchesE2fsck()
    let restored = result.blocks.values.contains(magicBlock)
    #expect(restored, "the escaped block should come back with its magic")
    let journal = try image.journal()
    var escaped = magicBlock
    escaped.replaceSubrange(0..<4, with: [0, 0, 0, 0])
    let logBlocks = stride(from: 0, to: journal.count, by: 1024).map { Array(journal[$0..<$0 + 1024]) }
    let logged = (escaped: logBlocks.contains(escaped), verbatim: logBlocks.contains(magicBlock))
    #expect(logged.escaped && !logged.verbatim, "the log should hold the block escaped")
  }

  @Test func checksumV1AndAsyncCommitMatchE2fsck() throws {
    // The kernel refuses async commit with data=ordered.
    for options in ["journal_checksum", "journal_async_commit,data=writeback"] {
      let image = try CrashImage.kernel(mkfs: ["-O", "^metadata_csum"], mount: options) { root in
        try metadataWorkload(root, rounds: 80)
      }
      let features = try image.journalFeatures()
      #expect(features.contains("journal_checksum") && !features.contains("_v"), "\(options): \(features)")
      if options.hasPrefix("journal_async_commit") { #expect(features.contains("journal_async_commit")) }
      try image.expectReplayMatchesE2fsck()
    }
  }

  @Test func fastCommitsAreRefusedNamingThem() throws {
    let image = try CrashImage.kernel(mkfs: ["-O", "fast_commit"], mount: "rw") { root in
      try metadataWorkload(root, rounds: 5)
      sync()
      for index in 0..<5 { try writeFile(root + "/fast\(index)", [UInt8](repeating: 7, count: 100), sync: true) }
    }
    // dumpe2fs 1.47.0 has no name for the jbd2 fast-commit bit (incompatible bit 5).
    #expect(try image.journalFeatures().contains("FEATURE_I5"))
    do {
      let result = try image.replay()
      Issue.record("fast commits were not refused: \(result.transactions) transactions")
    } catch let error as ReelError {
      #expect(error.kind == .incompatible)
      #expect(error.message.contains("fast commit"))
      #expect(error.remedy?.contains("reel serve NAME --at POINT --read-only") == true)
    }
  }

  @Test func cleanJournalReplaysNothing() throws {
    let image = try CrashImage.kernel(mkfs: [], mount: "rw", copyWhileMounted: false) { root in
      try metadataWorkload(root, rounds: 20)
    }
    #expect(image.journalStart(try image.journal()) == 0)
    #expect(try image.replay() == JournalReplayResult())
  }

  // MARK: Formats only e2fsprogs writes now

  @Test func checksumV2AndOtherDebugfsJournalsMatchE2fsck() throws {
    // (mkfs options, journal_open options, the feature dumpe2fs should then show)
    let variants: [([String], String, String)] = [
      ([], "-c -v 2", "journal_checksum_v2"),
      (["-O", "^64bit"], "-c -v 2", "journal_checksum_v2"),
      ([], "-c -v 3", "journal_checksum_v3"),
      (["-O", "^metadata_csum,^64bit"], "", "journal_incompat_revoke"),
    ]
    for (mkfs, open, feature) in variants {
      let image = try CrashImage.debugfs(mkfs: mkfs, open: open)
      #expect(try image.journalFeatures().contains(feature), "\(mkfs) \(open)")
      let result = try image.expectReplayMatchesE2fsck()
      // Written: 5000 (later revoked), 5001, 5002 (starts with the magic), 6000; 7000's
      // transaction never committed.
      #expect(result.blocks[5000] == nil && result.blocks[7000] == nil, "\(mkfs) \(open)")
      #expect(result.blocks[5002].map { Array($0.prefix(4)) } == [0xC0, 0x3B, 0x39, 0x98], "\(mkfs) \(open)")
      #expect(result.blocks[6000] != nil && result.transactions == 3, "\(mkfs) \(open)")
    }
  }

  @Test func checksumV1CommitThatFailsEndsTheLogAsInE2fsck() throws {
    // debugfs sums a revoke-only transaction's revoke block into its v1 checksum; recovery
    // (e2fsck's and the kernel's) sums only descriptor and data blocks, so transaction 2's
    // commit fails and the log ends after transaction 1.
    let image = try CrashImage.debugfs(mkfs: ["-O", "^metadata_csum"], open: "-c")
    let features = try image.journalFeatures()
    #expect(features.contains("journal_checksum") && !features.contains("_v"))
    let result = try image.expectReplayMatchesE2fsck(failedTransaction: 2)
    #expect(result.transactions == 1)
    #expect(result.blocks[5000] != nil && result.blocks[6000] == nil)
  }

  // MARK: Damage

  @Test func damagedCommitBlockEndsTheLogWhereE2fsckDoes() throws {
    let image = try CrashImage.kernel(mkfs: [], mount: "rw") { root in
      try metadataWorkload(root, rounds: 40)
    }
    let journal = try image.journal()
    let commits = image.logBlocks(journal, ofType: 2)
    try #require(commits.count >= 3)
    let victim = commits[commits.count / 2]
    // A byte of the commit block's padding: only its checksum notices.
    try image.damage(journalBlock: victim.block, at: 200)
    let result = try image.expectReplayMatchesE2fsck(failedTransaction: victim.sequence)
    #expect(result.transactions == Int(victim.sequence &- image.journalSequence(journal)))
  }

  @Test func damagedAsyncCommitEndsTheLogWhereE2fsckDoes() throws {
    // With async commit a failing commit checksum does not stop the scan at once, but the
    // log still ends before that transaction.
    let image = try CrashImage.kernel(mkfs: ["-O", "^metadata_csum"], mount: "journal_async_commit,data=writeback") {
      root in try metadataWorkload(root, rounds: 40)
    }
    #expect(try image.journalFeatures().contains("journal_async_commit"))
    let journal = try image.journal()
    let commits = image.logBlocks(journal, ofType: 2, tagSize: 12, tailSize: 0)
    try #require(commits.count >= 3)
    let victim = commits[commits.count / 2]
    // The stored v1 checksum itself.
    try image.damage(journalBlock: victim.block, at: 16)
    let result = try image.expectReplayMatchesE2fsck(failedTransaction: victim.sequence)
    #expect(result.transactions == Int(victim.sequence &- image.journalSequence(journal)))
  }

  @Test func damagedDescriptorBlockIsCorrupt() throws {
    let image = try CrashImage.kernel(mkfs: [], mount: "rw") { root in
      try metadataWorkload(root, rounds: 40)
    }
    let journal = try image.journal()
    let descriptors = image.logBlocks(journal, ofType: 1)
    try #require(descriptors.count >= 3)
    try image.damage(journalBlock: descriptors[descriptors.count / 2].block, at: 13)
    #expect {
      try image.replay()
    } throws: { error in
      let error = error as? ReelError
      return error?.kind == .corrupt && error?.message.contains("checksum") == true
    }
    let e2fsck = try image.runE2fsck()
    // e2fsck's recovery fails too.
    #expect(e2fsck.output.contains("Journal checksum error found"), "e2fsck: \(e2fsck.output)")
  }

  @Test func revokeBlockClaimingTooManyBytesIsCorruptAsForE2fsck() throws {
    let image = try CrashImage.debugfs(mkfs: ["-O", "^metadata_csum,^64bit"], open: "")
    let journal = try image.journal()
    let revokes = image.logBlocks(journal, ofType: 5, tagSize: 8, tailSize: 0)
    try #require(revokes.count == 1)
    // r_count (bytes used) is big-endian at 12: its second byte makes it far past the block.
    try image.damage(journalBlock: revokes[0].block, at: 13)
    #expect {
      try image.replay()
    } throws: { error in
      let error = error as? ReelError
      return error?.kind == .corrupt && error?.message.contains("revoke block") == true
    }
    let e2fsck = try image.runE2fsck()
    // e2fsck's recovery fails too (and replays nothing).
    #expect(e2fsck.output.contains("while recovering journal"), "e2fsck: \(e2fsck.output)")
  }

  @Test func logThatNeverEndsIsCorruptNotAHang() throws {
    // Every other block a descriptor of the expected transaction with one tag, and never a
    // commit: the kernel's scan would go round the log forever.
    let image = try CrashImage.debugfs(mkfs: ["-O", "^metadata_csum,^64bit"], open: "")
    var journal = try image.journal()
    let size = image.blockSize
    let first = Int(bigEndian32(journal, 0x14))
    let last = Int(bigEndian32(journal, 0x10))
    let sequence = image.journalSequence(journal)
    for block in stride(from: first, to: last, by: 2) {
      var descriptor = [UInt8](repeating: 0, count: size)
      descriptor.replaceSubrange(0..<12, with: [0xC0, 0x3B, 0x39, 0x98, 0, 0, 0, 1] + bigEndianBytes(sequence))
      descriptor.replaceSubrange(12..<20, with: [0, 0, 0x13, 0x88, 0, 0, 0, 0x0A])  // block 5000, SAME_UUID|LAST_TAG
      journal.replaceSubrange(block * size..<(block + 1) * size, with: descriptor)
    }
    journal.replaceSubrange(0x1C..<0x20, with: bigEndianBytes(UInt32(first)))
    #expect {
      try JournalReplay.replay(blockSize: size, blockCount: UInt64(journal.count / size)) { block in
        Array(journal[Int(block) * size..<Int(block + 1) * size])
      }
    } throws: { error in
      let error = error as? ReelError
      return error?.kind == .corrupt && error?.message.contains("runs on past") == true
    }
  }

  @Test func damagedSuperblockFieldsAreCorruptNotCrashes() throws {
    let image = try CrashImage.kernel(mkfs: ["-O", "^metadata_csum"], mount: "rw") { root in
      try metadataWorkload(root, rounds: 20)
    }
    let journal = try image.journal()
    let blockCount = UInt64(journal.count / image.blockSize)
    func replay(_ bytes: [UInt8], blockCount: UInt64) throws -> JournalReplayResult {
      try JournalReplay.replay(blockSize: image.blockSize, blockCount: blockCount) { block in
        guard block < blockCount else { throw ReelError(.io, "journal block \(block) read past the end") }
        let start = Int(block) * image.blockSize
        return Array(bytes[start..<start + image.blockSize])
      }
    }
    func setField(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt32) {
      bytes.replaceSubrange(offset..<offset + 4, with: withUnsafeBytes(of: value.bigEndian, Array.init))
    }
    // s_maxlen past the journal inode, s_first of 0 and past the end, s_start outside the log.
    for (offset, value) in [(0x10, UInt32(blockCount + 1)), (0x14, 0), (0x14, 0xFFFF_FFFF), (0x1C, 0xFFFF_FFF0)] {
      var bytes = journal
      setField(&bytes, offset, value)
      #expect(throws: ReelError.self, "field 0x\(String(offset, radix: 16)) = \(value)") {
        try replay(bytes, blockCount: blockCount)
      }
    }
    #expect(throws: ReelError.self) { try replay(journal, blockCount: blockCount - 1) }

    // Random damage in the log: a clear error or a replay, never a crash or a hang.
    var generator = SystemRandomNumberGenerator()
    let start = Int(image.journalStart(journal))
    for _ in 0..<300 {
      var bytes = journal
      for _ in 0..<4 {
        let block = Int.random(in: start..<min(start + 64, Int(blockCount)), using: &generator)
        let offset = block * image.blockSize + Int.random(in: 0..<64, using: &generator)
        bytes[offset] = UInt8.random(in: 0...255, using: &generator)
      }
      do {
        let result = try replay(bytes, blockCount: blockCount)
        for content in result.blocks.values { #expect(content.count == image.blockSize) }
      } catch is ReelError {}
    }
  }
}

// MARK: - Crash images and the e2fsck oracle

/// An ext4 image holding a journal that needs recovery, with the tools to compare Reel's
/// replay of it with e2fsck's.
private struct CrashImage {
  let folder: TemporaryDirectory
  /// The image as a crash left it; never modified by the comparison.
  let path: String
  let blockSize: Int

  /// Formats an image (1 KiB blocks, a 1 MiB journal so the log wraps), mounts it through
  /// a loop device, runs `workload` on the mount and copies the image while it is still
  /// mounted: the copy is what a power cut would have left.
  ///
  /// With `until`, the workload runs again (with the attempt's number) and the image is
  /// copied again until the copy has what the test needs.
  static func kernel(
    mkfs: [String], mount options: String, blockSize: Int = 1024, copyWhileMounted: Bool = true,
    until wanted: ((CrashImage) throws -> Bool)? = nil, workload: (String, Int) throws -> Void
  ) throws -> CrashImage {
    let folder = TemporaryDirectory("reel-jbd2")
    let live = folder.path + "/live.img"
    let path = folder.path + "/crash.img"
    try makeImage(live, mkfs: mkfs, blockSize: blockSize)
    let mountPoint = folder.path + "/mnt"
    try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: false)
    let mount = try LoopMount(image: live, at: mountPoint, options: options)
    defer { mount.undo() }
    let image = CrashImage(folder: folder, path: path, blockSize: blockSize)
    for attempt in 0..<40 {
      try workload(mountPoint, attempt)
      if !copyWhileMounted { mount.undo() }
      try? FileManager.default.removeItem(atPath: path)
      try FileManager.default.copyItem(atPath: live, toPath: path)
      if !copyWhileMounted { return image }
      // Without committed transactions left in the log, the test would test nothing.
      if image.journalStart(try image.journal()) != 0, try wanted?(image) ?? true { return image }
    }
    throw SupportError("40 attempts left no copy with a journal to replay (and what the test needs)")
  }

  static func kernel(
    mkfs: [String], mount options: String, blockSize: Int = 1024, copyWhileMounted: Bool = true,
    workload: (String) throws -> Void
  ) throws -> CrashImage {
    try kernel(mkfs: mkfs, mount: options, blockSize: blockSize, copyWhileMounted: copyWhileMounted) { root, _ in
      try workload(root)
    }
  }

  /// An unmounted image whose journal e2fsprogs' debugfs wrote: block 5000, then 5001 and
  /// 5002 (escaped: it starts with the jbd2 magic), a transaction revoking 5000, then 6000,
  /// and last a transaction for 7000 that is never committed.
  static func debugfs(mkfs: [String], open: String) throws -> CrashImage {
    let folder = TemporaryDirectory("reel-jbd2")
    let path = folder.path + "/crash.img"
    try makeImage(path, mkfs: mkfs, blockSize: 1024)
    var data = (0..<3072).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
    data.replaceSubrange(2048..<2052, with: [0xC0, 0x3B, 0x39, 0x98])
    let dataPath = folder.path + "/data"
    try Data(data).write(to: URL(fileURLWithPath: dataPath))
    let commands = [
      "jo \(open)", "jw -b 5000,5001,5002 \(dataPath)", "jw -r 5000", "jw -b 6000 \(dataPath)",
      "jw -b 7000 -c \(dataPath)", "jc",
    ]
    let script = folder.path + "/commands"
    try (commands.joined(separator: "\n") + "\n").write(toFile: script, atomically: true, encoding: .utf8)
    let result = try runChecked(try tool("debugfs"), ["-w", "-f", script, path])
    #expect(!result.output.contains("error"), "debugfs: \(result.output)")
    let image = CrashImage(folder: folder, path: path, blockSize: 1024)
    try #require(image.journalStart(try image.journal()) != 0, "debugfs left nothing to replay")
    return image
  }

  /// A 16 MiB image whose journal is the smallest mkfs allows (1024 blocks), so the log wraps.
  private static func makeImage(_ path: String, mkfs: [String], blockSize: Int) throws {
    try runChecked(try tool("truncate"), ["-s", "16M", path])
    let journalMiB = blockSize / 1024
    try runChecked(
      try tool("mkfs.ext4"), ["-q", "-F", "-b", "\(blockSize)", "-J", "size=\(journalMiB)"] + mkfs + [path])
  }

  /// The journal inode's content, as libext2fs reads it from the image.
  func journal() throws -> [UInt8] {
    let dump = folder.path + "/journal-\(UUID().uuidString)"
    let result = try readOnlyDebugfs("dump <8> \(dump)")
    defer { try? FileManager.default.removeItem(atPath: dump) }
    guard FileManager.default.fileExists(atPath: dump) else {
      throw SupportError("debugfs did not dump the journal inode of \(path): \(result.output)")
    }
    return [UInt8](try Data(contentsOf: URL(fileURLWithPath: dump)))
  }

  func journalStart(_ journal: [UInt8]) -> UInt32 { bigEndian32(journal, 0x1C) }
  func journalSequence(_ journal: [UInt8]) -> UInt32 { bigEndian32(journal, 0x18) }

  func journalFeatures() throws -> String {
    let output = try runChecked(try tool("dumpe2fs"), ["-h", path]).stdout
    return output.split(separator: "\n").first { $0.hasPrefix("Journal features:") }.map(String.init) ?? ""
  }

  func logdump() throws -> String { try readOnlyDebugfs("logdump").stdout }

  /// Whether the log as debugfs walks it goes past the journal's end and back to its start.
  func logWrapped() throws -> Bool {
    let positions = try logdump().split(separator: "\n").compactMap { line -> Int? in
      guard line.hasPrefix("Found expected sequence"), let range = line.range(of: " at block ") else { return nil }
      return Int(line[range.upperBound...])
    }
    return zip(positions, positions.dropFirst()).contains { $0.1 < $0.0 }
  }

  /// Log blocks of one type (1 descriptor, 2 commit, 5 revoke) from s_start to the end of
  /// the log, as (journal block, transaction); by default for checksum v3 tags.
  func logBlocks(
    _ journal: [UInt8], ofType type: UInt32, tagSize: Int = 16, tailSize: Int = 4
  ) -> [(block: Int, sequence: UInt32)] {
    let first = Int(bigEndian32(journal, 0x14))
    let last = Int(bigEndian32(journal, 0x10))
    var sequence = journalSequence(journal)
    var block = Int(journalStart(journal))
    var found: [(Int, UInt32)] = []
    for _ in 0..<(last - first) {
      let offset = block * blockSize
      guard bigEndian32(journal, offset) == 0xC03B_3998, bigEndian32(journal, offset + 8) == sequence else { break }
      let kind = bigEndian32(journal, offset + 4)
      if kind == type { found.append((block, sequence)) }
      if kind == 2 { sequence &+= 1 }
      block += 1
      if kind == 1 {
        // Skip the data blocks this descriptor's tags describe.
        var tag = offset + 12
        while tag + tagSize <= offset + blockSize - tailSize {
          let flags = bigEndian32(journal, tag + 4) & 0xFFFF
          block += 1
          tag += flags & 2 == 0 ? tagSize + 16 : tagSize
          if flags & 8 != 0 { break }
        }
      }
      if block >= last { block = first + (block - last) }
    }
    return found
  }

  /// Flips the bits of one byte of a journal block, in the image itself.
  func damage(journalBlock: Int, at offset: Int) throws {
    let physical = try physicalBlock(ofJournalBlock: journalBlock)
    let handle = try FileHandle(forUpdating: URL(fileURLWithPath: path))
    defer { try? handle.close() }
    try handle.seek(toOffset: UInt64(physical * blockSize + offset))
    let byte = try #require(try handle.read(upToCount: 1)?.first)
    try handle.seek(toOffset: UInt64(physical * blockSize + offset))
    try handle.write(contentsOf: [~byte])
  }

  func imageSize() throws -> UInt64 {
    (try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.uint64Value ?? 0
  }

  /// Reel's replay of the image's journal.
  func replay() throws -> JournalReplayResult {
    let journal = try journal()
    let blockSize = blockSize
    return try JournalReplay.replay(
      blockSize: blockSize, blockCount: UInt64(journal.count / blockSize),
      fileSystemBlockCount: try imageSize() / UInt64(blockSize)
    ) { block in
      let start = Int(block) * blockSize
      return Array(journal[start..<start + blockSize])
    }
  }

  /// e2fsck's journal recovery alone, on a copy; the copy's path and e2fsck's output.
  func runE2fsck() throws -> CommandResult {
    let copy = folder.path + "/e2fsck.img"
    try? FileManager.default.removeItem(atPath: copy)
    try FileManager.default.copyItem(atPath: path, toPath: copy)
    return try run(try tool("e2fsck"), ["-y", "-E", "journal_only", copy])
  }

  /// Applies Reel's replay to the crash image and compares every block with what e2fsck's
  /// recovery made of it. The only bytes left out are the ones recovery itself rewrites
  /// as bookkeeping, checked to hold their recovered values.
  /// When e2fsck finds transaction `failedTransaction`'s commit corrupt, it also records
  /// the error in the ext4 superblock's state; that bit is then left out too.
  /// `JournalReplay.locate` is held to the same answer: its locations, read, give `replay`'s
  /// contents.
  @discardableResult
  func expectReplayMatchesE2fsck(failedTransaction: UInt32? = nil) throws -> JournalReplayResult {
    let result = try replay()
    let journal = try journal()
    let map = try JournalReplay.locate(blockSize: blockSize, blockCount: UInt64(journal.count / blockSize)) { block in
      Array(journal[Int(block) * blockSize..<Int(block + 1) * blockSize])
    }
    #expect(map.transactions == result.transactions && Set(map.locations.keys) == Set(result.blocks.keys))
    let located = map.locations.allSatisfy { block, location in
      let start = Int(location.journalBlock) * blockSize
      return location.content(fromLogged: Array(journal[start..<start + blockSize])) == result.blocks[block]
    }
    #expect(located, "the located blocks should read as the replayed contents")
    let e2fsck = try runE2fsck()
    #expect(e2fsck.succeeded, "e2fsck: \(e2fsck.output)")
    if let failedTransaction {
      #expect(e2fsck.output.contains("Journal transaction \(failedTransaction) was corrupt"), "\(e2fsck.output)")
    } else {
      #expect(!e2fsck.output.contains("corrupt"), "\(e2fsck.output)")
    }
    let crash = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    var expected = [UInt8](try Data(contentsOf: URL(fileURLWithPath: folder.path + "/e2fsck.img")))
    try #require(expected.count == crash.count)
    var mine = crash
    for (block, content) in result.blocks {
      try #require(content.count == blockSize && Int(block) < crash.count / blockSize, "block \(block)")
      mine.replaceSubrange(Int(block) * blockSize..<Int(block + 1) * blockSize, with: content)
    }
    let journalSuperblock = try physicalBlock(ofJournalBlock: 0) * blockSize
    // e2fsck's recovery marks the journal empty (s_start 0) and clears needs_recovery.
    #expect(bigEndian32(expected, journalSuperblock + 0x1C) == 0)
    #expect(expected[1024 + 0x60] & 0x04 == 0)
    let failed = failedTransaction != nil
    if failed { #expect(expected[1024 + 0x3A] & 0x02 != 0, "e2fsck should have marked the file system in error") }
    mask(&mine, journalSuperblock: journalSuperblock, failedCommit: failed)
    mask(&expected, journalSuperblock: journalSuperblock, failedCommit: failed)
    var maskedCrash = crash
    mask(&maskedCrash, journalSuperblock: journalSuperblock, failedCommit: failed)
    let differing = differingBlocks(mine, expected)
    let changedByE2fsck = differingBlocks(maskedCrash, expected).count
    #expect(differing.isEmpty, "blocks where Reel's replay differs from e2fsck's: \(differing.prefix(20))")
    #expect(changedByE2fsck > 0, "e2fsck's recovery changed no block: the image tests nothing")
    #expect(!result.blocks.isEmpty && result.transactions > 0)
    return result
  }

  /// Clears the bookkeeping recovery rewrites and nothing else: in the ext4 superblock
  /// s_wtime, the needs_recovery bit, s_kbytes_written and the checksum over them; in the
  /// jbd2 superblock s_sequence, s_start and its checksum.
  private func mask(_ image: inout [UInt8], journalSuperblock: Int, failedCommit: Bool) {
    let superblock = 1024
    if failedCommit { image[superblock + 0x3A] &= ~0x02 }
    for range in [0x30..<0x34, 0x178..<0x180, 0x3FC..<0x400] {
      image.replaceSubrange(
        superblock + range.lowerBound..<superblock + range.upperBound, with: repeatElement(0, count: range.count))
    }
    image[superblock + 0x60] &= ~0x04
    for range in [0x18..<0x20, 0xFC..<0x100] {
      image.replaceSubrange(
        journalSuperblock + range.lowerBound..<journalSuperblock + range.upperBound,
        with: repeatElement(0, count: range.count))
    }
  }

  private func differingBlocks(_ one: [UInt8], _ other: [UInt8]) -> [Int] {
    one.withUnsafeBytes { one in
      other.withUnsafeBytes { other in
        (0..<one.count / blockSize).filter { block in
          memcmp(one.baseAddress! + block * blockSize, other.baseAddress! + block * blockSize, blockSize) != 0
        }
      }
    }
  }

  /// One debugfs request on the image, in catastrophic mode (-c) and without checksum
  /// checks (-n): a crash copy's bitmaps and group descriptors may be stale, and only the
  /// journal inode is needed.
  private func readOnlyDebugfs(_ request: String) throws -> CommandResult {
    try runChecked(try tool("debugfs"), ["-c", "-n", "-R", request, path])
  }

  private func physicalBlock(ofJournalBlock block: Int) throws -> Int {
    let output = try readOnlyDebugfs("bmap <8> \(block)").stdout
    return try #require(Int(output.trimmingCharacters(in: .whitespacesAndNewlines)))
  }
}

private func bigEndianBytes(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.bigEndian, Array.init) }

private func bigEndian32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
  bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
}

/// A loop device and a mount of it that this test made, undone exactly once.
private final class LoopMount {
  let device: String
  let mountPoint: String
  private var mounted = false
  private var attached = true

  init(image: String, at mountPoint: String, options: String) throws {
    device = try runChecked(try tool("losetup"), ["--find", "--show", image]).stdout
      .trimmingCharacters(in: .whitespacesAndNewlines)
    self.mountPoint = mountPoint
    do {
      try runChecked(try tool("mount"), ["-t", "ext4", "-o", options, device, mountPoint])
      mounted = true
    } catch {
      undo()
      throw error
    }
  }

  func undo() {
    if mounted, (try? run("/usr/bin/umount", [mountPoint]))?.succeeded == true { mounted = false }
    if !mounted && attached, (try? run("/usr/sbin/losetup", ["-d", device]))?.succeeded == true { attached = false }
  }

  deinit { undo() }
}

/// Files created, fsynced, deleted and renamed through the kernel, each step its own
/// small committed transaction (fsync commits the log without checkpointing it, so the
/// copy holds committed transactions not yet written home).
private func metadataWorkload(_ root: String, rounds: Int, prefix: String = "f") throws {
  let folder = root + "/" + prefix
  if !FileManager.default.fileExists(atPath: folder) {
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
  }
  for round in 0..<rounds {
    let bytes = (0..<(1000 + round * 37 % 3000)).map { UInt8(truncatingIfNeeded: $0 &+ round) }
    try writeFile("\(folder)/\(round)", bytes, sync: true)
    if round % 3 == 2 && FileManager.default.fileExists(atPath: "\(folder)/\(round - 1)") {
      try FileManager.default.removeItem(atPath: "\(folder)/\(round - 1)")
      try syncPath(folder)
    }
    if round % 5 == 4 {
      try FileManager.default.moveItem(atPath: "\(folder)/\(round)", toPath: "\(folder)/renamed-\(round)")
      try syncPath(folder)
    }
    if round % 20 == 19 {
      try FileManager.default.createDirectory(atPath: "\(folder)/dir-\(round)", withIntermediateDirectories: false)
      for index in 0..<8 { try writeFile("\(folder)/dir-\(round)/\(index)", [UInt8(index)], sync: false) }
      try syncPath("\(folder)/dir-\(round)")
    }
    if round % 40 == 39 {
      // A whole directory of journaled blocks freed: revoke records.
      try FileManager.default.removeItem(atPath: "\(folder)/dir-\(round - 20)")
      try syncPath(folder)
    }
  }
}

/// A little more logged work for another attempt: a directory of files made, and the
/// previous attempt's deleted (its directory blocks were logged, so the kernel revokes them).
private func churn(_ root: String, _ attempt: Int) throws {
  let folder = "\(root)/churn-\(attempt)"
  try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
  for index in 0..<40 { try writeFile("\(folder)/file-with-a-longer-name-\(index)", [UInt8(index)], sync: false) }
  try syncPath(folder)
  try syncPath(root)
  let previous = "\(root)/churn-\(attempt - 1)"
  if FileManager.default.fileExists(atPath: previous) {
    try FileManager.default.removeItem(atPath: previous)
    try syncPath(root)
  }
  for index in 0..<10 { try writeFile("\(folder)/synced-\(index)", [UInt8](repeating: 9, count: 2000), sync: true) }
}

private func writeFile(_ path: String, _ bytes: [UInt8], sync: Bool) throws {
  let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
  guard descriptor >= 0 else { throw SupportError("open \(path): \(String(cString: strerror(errno)))") }
  defer { close(descriptor) }
  let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
  guard written == bytes.count else { throw SupportError("write \(path) wrote \(written)") }
  if sync { guard fsync(descriptor) == 0 else { throw SupportError("fsync \(path)") } }
}

private func syncPath(_ path: String) throws {
  let descriptor = open(path, O_RDONLY)
  guard descriptor >= 0 else { throw SupportError("open \(path): \(String(cString: strerror(errno)))") }
  defer { close(descriptor) }
  guard fsync(descriptor) == 0 else { throw SupportError("fsync \(path)") }
}
