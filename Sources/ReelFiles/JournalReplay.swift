import ReelCore

/// What replaying an ext3/ext4 journal (jbd2) would write home: for each file-system block
/// a committed transaction wrote and that was not revoked after, its newest content.
package struct JournalReplayResult: Sendable, Equatable {
  package var blocks: [UInt64: [UInt8]]
  package var transactions: Int

  package init(blocks: [UInt64: [UInt8]] = [:], transactions: Int = 0) {
    self.blocks = blocks
    self.transactions = transactions
  }
}

/// Where the content recovery writes for one file-system block lies in the journal.
package struct JournalBlockLocation: Sendable, Hashable {
  /// The journal block holding the logged copy.
  package var journalBlock: UInt64
  /// The logged copy had its first four bytes (the jbd2 magic) zeroed so it could not be
  /// mistaken for a log block; recovery puts them back.
  package var escaped: Bool

  package init(journalBlock: UInt64, escaped: Bool) {
    self.journalBlock = journalBlock
    self.escaped = escaped
  }

  /// The content recovery writes home, from the logged copy read at `journalBlock`.
  package func content(fromLogged logged: [UInt8]) -> [UInt8] {
    guard escaped, logged.count >= 4 else { return logged }
    var content = logged
    content.replaceSubrange(0..<4, with: bigEndian(JournalSuperblock.magic))
    return content
  }
}

/// What replaying a journal would write home, as places in the journal rather than
/// contents: for a reader that fetches blocks when asked instead of holding them all.
package struct JournalReplayMap: Sendable, Equatable {
  package var locations: [UInt64: JournalBlockLocation]
  package var transactions: Int

  package init(locations: [UInt64: JournalBlockLocation] = [:], transactions: Int = 0) {
    self.locations = locations
    self.transactions = transactions
  }
}

package enum JournalReplay {
  /// Reads the journal through `readBlock` (journal block N, N = 0 is the journal
  /// superblock; `blockCount` blocks of `blockSize` bytes) and returns what recovery would
  /// write, as e2fsck and the kernel do; never writes anything.
  ///
  /// Recovery is the kernel's three passes over the log: find where it ends, gather the
  /// revoke records, then replay. A damaged journal throws `.corrupt` where the kernel's
  /// recovery fails, and ends the log where the kernel's ends it. When
  /// `fileSystemBlockCount` is given, a journal that writes beyond it is `.corrupt`.
  package static func replay(
    blockSize: Int, blockCount: UInt64, fileSystemBlockCount: UInt64? = nil,
    readBlock: (UInt64) throws -> [UInt8]
  ) throws -> JournalReplayResult {
    guard blockSize >= 1024, blockSize <= 65536, blockSize & (blockSize - 1) == 0 else {
      throw ReelError(.corrupt, "the ext4 block size \(blockSize) is not a power of two from 1024 to 65536")
    }
    guard blockCount > 0 else { throw ReelError(.corrupt, "the ext4 journal inode holds no blocks") }
    let walk = try recover(
      blockSize: blockSize, blockCount: blockCount, fileSystemBlockCount: fileSystemBlockCount, keepContent: true,
      readBlock: readBlock)
    return JournalReplayResult(blocks: walk.written, transactions: walk.transactions)
  }

  /// `replay`, answering where in the journal each block's content lies instead of the
  /// contents (read them with `JournalBlockLocation.content(fromLogged:)`). The same
  /// checks run; with checksum v2/v3 every replayed block is still read once to check it.
  package static func locate(
    blockSize: Int, blockCount: UInt64, fileSystemBlockCount: UInt64? = nil,
    readBlock: (UInt64) throws -> [UInt8]
  ) throws -> JournalReplayMap {
    guard blockSize >= 1024, blockSize <= 65536, blockSize & (blockSize - 1) == 0 else {
      throw ReelError(.corrupt, "the ext4 block size \(blockSize) is not a power of two from 1024 to 65536")
    }
    guard blockCount > 0 else { throw ReelError(.corrupt, "the ext4 journal inode holds no blocks") }
    let walk = try recover(
      blockSize: blockSize, blockCount: blockCount, fileSystemBlockCount: fileSystemBlockCount, keepContent: false,
      readBlock: readBlock)
    return JournalReplayMap(locations: walk.located, transactions: walk.transactions)
  }

  /// The three passes' findings (none for a clean journal); the walk itself holds the
  /// caller's closure, so it must not outlive this call.
  private static func recover(
    blockSize: Int, blockCount: UInt64, fileSystemBlockCount: UInt64?, keepContent: Bool,
    readBlock: (UInt64) throws -> [UInt8]
  ) throws -> (written: [UInt64: [UInt8]], located: [UInt64: JournalBlockLocation], transactions: Int) {
    try withoutActuallyEscaping(readBlock) { readBlock in
      let log = JournalLog(blockSize: blockSize, readBlock: readBlock)
      let superblock = try JournalSuperblock(try log.read(0), blockSize: blockSize, blockCount: blockCount)
      // s_start is zero exactly when the journal was emptied at a clean unmount.
      guard superblock.start != 0 else { return ([:], [:], 0) }
      var walk = JournalWalk(
        superblock: superblock, log: log, fileSystemBlockCount: fileSystemBlockCount, keepContent: keepContent)
      let end = try walk.pass(.scan, end: nil)
      _ = try walk.pass(.revoke, end: end)
      try walk.refuseFastCommits(expecting: end)
      _ = try walk.pass(.replay, end: end)
      return (walk.written, walk.located, Int(end &- superblock.sequence))
    }
  }
}

