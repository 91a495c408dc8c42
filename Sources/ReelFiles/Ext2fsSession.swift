import CExt2fs
import Foundation
import ReelCore

/// Where a file's blocks are: runs of logical blocks mapped to physical ones, in logical
/// order. Logical blocks in no run are holes.
struct FileMap: Sendable {
  struct Run: Sendable, Equatable {
    var logical: UInt64
    var physical: UInt64
    var count: UInt64
    /// Allocated but never written (an uninitialized extent): reads as zeros.
    var unwritten: Bool
  }
  var runs: [Run] = []

  mutating func append(logical: UInt64, physical: UInt64, count: UInt64, unwritten: Bool) {
    if let last = runs.last, last.unwritten == unwritten, last.logical + last.count == logical,
      last.physical + last.count == physical
    {
      runs[runs.count - 1].count += count
    } else {
      runs.append(Run(logical: logical, physical: physical, count: count, unwritten: unwritten))
    }
  }
}

/// A directory entry as stored: name bytes, inode, and the file-type byte (0 when the
/// file system has no filetype feature or did not record one).
struct RawDirectoryEntry {
  var name: [UInt8]
  var inode: UInt32
  var fileType: UInt8
}

/// One file system opened with libext2fs over a `BlockDevice`, read-only. Every call into
/// libext2fs is made here; libext2fs is not thread-safe, so the owner serializes all use
/// of a session (Ext4FileSystem holds it under one lock).
final class Ext2fsSession {
  let fs: ext2_filsys
  let device: BlockDevice
  private let channel: ReadOnlyIOManager.ChannelState

  /// Opens without EXT2_FLAG_IGNORE_CSUM_ERRORS: a checksum that does not match means a
  /// damaged structure, which the kernel would refuse too (EFSBADCRC), and showing it
  /// as if it were whole would be worse than the error.
  init(device: BlockDevice) throws {
    self.device = device
    var opened: ext2_filsys? = nil
    let flags = EXT2_FLAG_64BITS | EXT2_FLAG_SKIP_MMP
    let (code, state) = ReadOnlyIOManager.withRegistered(device) { name, manager, state in
      (ext2fs_open2(name, nil, flags, 0, 0, manager, &opened), state)
    }
    guard code == 0, let opened else {
      throw Self.error(code, "the ext2/3/4 superblock and group descriptors", deviceError: state.lastError)
    }
    fs = opened
    channel = ReadOnlyIOManager.state(of: opened.pointee.io)
  }

  deinit { ext2fs_free(fs) }

  var superblock: ext2_super_block { fs.pointee.super.pointee }
  var blockSize: Int { Int(fs.pointee.blocksize) }
  var inodeSize: Int { Int(fs.pointee.super.pointee.s_rev_level == 0 ? 128 : fs.pointee.super.pointee.s_inode_size) }
  var blockCount: UInt64 { ext2fs_blocks_count(fs.pointee.super) }
  var hasHugeFiles: Bool { superblock.s_feature_ro_compat & UInt32(EXT4_FEATURE_RO_COMPAT_HUGE_FILE) != 0 }
  var hasFileTypes: Bool { superblock.s_feature_incompat & UInt32(EXT2_FEATURE_INCOMPAT_FILETYPE) != 0 }
  var needsRecovery: Bool { superblock.s_feature_incompat & UInt32(EXT3_FEATURE_INCOMPAT_RECOVER) != 0 }
  var hasJournal: Bool { superblock.s_feature_compat & UInt32(EXT3_FEATURE_COMPAT_HAS_JOURNAL) != 0 }
  var journalInode: UInt64 { UInt64(superblock.s_journal_inum) }

  /// A ReelError for a libext2fs failure on `what`; a failure of the volume underneath
  /// (the store) comes back as itself.
  func error(_ code: errcode_t, _ what: String) -> ReelError {
    defer { channel.lastError = nil }
    return Self.error(code, what, deviceError: channel.lastError)
  }

  static func error(_ code: errcode_t, _ what: String, deviceError: Error?) -> ReelError {
    if let deviceError = deviceError as? ReelError { return deviceError }
    let reason = String(cString: error_message(code))
    switch code {
    case EXT2_ET_BAD_INODE_NUM:
      return ReelError(.notFound, "\(what): no such inode (\(reason))")
    case EXT2_ET_UNSUPP_FEATURE, EXT2_ET_RO_UNSUPP_FEATURE, EXT2_ET_UNKNOWN_CSUM:
      return ReelError(
        .incompatible, "\(what): \(reason)",
        remedy: "this file system uses a feature libext2fs \(libraryVersion) cannot read; "
          + "serve the volume read-only (`reel serve NAME --at POINT --read-only`) and mount it with the kernel")
    case EXT2_ET_BAD_MAGIC, EXT2_ET_SB_CSUM_INVALID, EXT2_ET_CORRUPT_SUPERBLOCK:
      return ReelError(
        .corrupt, "\(what): the superblock is damaged (\(reason))",
        remedy: "try another point (--at), or check a restored image with `e2fsck -fn`")
    default:
      return ReelError(
        .corrupt, "\(what): \(reason)", remedy: "check a restored image of this point with `e2fsck -fn`")
    }
  }

