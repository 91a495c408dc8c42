/// A point folder of the mount (`latest`, `bookmarks/LABEL`, `at/INSTANT`), numbered once
/// per mount from 1 in the order they are first looked up.
struct PointID: Hashable, Sendable {
  var value: UInt32
}

/// The mount's inode numbers. 1 is the root (FUSE_ROOT_ID). The folders and disk images
/// Reel makes up are numbered from 2 in the order they are first seen, all below 2^32.
/// A file system's own inode `i` seen through point folder `p` is `p << 32 | i` (p ≥ 1),
/// so the two ranges never meet, the number says which point it belongs to without a
/// table, and the same file keeps its number as long as the mount runs.
enum MountInode {
  static let root: UInt64 = 1
  static let syntheticLimit: UInt64 = 1 << 32

  static func inFileSystem(point: PointID, inode: UInt64) throws -> UInt64 {
    guard inode > 0, inode < syntheticLimit else {
      throw ReelErrorForMount.inodeOutOfRange(inode)
    }
    return UInt64(point.value) << 32 | inode
  }

  /// The point and the file system's inode, or nil for the root and made-up nodes.
  static func fileSystemPart(of inode: UInt64) -> (point: PointID, inode: UInt64)? {
    guard inode >= syntheticLimit else { return nil }
    return (PointID(value: UInt32(truncatingIfNeeded: inode >> 32)), inode & (syntheticLimit - 1))
  }
}