/// Reads journal blocks through the caller's closure, refusing any of the wrong size.
/// Log blocks (descriptor, commit, revoke: they start with the jbd2 magic; a logged copy
/// that does is escaped) are kept, up to `keptLimit` bytes, so the passes after the scan
/// read nothing again: reading the log is what opening a point costs.
struct JournalLog {
  let blockSize: Int
  let readBlock: (UInt64) throws -> [UInt8]
  private let kept = Kept()
  static let keptLimit = 32 << 20

  private final class Kept {
    var blocks: [UInt32: [UInt8]] = [:]
    var bytes = 0
  }

  init(blockSize: Int, readBlock: @escaping (UInt64) throws -> [UInt8]) {
    self.blockSize = blockSize
    self.readBlock = readBlock
  }

  func read(_ block: UInt32) throws -> [UInt8] {
    if let bytes = kept.blocks[block] { return bytes }
    let bytes = try readBlock(UInt64(block))
    guard bytes.count == blockSize else {
      throw ReelError(.io, "journal block \(block) read as \(bytes.count) bytes, not \(blockSize)")
    }
    if bytes.starts(with: bigEndian(JournalSuperblock.magic)), kept.bytes + blockSize <= Self.keptLimit {
      kept.blocks[block] = bytes
      kept.bytes += blockSize
    }
    return bytes
  }
}

/// One walk of the log per pass, carrying what a pass learns to the next (the kernel's
/// do_one_pass and recovery_info).
struct JournalWalk {
  enum Pass { case scan, revoke, replay }

  let superblock: JournalSuperblock
  let log: JournalLog
  let fileSystemBlockCount: UInt64?
  /// Whether the replay pass keeps the blocks' contents, or only where they lie.
  let keepContent: Bool
  /// Per file-system block, the newest transaction that revoked it.
  private(set) var revoked: [UInt64: UInt32] = [:]
  private(set) var written: [UInt64: [UInt8]] = [:]
  private(set) var located: [UInt64: JournalBlockLocation] = [:]
  /// Checksum v2/v3 tag sums of logged copies, computed by the scan while their blocks
  /// are at hand (by journal block: the transaction and the sum), so that the replay pass
  /// need not read the copies again when only their places are wanted.
  private var tagSums: [UInt32: (transaction: UInt32, sum: UInt32)] = [:]
  /// Where the current pass is: the next log block, the transaction it expects, and how
  /// many blocks it has walked (a log is never longer than the log area; a damaged one
  /// could otherwise send the walk round forever).
  private var position: UInt32 = 0
  private var transaction: UInt32 = 0
  private var walked: UInt64 = 0