  static var libraryVersion: String {
    var version: UnsafePointer<CChar>? = nil
    ext2fs_get_library_version(&version, nil)
    return version.map { String(cString: $0) } ?? "?"
  }

  func inode(_ number: UInt64) throws -> Ext4Inode {
    guard number > 0, number <= UInt64(superblock.s_inodes_count) else {
      throw ReelError(.notFound, "inode \(number) does not exist (the file system has \(superblock.s_inodes_count))")
    }
    var raw = ext2_inode_large()
    let code = withUnsafeMutablePointer(to: &raw) { pointer in
      pointer.withMemoryRebound(to: ext2_inode.self, capacity: 1) {
        ext2fs_read_inode_full(fs, ext2_ino_t(number), $0, Int32(MemoryLayout<ext2_inode_large>.size))
      }
    }
    guard code == 0 else { throw error(code, "inode \(number)") }
    let inode = Ext4Inode(number: number, raw: raw, onDiskSize: inodeSize)
    guard inode.isInUse else { throw ReelError(.notFound, "inode \(number) is not in use") }
    return inode
  }

  /// Where inode `number` lies on the device, in bytes; known from the group descriptors,
  /// which are in memory, so nothing is read.
  func inodePosition(_ number: UInt64) -> UInt64? {
    let perGroup = UInt64(superblock.s_inodes_per_group)
    guard number > 0, number <= UInt64(superblock.s_inodes_count), perGroup > 0 else { return nil }
    let table = ext2fs_inode_table_loc(fs, dgrp_t((number - 1) / perGroup))
    guard table != 0 else { return nil }
    return table * UInt64(blockSize) + (number - 1) % perGroup * UInt64(inodeSize)
  }

  /// Logical → physical runs of an extent-mapped or block-mapped inode.
  func fileMap(_ inode: Ext4Inode) throws -> FileMap {
    inode.usesExtents ? try extentMap(inode) : try blockMap(inode)
  }

  private func extentMap(_ inode: Ext4Inode) throws -> FileMap {
    var raw = inode.raw
    var handle: ext2_extent_handle_t? = nil
    let opened = withUnsafeMutablePointer(to: &raw) { pointer in
      pointer.withMemoryRebound(to: ext2_inode.self, capacity: 1) {
        ext2fs_extent_open2(fs, ext2_ino_t(inode.number), $0, &handle)
      }
    }
    guard opened == 0, let handle else { throw error(opened, "the extent tree of inode \(inode.number)") }
    defer { ext2fs_extent_free(handle) }
    var map = FileMap()
    var extent = ext2fs_extent()
    var operation = Int32(EXT2_EXTENT_ROOT)
    while true {
      let code = ext2fs_extent_get(handle, operation, &extent)
      if code == EXT2_ET_EXTENT_NO_NEXT || code == EXT2_ET_NO_CURRENT_NODE { break }
      guard code == 0 else { throw error(code, "the extent tree of inode \(inode.number)") }
      operation = Int32(EXT2_EXTENT_NEXT_LEAF)
      guard extent.e_flags & UInt32(EXT2_EXTENT_FLAGS_LEAF) != 0, extent.e_len > 0 else { continue }
      map.append(
        logical: UInt64(extent.e_lblk), physical: extent.e_pblk, count: UInt64(extent.e_len),
        unwritten: extent.e_flags & UInt32(EXT2_EXTENT_FLAGS_UNINIT) != 0)
    }
    return map
  }

  private final class MapBuilder {
    var map = FileMap()
  }

  private func blockMap(_ inode: Ext4Inode) throws -> FileMap {
    let builder = MapBuilder()
    let code = ext2fs_block_iterate3(
      fs, ext2_ino_t(inode.number), BLOCK_FLAG_READ_ONLY | BLOCK_FLAG_DATA_ONLY, nil,
      { _, physical, logical, _, _, context in
        guard let physical, let context, logical >= 0 else { return 0 }
        let builder = Unmanaged<MapBuilder>.fromOpaque(context).takeUnretainedValue()
        builder.map.append(logical: UInt64(logical), physical: physical.pointee, count: 1, unwritten: false)
        return 0
      }, Unmanaged.passUnretained(builder).toOpaque())
    guard code == 0 else { throw error(code, "the block map of inode \(inode.number)") }
    return builder.map
  }

  /// The bytes kept in the inode and its `system.data` attribute (inline_data feature).
  func inlineData(_ inode: Ext4Inode) throws -> [UInt8] {
    var capacity = 0
    var code = ext2fs_inline_data_size(fs, ext2_ino_t(inode.number), &capacity)
    guard code == 0 else { throw error(code, "the inline data of inode \(inode.number)") }
    var bytes = [UInt8](repeating: 0, count: max(capacity, 60))
    var length = bytes.count
    code = bytes.withUnsafeMutableBytes {
      ext2fs_inline_data_get(fs, ext2_ino_t(inode.number), nil, $0.baseAddress, &length)
    }
    guard code == 0 else { throw error(code, "the inline data of inode \(inode.number)") }
    return Array(bytes.prefix(min(length, Int(clamping: inode.size))))
  }

