import ReelCore

/// The jbd2 superblock (journal block 0, big-endian), checked the way e2fsck and the
/// kernel check it before recovery; every field later code relies on is validated here.
struct JournalSuperblock {
  static let magic: UInt32 = 0xC03B_3998

  enum BlockType: UInt32 {
    case descriptor = 1
    case commit = 2
    case superblockV1 = 3
    case superblockV2 = 4
    case revoke = 5
  }

  /// Incompatible feature bits (s_feature_incompat).
  struct Features: OptionSet {
    let rawValue: UInt32
    static let revoke = Features(rawValue: 0x01)
    static let blockNumbers64 = Features(rawValue: 0x02)
    static let asyncCommit = Features(rawValue: 0x04)
    static let checksumV2 = Features(rawValue: 0x08)
    static let checksumV3 = Features(rawValue: 0x10)
    static let fastCommit = Features(rawValue: 0x20)
    static let known: Features = [.revoke, .blockNumbers64, .asyncCommit, .checksumV2, .checksumV3, .fastCommit]
  }

  /// s_feature_compat bit of the old whole-transaction CRC32 (checksum v1).
  static let compatChecksumV1: UInt32 = 0x01
  static let crc32cChecksumType: UInt8 = 4
  /// The kernel's JBD2_MIN_JOURNAL_BLOCKS: the log left after the fast-commit area.
  static let minimumLogBlocks: UInt32 = 1024
  static let defaultFastCommitBlocks: UInt32 = 256

  let blockSize: Int
  /// First journal block after the end of the journal (s_maxlen).
  let length: UInt32
  /// First block of the log area (s_first).
  let first: UInt32
  /// First block after the log area: `length`, or where the fast-commit area starts.
  let last: UInt32
  let sequence: UInt32
  /// Where the log starts; 0 when the journal is clean.
  let start: UInt32
  let features: Features
  let checksumV1: Bool
  /// crc32c of the journal UUID, the seed of every v2/v3 checksum.
  let checksumSeed: UInt32

  var hasChecksumV2OrV3: Bool { features.contains(.checksumV2) || features.contains(.checksumV3) }

  /// Bytes of one descriptor tag before the optional 16-byte UUID that follows it.
  var tagSize: Int {
    if features.contains(.checksumV3) { return 16 }
    var size = 12
    if features.contains(.checksumV2) { size += 2 }
    return features.contains(.blockNumbers64) ? size : size - 4
  }

  /// Bytes at the end of descriptor and revoke blocks that hold their checksum.
  var tailSize: Int { hasChecksumV2OrV3 ? 4 : 0 }

  /// The first fast-commit block (the kernel's j_fc_first), when the journal has a
  /// fast-commit area.
  var fastCommitFirst: UInt32? {
    guard features.contains(.fastCommit), last + 1 < length else { return nil }
    return last + 1
  }