  init(superblock: JournalSuperblock, log: JournalLog, fileSystemBlockCount: UInt64?, keepContent: Bool) {
    self.superblock = superblock
    self.log = log
    self.fileSystemBlockCount = fileSystemBlockCount
    self.keepContent = keepContent
  }

  private static let flagEscape: UInt16 = 1
  private static let flagSameUUID: UInt16 = 2
  private static let flagLastTag: UInt16 = 8

  /// Walks the log from s_start for one pass; returns the transaction the log ends
  /// before (for the scan, where it found the end; for the others, `end`).
  mutating func pass(_ pass: Pass, end known: UInt32?) throws -> UInt32 {
    var end = known
    transaction = superblock.sequence
    position = superblock.start
    walked = 0
    var checksumV1: UInt32 = 0xFFFF_FFFF
    var checkCommitTime = false
    var lastCommitTime: UInt64 = 0

    walking: while true {
      if pass != .scan, let end, tidAtOrAfter(transaction, end) { break }
      let (block, at) = try next()
      let header = BigEndianFields(block)
      guard header.uint32(at: 0) == JournalSuperblock.magic, header.uint32(at: 8) == transaction else { break }

      switch JournalSuperblock.BlockType(rawValue: header.uint32(at: 4)) {
      case .descriptor:
        if superblock.hasChecksumV2OrV3 && !tailChecksumMatches(block) {
          // The scan may meet a stale block left by lazy journal initialisation; it
          // decides at the commit block. A later pass meeting one is damage.
          guard pass == .scan else {
            throw ReelError(
              .corrupt,
              "the ext4 journal's descriptor block \(at) (transaction \(transaction)) fails its checksum")
          }
          checkCommitTime = true
        }
        let tags = tags(of: block)
        if pass == .replay {
          try replay(tags)
          continue
        }
        if pass == .scan && superblock.checksumV1 && !checkCommitTime && end == nil {
          checksumV1 = JournalChecksum.crc32BigEndian(checksumV1, block)
          for _ in tags { checksumV1 = JournalChecksum.crc32BigEndian(checksumV1, try next().block) }
          continue
        }
        if pass == .scan && superblock.hasChecksumV2OrV3 && !keepContent {
          for _ in tags {
            let at = position
            try skip(1)
            // A copy that cannot be read now is read again (and fails) only if replayed.
            if let logged = try? log.read(at) { tagSums[at] = (transaction, tagSum(logged, of: transaction)) }
          }
          continue
        }
        try skip(tags.count)

      case .commit:
        let commitTime = header.uint64(at: 48)
        if checkCommitTime {
          // A bad descriptor or revoke block followed by a commit no older than the last
          // one is damage in this journal; an older commit means stale blocks: the end.
          if commitTime >= lastCommitTime {
            throw ReelError(
              .corrupt,
              "the ext4 journal's transaction \(transaction) has a descriptor or revoke block that fails its checksum")
          }
          break walking
        }
        var failed = false
        if pass == .scan && superblock.checksumV1 {
          // Checksum v1 is only checked up to the first failure; after it the scan stops
          // at the next commit block.
          if end != nil { continue }
          let stored = header.uint32(at: 16)
          let type = block[12]
          let size = block[13]
          let matches = checksumV1 == stored && type == 1 && size == 4
          let unused = type == 0 && size == 0 && stored == 0
          if matches || unused { checksumV1 = 0xFFFF_FFFF } else { failed = true }
        }
        if pass == .scan && !failed && superblock.hasChecksumV2OrV3 && !commitChecksumMatches(block) {
          failed = true
        }
        if failed {
          if commitTime < lastCommitTime { break walking }
          // The transaction whose commit fails is not replayed, nor anything after it;
          // with async commit the scan still walks on (and may move the end further).
          end = transaction
          if !superblock.features.contains(.asyncCommit) { continue }
        }
        if pass == .scan { lastCommitTime = commitTime }
        transaction &+= 1

      case .revoke:
        if pass == .scan && superblock.hasChecksumV2OrV3 && !tailChecksumMatches(block) {
          checkCommitTime = true
        }
        if pass == .revoke { try collectRevokes(block, at: at, of: transaction) }

      case .superblockV1, .superblockV2, nil:
        break walking
      }
    }

    if pass == .scan { return end ?? transaction }
    if let end, end != transaction {
      throw ReelError(
        .corrupt, "the ext4 journal's log read differently between passes (ended at \(transaction), then \(end))")
    }
    return transaction
  }

