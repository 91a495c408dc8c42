import ReelCore

/// A name in a directory, as the file system stores it: bytes, which need not be UTF-8.
package struct FileName: Hashable, Sendable, Comparable, CustomStringConvertible {
  package var bytes: [UInt8]

  package init(_ bytes: [UInt8]) { self.bytes = bytes }
  package init(_ string: String) { self.bytes = Array(string.utf8) }

  /// For people: invalid UTF-8 shows as U+FFFD.
  package var description: String { String(decoding: bytes, as: UTF8.self) }

  package static func < (lhs: FileName, rhs: FileName) -> Bool {
    lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
  }
}

package enum FileKind: String, Sendable, Codable, Equatable {
  case regular, directory, symlink, characterDevice, blockDevice, fifo, socket
}

/// An instant as a file system records it.
package struct FileTime: Sendable, Equatable, Hashable, Codable {
  package var seconds: Int64
  package var nanoseconds: UInt32

  package init(seconds: Int64, nanoseconds: UInt32 = 0) {
    self.seconds = seconds
    self.nanoseconds = nanoseconds
  }
}

/// What `stat` tells about one inode.
package struct FileAttributes: Sendable, Equatable {
  package var inode: UInt64
  package var kind: FileKind
  /// Permission bits with set-user-ID, set-group-ID and sticky (0o7777).
  package var permissions: UInt16
  package var uid: UInt32
  package var gid: UInt32
  package var size: UInt64
  package var linkCount: UInt32
  package var accessTime: FileTime
  package var modificationTime: FileTime
  package var changeTime: FileTime
  /// Birth time, where the file system keeps one.
  package var creationTime: FileTime?
  /// For device files: the device number as `makedev(major, minor)`.
  package var device: UInt64
  /// Bytes allocated on disk (what `du` shows), so holes can be seen without reading.
  package var allocatedBytes: UInt64

  package init(
    inode: UInt64, kind: FileKind, permissions: UInt16, uid: UInt32, gid: UInt32, size: UInt64,
    linkCount: UInt32, accessTime: FileTime, modificationTime: FileTime, changeTime: FileTime,
    creationTime: FileTime? = nil, device: UInt64 = 0, allocatedBytes: UInt64 = 0
  ) {
    self.inode = inode
    self.kind = kind
    self.permissions = permissions
    self.uid = uid
    self.gid = gid
    self.size = size
    self.linkCount = linkCount
    self.accessTime = accessTime
    self.modificationTime = modificationTime
    self.changeTime = changeTime
    self.creationTime = creationTime
    self.device = device
    self.allocatedBytes = allocatedBytes
  }
}

package struct DirectoryEntry: Sendable, Equatable {
  package var name: FileName
  package var inode: UInt64
  package var kind: FileKind

  package init(name: FileName, inode: UInt64, kind: FileKind) {
    self.name = name
    self.inode = inode
    self.kind = kind
  }
}

package struct ExtendedAttribute: Sendable, Equatable {
  /// With its namespace, as `getfattr` shows it: `user.comment`, `security.selinux`,
  /// `trusted.x`, `system.posix_acl_access`.
  package var name: String
  package var value: [UInt8]

  package init(name: String, value: [UInt8]) {
    self.name = name
    self.value = value
  }
}

/// What was found where on a volume and opened.
package struct FileSystemInfo: Sendable, Equatable {
  /// As libblkid names it: `ext4`, `ext3`, `ext2`.
  package var type: String
  package var label: String?
  package var uuid: String?
  package var blockSize: Int
  /// 1-based partition number, or nil when the file system fills the volume.
  package var partition: Int?
  /// Where the file system starts on the volume, in bytes.
  package var offset: UInt64
  package var size: UInt64
  /// Journal transactions applied in memory to show the file system as the kernel would
  /// after mounting it (0 when the journal was clean).
  package var replayedTransactions: Int

  package init(
    type: String, label: String?, uuid: String?, blockSize: Int, partition: Int?, offset: UInt64,
    size: UInt64, replayedTransactions: Int
  ) {
    self.type = type
    self.label = label
    self.uuid = uuid
    self.blockSize = blockSize
    self.partition = partition
    self.offset = offset
    self.size = size
    self.replayedTransactions = replayedTransactions
  }
}

/// A read-only file system inside a volume at one point. Inode numbers are the file
/// system's own, stable for the life of the reader (and across points for the same file
/// system). Safe to call from any thread; calls may be serialized inside.
///
/// Errors are `ReelError`: `.notFound` for a missing inode or name, `.corrupt` for
/// structures that do not parse, `.incompatible` for features it cannot read.
package protocol FileSystemReading: AnyObject, Sendable {
  var info: FileSystemInfo { get }
  var rootInode: UInt64 { get }
  func attributes(of inode: UInt64) throws -> FileAttributes
  /// Every entry of a directory except `.` and `..`, in the order the file system keeps.
  func entries(of directory: UInt64) throws -> [DirectoryEntry]
  func lookup(_ name: FileName, in directory: UInt64) throws -> DirectoryEntry?
  /// Up to `length` bytes from `offset`; fewer only at the end of the file. Holes and
  /// unwritten extents read as zeros.
  func read(_ inode: UInt64, offset: UInt64, length: Int) throws -> [UInt8]
  /// Up to `buffer.count` bytes from `offset` straight into `buffer`; returns how many
  /// (fewer only at the end of the file). Holes and unwritten extents read as zeros.
  func read(_ inode: UInt64, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int
  func symlinkTarget(of inode: UInt64) throws -> [UInt8]
  func extendedAttributes(of inode: UInt64) throws -> [ExtendedAttribute]
  /// The byte ranges of a regular file that hold data, in order; everything else up to
  /// its size is a hole (reads as zeros). Unwritten (preallocated) extents count as holes.
  func dataRanges(of inode: UInt64) throws -> [Range<UInt64>]
  /// Brings what listing `directory` reads (its inode, its first blocks) into the reader's
  /// cache, waiting on the volume outside any lock other calls wait for: for a walk to
  /// call on folders it will visit next. Errors are left for the walk's own calls to report.
  func readAhead(directory: UInt64)
}

extension FileSystemReading {
  package func read(_ inode: UInt64, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    let bytes = try read(inode, offset: offset, length: buffer.count)
    bytes.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buffer[0..<$0.count]).copyMemory(from: $0) }
    return bytes.count
  }
}

// Opening (built on branch files-ext4), for callers to code against:
//   package enum VolumeFiles {
//     /// Probes `source` (libblkid: whole volume or a GPT/MBR partition, 1-based
//     /// `partition`), opens the file system read-only, replays its journal into memory.
//     package static func open(_ source: any VolumeSource, partition: Int? = nil) throws
//       -> any FileSystemReading
//     /// The partitions libblkid finds, for error messages and `reel files partitions`.
//     package static func partitions(of source: any VolumeSource) throws -> [VolumePartition]
//   }
