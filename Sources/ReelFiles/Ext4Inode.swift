import CExt2fs
import ReelCore

/// One inode as libext2fs read it (`ext2_inode_large`, of which only the first
/// `onDiskSize` bytes are real), decoded the way the kernel's ext4 does for `stat`.
struct Ext4Inode {
  static let extentsFlag: UInt32 = 0x0008_0000
  static let inlineDataFlag: UInt32 = 0x1000_0000
  static let encryptedFlag: UInt32 = 0x0000_0800
  static let casefoldFlag: UInt32 = 0x4000_0000
  static let hugeFileFlag: UInt32 = 0x0004_0000

  let number: UInt64
  let raw: ext2_inode_large
  /// The file system's inode size (128 for old ext2: no extra fields, no nanoseconds).
  let onDiskSize: Int

  var flags: UInt32 { raw.i_flags }
  var mode: UInt16 { raw.i_mode }
  var size: UInt64 { UInt64(raw.i_size) | UInt64(raw.i_size_high) << 32 }
  var isInUse: Bool { raw.i_mode != 0 && raw.i_links_count != 0 }
  var isEncrypted: Bool { flags & Self.encryptedFlag != 0 }
  var hasInlineData: Bool { flags & Self.inlineDataFlag != 0 }
  var usesExtents: Bool { flags & Self.extentsFlag != 0 }
  var isCasefolded: Bool { flags & Self.casefoldFlag != 0 }

  var kind: FileKind? { Self.kind(ofMode: mode) }

  static func kind(ofMode mode: UInt16) -> FileKind? {
    switch mode & 0o170000 {
    case 0o100000: .regular
    case 0o040000: .directory
    case 0o120000: .symlink
    case 0o020000: .characterDevice
    case 0o060000: .blockDevice
    case 0o010000: .fifo
    case 0o140000: .socket
    default: nil
    }
  }

  /// A symlink whose target lives in i_block itself (shorter than its 60 bytes).
  var isFastSymlink: Bool { kind == .symlink && !hasInlineData && size > 0 && size < 60 }

  /// The 60 bytes of i_block as stored (fast symlink targets, device numbers).
  var blockArea: [UInt8] {
    withUnsafeBytes(of: raw.i_block) { Array($0) }
  }

  /// Whether an extra field ending at `end` (offset from the inode's start) is stored.
  private func hasExtra(endingAt end: Int) -> Bool {
    onDiskSize > 128 && 128 + Int(raw.i_extra_isize) >= end && end <= onDiskSize
  }

  /// ext4's time with its extra word: two epoch bits above the 32-bit seconds, then
  /// nanoseconds shifted by two.
  private func time(_ seconds: UInt32, extra: UInt32, extraEnd: Int) -> FileTime {
    var whole = Int64(Int32(bitPattern: seconds))
    guard hasExtra(endingAt: extraEnd) else { return FileTime(seconds: whole) }
    whole += Int64(extra & 3) << 32
    return FileTime(seconds: whole, nanoseconds: min(extra >> 2, 999_999_999))
  }

  /// `makedev(major, minor)` from i_block: the old 16-bit encoding in word 0 or the new
  /// 32-bit one in word 1 (the kernel's old_decode_dev/new_decode_dev).
  var deviceNumber: UInt64 {
    let words = withUnsafeBytes(of: raw.i_block) { Array($0.bindMemory(to: UInt32.self)) }
    let major: UInt64
    let minor: UInt64
    if words[0] != 0 {
      major = UInt64((words[0] >> 8) & 0xFF)
      minor = UInt64(words[0] & 0xFF)
    } else {
      major = UInt64((words[1] & 0xFFF00) >> 8)
      minor = UInt64((words[1] & 0xFF) | ((words[1] >> 12) & 0xFFF00))
    }
    return ((major & 0xFFFF_F000) << 32) | ((major & 0xFFF) << 8) | ((minor & 0xFFFF_FF00) << 12) | (minor & 0xFF)
  }

  func attributes(blockSize: Int, hugeFileFeature: Bool) -> FileAttributes {
    let kind = self.kind ?? .regular
    var blocks = UInt64(raw.i_blocks)
    if hugeFileFeature {
      blocks |= UInt64(raw.osd2.linux2.l_i_blocks_hi) << 32
      if flags & Self.hugeFileFlag != 0 { blocks *= UInt64(blockSize / 512) }
    }
    let creation: FileTime? =
      hasExtra(endingAt: 148) ? time(raw.i_crtime, extra: raw.i_crtime_extra, extraEnd: 152) : nil
    return FileAttributes(
      inode: number, kind: kind, permissions: mode & 0o7777,
      uid: UInt32(raw.i_uid) | UInt32(raw.osd2.linux2.l_i_uid_high) << 16,
      gid: UInt32(raw.i_gid) | UInt32(raw.osd2.linux2.l_i_gid_high) << 16,
      size: size, linkCount: UInt32(raw.i_links_count),
      accessTime: time(raw.i_atime, extra: raw.i_atime_extra, extraEnd: 144),
      modificationTime: time(raw.i_mtime, extra: raw.i_mtime_extra, extraEnd: 140),
      changeTime: time(raw.i_ctime, extra: raw.i_ctime_extra, extraEnd: 136),
      creationTime: creation,
      device: kind == .characterDevice || kind == .blockDevice ? deviceNumber : 0,
      allocatedBytes: blocks * 512)
  }
}