  /// Reads the block at the current position and moves past it.
  private mutating func next() throws -> (block: [UInt8], at: UInt32) {
    let at = position
    try skip(1)
    return (try log.read(at), at)
  }

  /// Moves `count` blocks on without reading them.
  private mutating func skip(_ count: Int) throws {
    walked += UInt64(count)
    guard walked <= UInt64(superblock.last - superblock.first) + 1 else {
      throw ReelError(
        .corrupt, "the ext4 journal's log runs on past its whole log area (transaction \(transaction))")
    }
    position = advance(position, by: UInt64(count))
  }

  /// The next log position `count` blocks on, wrapping from the end of the log area back
  /// to its first block.
  private func advance(_ position: UInt32, by count: UInt64) -> UInt32 {
    let first = UInt64(superblock.first)
    let last = UInt64(superblock.last)
    var next = UInt64(position) + count
    if next >= last { next = first + (next - last) % (last - first) }
    return UInt32(next)
  }

  private struct Tag {
    let block: UInt64
    let flags: UInt16
    let checksum: UInt32
  }

  /// The tags of a descriptor block, up to the one flagged last or the end of room.
  private func tags(of block: [UInt8]) -> [Tag] {
    let fields = BigEndianFields(block)
    let size = superblock.tagSize
    let limit = superblock.blockSize - superblock.tailSize
    let wide = superblock.features.contains(.blockNumbers64)
    let v3 = superblock.features.contains(.checksumV3)
    var tags: [Tag] = []
    var offset = 12
    while offset + size <= limit {
      let flags = fields.uint16(at: offset + 6)
      var number = UInt64(fields.uint32(at: offset))
      if wide { number |= UInt64(fields.uint32(at: offset + 8)) << 32 }
      let checksum = v3 ? fields.uint32(at: offset + 12) : UInt32(fields.uint16(at: offset + 4))
      tags.append(Tag(block: number, flags: flags, checksum: checksum))
      offset += size
      if flags & Self.flagSameUUID == 0 { offset += 16 }
      if flags & Self.flagLastTag != 0 { break }
    }
    return tags
  }

  private mutating func replay(_ tags: [Tag]) throws {
    for tag in tags {
      if let revokedBy = revoked[tag.block], tidAtOrAfter(revokedBy, transaction) {
        try skip(1)
        continue
      }
      if let limit = fileSystemBlockCount, tag.block >= limit {
        throw ReelError(
          .corrupt,
          "the ext4 journal's transaction \(transaction) writes block \(tag.block), past the file system's \(limit)")
      }
      let location = JournalBlockLocation(journalBlock: UInt64(position), escaped: tag.flags & Self.flagEscape != 0)
      located[tag.block] = location
      // Without contents to keep or checksums to check, the logged copy need not be read.
      guard keepContent || superblock.hasChecksumV2OrV3 else {
        try skip(1)
        continue
      }
      let at: UInt32
      let crc: UInt32
      var logged: [UInt8] = []
      if !keepContent, let summed = tagSums[position], summed.transaction == transaction {
        at = position
        try skip(1)
        crc = summed.sum
      } else {
        (logged, at) = try next()
        crc = tagSum(logged, of: transaction)
      }
      if superblock.hasChecksumV2OrV3 {
        let expected = superblock.features.contains(.checksumV3) ? crc : crc & 0xFFFF
        guard tag.checksum == expected else {
          throw ReelError(
            .corrupt,
            "the ext4 journal's copy of block \(tag.block) in journal block \(at) (transaction \(transaction)) "
              + "fails its checksum")
        }
      }
      if keepContent { written[tag.block] = location.content(fromLogged: logged) }
    }
  }