  private final class EntryCollector {
    var entries: [RawDirectoryEntry] = []
  }

  /// Every live entry of a directory, `.` and `..` included, in on-disk order (block-
  /// mapped, extent-mapped, htree-indexed or inline).
  func directoryEntries(_ number: UInt64) throws -> [RawDirectoryEntry] {
    let collector = EntryCollector()
    let code = ext2fs_dir_iterate2(
      fs, ext2_ino_t(number), 0, nil,
      { _, _, dirent, _, _, _, context in
        guard let dirent, let context else { return 0 }
        let collector = Unmanaged<EntryCollector>.fromOpaque(context).takeUnretainedValue()
        let raw = UnsafeRawPointer(dirent)
        let inode = raw.loadUnaligned(as: UInt32.self)
        let nameLength = Int(raw.load(fromByteOffset: 6, as: UInt8.self))
        let fileType = raw.load(fromByteOffset: 7, as: UInt8.self)
        let name = Array(UnsafeRawBufferPointer(start: raw + 8, count: nameLength))
        collector.entries.append(RawDirectoryEntry(name: name, inode: UInt32(littleEndian: inode), fileType: fileType))
        return 0
      }, Unmanaged.passUnretained(collector).toOpaque())
    guard code == 0 else {
      if code == EXT2_ET_NO_DIRECTORY { throw ReelError(.usage, "inode \(number) is not a directory") }
      throw error(code, "directory inode \(number)")
    }
    return collector.entries
  }

  private final class AttributeCollector {
    var attributes: [ExtendedAttribute] = []
  }

  /// The names the kernel lists (`getfattr -d -m -`): user., trusted., security., gnu.
  /// and the two POSIX ACLs (in the kernel's xattr form, which libext2fs converts to);
  /// not `system.data`, where inline data keeps its tail.
  private static let listedPrefixes = ["user.", "trusted.", "security.", "gnu."]
  private static let listedNames: Set<String> = ["system.posix_acl_access", "system.posix_acl_default"]

  func extendedAttributes(_ number: UInt64) throws -> [ExtendedAttribute] {
    var handle: OpaquePointer? = nil
    var code = ext2fs_xattrs_open(fs, ext2_ino_t(number), &handle)
    if code == EXT2_ET_MISSING_EA_FEATURE { return [] }
    guard code == 0, handle != nil else { throw error(code, "the extended attributes of inode \(number)") }
    defer { ext2fs_xattrs_close(&handle) }
    code = ext2fs_xattrs_read(handle)
    guard code == 0 else { throw error(code, "the extended attributes of inode \(number)") }
    let collector = AttributeCollector()
    code = ext2fs_xattrs_iterate(
      handle,
      { name, value, length, context in
        guard let name, let context else { return 0 }
        let collector = Unmanaged<AttributeCollector>.fromOpaque(context).takeUnretainedValue()
        let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: length)) } ?? []
        collector.attributes.append(ExtendedAttribute(name: String(cString: name), value: bytes))
        return 0
      }, Unmanaged.passUnretained(collector).toOpaque())
    guard code == 0 else { throw error(code, "the extended attributes of inode \(number)") }
    return collector.attributes.filter { attribute in
      Self.listedNames.contains(attribute.name) || Self.listedPrefixes.contains { attribute.name.hasPrefix($0) }
    }.map { attribute in
      Self.listedNames.contains(attribute.name)
        ? ExtendedAttribute(name: attribute.name, value: Self.kernelACL(attribute.value)) : attribute
    }
  }

  /// A POSIX ACL from ext4's on-disk form (version 1; 4-byte entries for the owner, owning
  /// group, mask and other, 8-byte ones with an id for named users and groups) to the
  /// xattr form the kernel returns (version 2; 8-byte entries, ACL_UNDEFINED_ID where no
  /// id). libext2fs converts only in ext2fs_xattr_get, and writes id 0 there.
  static func kernelACL(_ disk: [UInt8]) -> [UInt8] {
    guard disk.count >= 4, disk[0..<4] == [1, 0, 0, 0] else { return disk }
    var result: [UInt8] = [2, 0, 0, 0]
    var at = 4
    while at + 4 <= disk.count {
      let tag = UInt16(disk[at]) | UInt16(disk[at + 1]) << 8
      result += disk[at..<(at + 4)]
      if tag == 0x02 || tag == 0x08 {
        guard at + 8 <= disk.count else { return disk }
        result += disk[(at + 4)..<(at + 8)]
        at += 8
      } else {
        result += [0xFF, 0xFF, 0xFF, 0xFF]
        at += 4
      }
    }
    return result
  }
}