  init(_ block: [UInt8], blockSize: Int, blockCount: UInt64) throws {
    let fields = BigEndianFields(block)
    guard fields.uint32(at: 0) == Self.magic else {
      throw ReelError(
        .corrupt,
        "the ext4 journal has no jbd2 superblock: journal block 0 starts with "
          + "0x\(String(fields.uint32(at: 0), radix: 16)), not the jbd2 magic 0xc03b3998",
        remedy: "check the file system with e2fsck -n on a restored image")
    }
    let typeNumber = fields.uint32(at: 4)
    let version: Int
    switch BlockType(rawValue: typeNumber) {
    case .superblockV1: version = 1
    case .superblockV2: version = 2
    case .descriptor, .commit, .revoke:
      throw ReelError(.corrupt, "the ext4 journal's superblock is a log block (type \(typeNumber)), not a superblock")
    case nil:
      throw ReelError(
        .incompatible, "the ext4 journal's superblock has version type \(typeNumber), which Reel does not know",
        remedy: Self.kernelRemedy)
    }
    if version == 2 && fields.uint32(at: 0x40) > 1 {
      throw ReelError(
        .incompatible, "the ext4 journal is shared by \(fields.uint32(at: 0x40)) file systems",
        remedy: Self.kernelRemedy)
    }
    // A version 1 superblock has no feature fields; e2fsck clears whatever is there.
    let compat = version == 2 ? fields.uint32(at: 0x24) : 0
    let incompat = version == 2 ? fields.uint32(at: 0x28) : 0
    let readOnlyCompat = version == 2 ? fields.uint32(at: 0x2C) : 0
    let features = Features(rawValue: incompat)
    let unknown = features.subtracting(.known).rawValue
    guard unknown == 0 && readOnlyCompat == 0 else {
      throw ReelError(
        .incompatible,
        "the ext4 journal uses features Reel does not know (incompatible 0x\(String(unknown, radix: 16)), "
          + "read-only 0x\(String(readOnlyCompat, radix: 16)))",
        remedy: Self.kernelRemedy)
    }
    let checksumV1 = compat & Self.compatChecksumV1 != 0
    if features.contains(.checksumV2) && features.contains(.checksumV3) {
      throw ReelError(.corrupt, "the ext4 journal's superblock claims both checksum v2 and v3")
    }
    let hasV2OrV3 = features.contains(.checksumV2) || features.contains(.checksumV3)
    if hasV2OrV3 && checksumV1 {
      throw ReelError(.corrupt, "the ext4 journal's superblock claims checksum v1 together with v2 or v3")
    }
    var seed: UInt32 = 0
    if hasV2OrV3 {
      guard block[0x50] == Self.crc32cChecksumType else {
        throw ReelError(.corrupt, "the ext4 journal's superblock names checksum type \(block[0x50]), not crc32c")
      }
      let stored = fields.uint32(at: 0xFC)
      let computed = JournalChecksum.crc32c(
        JournalChecksum.crc32c(0xFFFF_FFFF, block[0..<0xFC] + [0, 0, 0, 0]), block[0x100..<0x400])
      guard stored == computed else {
        throw ReelError(
          .corrupt,
          "the ext4 journal's superblock fails its checksum (stored 0x\(String(stored, radix: 16)), "
            + "computed 0x\(String(computed, radix: 16)))")
      }
      seed = JournalChecksum.crc32c(0xFFFF_FFFF, block[0x30..<0x40])
    }
    let declaredBlockSize = fields.uint32(at: 0x0C)
    guard declaredBlockSize == blockSize else {
      throw ReelError(
        .corrupt,
        "the ext4 journal's superblock says blocks of \(declaredBlockSize) bytes; the file system's are \(blockSize)")
    }
    let length = fields.uint32(at: 0x10)
    guard UInt64(length) <= blockCount else {
      throw ReelError(
        .corrupt, "the ext4 journal's superblock says \(length) blocks; the journal inode holds only \(blockCount)")
    }
    let first = fields.uint32(at: 0x14)
    guard first > 0 && first < length else {
      throw ReelError(.corrupt, "the ext4 journal's log starts at block \(first), outside the journal's \(length)")
    }
    var last = length
    if features.contains(.fastCommit) {
      let stored = fields.uint32(at: 0x54)
      let fastCommitBlocks = stored == 0 ? Self.defaultFastCommitBlocks : stored
      guard fastCommitBlocks < length, length - fastCommitBlocks >= Self.minimumLogBlocks else {
        throw ReelError(
          .corrupt, "the ext4 journal's fast-commit area (\(fastCommitBlocks) blocks) leaves too short a log")
      }
      last = length - fastCommitBlocks
    }
    guard first < last else {
      throw ReelError(.corrupt, "the ext4 journal's log area \(first)..<\(last) is empty")
    }
    let start = fields.uint32(at: 0x1C)
    guard start == 0 || (start >= first && start < last) else {
      throw ReelError(
        .corrupt, "the ext4 journal's log starts at block \(start), outside its log area \(first)..<\(last)")
    }
    self.blockSize = blockSize
    self.length = length
    self.first = first
    self.last = last
    self.sequence = fields.uint32(at: 0x18)
    self.start = start
    self.features = features
    self.checksumV1 = checksumV1
    self.checksumSeed = seed
  }

  static let kernelRemedy =
    "serve the volume and mount it with the kernel: reel serve NAME --at POINT --read-only, then mount the device"
}

/// Big-endian fields of a block whose length the caller has checked.
struct BigEndianFields {
  let bytes: [UInt8]
  init(_ bytes: [UInt8]) { self.bytes = bytes }

  func uint16(at offset: Int) -> UInt16 { UInt16(bytes[offset]) << 8 | UInt16(bytes[offset + 1]) }

  func uint32(at offset: Int) -> UInt32 {
    bytes[offset..<offset + 4].reduce(0) { $0 << 8 | UInt32($1) }
  }

  func uint64(at offset: Int) -> UInt64 {
    bytes[offset..<offset + 8].reduce(0) { $0 << 8 | UInt64($1) }
  }
}