  /// The checksum v2/v3 sum of a logged copy in `transaction` (v2 keeps its low 16 bits).
  private func tagSum(_ logged: [UInt8], of transaction: UInt32) -> UInt32 {
    JournalChecksum.crc32c(JournalChecksum.crc32c(superblock.checksumSeed, bigEndian(transaction)), logged)
  }

  private mutating func collectRevokes(_ block: [UInt8], at: UInt32, of transaction: UInt32) throws {
    let fields = BigEndianFields(block)
    let used = fields.uint32(at: 12)
    guard used <= superblock.blockSize - superblock.tailSize else {
      throw ReelError(
        .corrupt, "the ext4 journal's revoke block \(at) (transaction \(transaction)) claims \(used) bytes")
    }
    let wide = superblock.features.contains(.blockNumbers64)
    let recordSize = wide ? 8 : 4
    var offset = 16
    while offset + recordSize <= Int(used) {
      let number = wide ? fields.uint64(at: offset) : UInt64(fields.uint32(at: offset))
      offset += recordSize
      if let newest = revoked[number], !tidAfter(transaction, newest) { continue }
      revoked[number] = transaction
    }
  }

  private func tailChecksumMatches(_ block: [UInt8]) -> Bool {
    let tail = block.count - 4
    let computed = JournalChecksum.crc32c(JournalChecksum.crc32c(superblock.checksumSeed, block[0..<tail]), zeros)
    return BigEndianFields(block).uint32(at: tail) == computed
  }

  private func commitChecksumMatches(_ block: [UInt8]) -> Bool {
    var crc = JournalChecksum.crc32c(superblock.checksumSeed, block[0..<16])
    crc = JournalChecksum.crc32c(crc, zeros)
    crc = JournalChecksum.crc32c(crc, block[20...])
    return BigEndianFields(block).uint32(at: 16) == crc
  }

  /// Fast commits are replayed by ext4 itself (inode and extent edits, not blocks); Reel
  /// does not redo them, so a journal whose fast-commit area holds this log's next
  /// commit is refused rather than shown without it.
  func refuseFastCommits(expecting end: UInt32) throws {
    guard let first = superblock.fastCommitFirst else { return }
    let block = try log.read(first)
    let tag = UInt16(block[0]) | UInt16(block[1]) << 8
    let headTag: UInt16 = 9
    let tid = UInt32(block[8]) | UInt32(block[9]) << 8 | UInt32(block[10]) << 16 | UInt32(block[11]) << 24
    guard tag == headTag && tid == end else { return }
    throw ReelError(
      .incompatible,
      "the ext4 journal holds fast commits (from transaction \(end)), which Reel cannot replay",
      remedy: JournalSuperblock.kernelRemedy)
  }
}

/// Stands in for a checksum field while the checksum over its block is computed.
private let zeros: [UInt8] = [0, 0, 0, 0]

private func bigEndian(_ value: UInt32) -> [UInt8] {
  [UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)]
}

/// Transaction IDs wrap at 2^32; compared the kernel's way, by the sign of the difference.
private func tidAfter(_ x: UInt32, _ y: UInt32) -> Bool { Int32(bitPattern: x &- y) > 0 }
private func tidAtOrAfter(_ x: UInt32, _ y: UInt32) -> Bool { Int32(bitPattern: x &- y) >= 0 }
