import Foundation
import ReelCodec
import ReelCore

/// A compression group in a pack (docs/store-format.md, "Compression groups", catalog
/// schema 11): one zstd frame whose content is whole raw chunk records, laid out exactly
/// as a version 2 archive's pack frame holds them. Rehydration stores an archive's groups
/// as they are instead of recompressing every chunk on its own.
///
/// Bytes 0..<4 magic `RGR1`; 4 layout version (1); 5..<8 zero; 8..<12 content length
/// (the decompressed bytes, u32 LE); 12..<16 stored length (the zstd frame, u32 LE);
/// 16..<20 CRC-32C over bytes 0..<16 and the stored bytes (u32 LE); 20..<24 zero; then
/// the stored bytes.
package enum ChunkGroupFormat {
  static let headerSize = 24
  static let magic: [UInt8] = Array("RGR1".utf8)
  static let layoutVersion: UInt8 = 1
  /// The largest content a reader decompresses: an archive's bound on a group.
  package static let contentLimit = 64 << 20

  /// The container for one zstd frame of `contentLength` decompressed bytes.
  package static func container(frame: UnsafeRawBufferPointer, contentLength: Int) -> [UInt8] {
    [UInt8](unsafeUninitializedCapacity: headerSize + frame.count) { buffer, count in
      let bytes = UnsafeMutableRawBufferPointer(buffer)
      magic.withUnsafeBytes { bytes.copyMemory(from: $0) }
      bytes.storeBytes(of: layoutVersion, toByteOffset: 4, as: UInt8.self)
      bytes.storeBytes(of: 0, toByteOffset: 5, as: UInt8.self)
      bytes.storeBytes(of: 0, toByteOffset: 6, as: UInt16.self)
      bytes.storeBytes(of: UInt32(contentLength).littleEndian, toByteOffset: 8, as: UInt32.self)
      bytes.storeBytes(of: UInt32(frame.count).littleEndian, toByteOffset: 12, as: UInt32.self)
      UnsafeMutableRawBufferPointer(rebasing: bytes[headerSize...]).copyMemory(from: frame)
      var crc = CRC32C()
      crc.update(UnsafeRawBufferPointer(rebasing: bytes[0..<16]))
      crc.update(frame)
      bytes.storeBytes(of: crc.value.littleEndian, toByteOffset: 16, as: UInt32.self)
      bytes.storeBytes(of: 0, toByteOffset: 20, as: UInt32.self)
      count = headerSize + frame.count
    }
  }

  /// The decompressed content of a whole container; `what` names it in errors.
  static func decode(_ container: UnsafeRawBufferPointer, what: String) throws -> DecodedGroup {
    guard container.count >= headerSize, container.prefix(magic.count).elementsEqual(magic) else {
      throw damaged(what, "is not a compression group")
    }
    guard container[4] == layoutVersion else { throw damaged(what, "has unknown layout version \(container[4])") }
    let contentLength = Int(UInt32(littleEndian: container.loadUnaligned(fromByteOffset: 8, as: UInt32.self)))
    let storedLength = Int(UInt32(littleEndian: container.loadUnaligned(fromByteOffset: 12, as: UInt32.self)))
    guard headerSize + storedLength == container.count else {
      throw damaged(what, "holds \(container.count - headerSize) stored bytes, its header says \(storedLength)")
    }
    guard contentLength <= contentLimit else {
      throw damaged(what, "claims \(contentLength) bytes of content, more than the \(contentLimit) a group may hold")
    }
    var crc = CRC32C()
    crc.update(UnsafeRawBufferPointer(rebasing: container[0..<16]))
    let stored = UnsafeRawBufferPointer(rebasing: container[headerSize...])
    crc.update(stored)
    guard crc.value == UInt32(littleEndian: container.loadUnaligned(fromByteOffset: 16, as: UInt32.self)) else {
      throw damaged(what, "fails its checksum")
    }
    let group = DecodedGroup(count: contentLength)
    try Zstd.decompress(stored, into: group.mutableBytes, what: what)
    return group
  }

  static func damaged(_ what: String, _ reason: String) -> ReelError {
    ReelError(
      .corrupt, "\(what) \(reason)", remedy: "run `reel store check --read-data` to see what it affects")
  }
}

/// The decompressed content of one compression group. Its bytes stay where they are while
/// the object lives, so a read can hand out pointers to many records of many groups.
final class DecodedGroup: @unchecked Sendable {
  private let storage: UnsafeMutableRawBufferPointer

  init(count: Int) {
    storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 16)
    if count == 0 { storage[0] = 0 }
  }

  deinit { storage.deallocate() }

  var count: Int { Int(storage.count) }
  fileprivate var mutableBytes: UnsafeMutableRawBufferPointer { storage }
  var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(storage) }

  /// The chunk record that starts at `offset` of the content; its header's lengths are
  /// checked against the content, not its checksum (the record's decode checks that).
  func record(at offset: Int, key: ChunkKey, what: String) throws -> UnsafeRawBufferPointer {
    guard offset >= 0, offset < bytes.count,
      let header = ChunkRecordHeader(UnsafeRawBufferPointer(rebasing: bytes[offset...])),
      header.recordLength <= bytes.count - offset
    else {
      throw ChunkGroupFormat.damaged("chunk \(key):", "has no whole record at byte \(offset) of \(what)")
    }
    return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + header.recordLength)])
  }
}

/// Where a compression group sits: its pack and offset.
struct GroupPlace: Hashable, Sendable {
  var pack: String
  var offset: UInt64

  var description: String { "the compression group at byte \(offset) of pack \(pack)" }
}

/// The few groups read last, decompressed: a restore or a check reads a group's chunks
/// one after another, and decompressing 8 MiB for each of them would cost 30 times the read.
final class GroupCache: Sendable {
  private let entries: Locked<RecentlyUsed<GroupPlace, DecodedGroup>>

  init(capacity: Int) { entries = Locked(RecentlyUsed(capacity: capacity)) }

  func get(_ place: GroupPlace) -> DecodedGroup? { entries.withLock { $0.value(for: place) } }

  func put(_ place: GroupPlace, _ group: DecodedGroup) { entries.withLock { $0.insert(group, for: place) } }
}

extension ChunkLocation {
  /// The group this location's record is in; nil for a record that stands alone.
  var group: GroupPlace? { recordOffset == nil ? nil : GroupPlace(pack: pack, offset: offset) }
}

extension LiveStore {
  /// The decompressed content of the group at `location` (whose `offset` and `length`
  /// are the group's), from the cache or read and decoded.
  func group(at location: ChunkLocation) throws -> DecodedGroup {
    let place = GroupPlace(pack: location.pack, offset: location.offset)
    if let cached = groups.get(place) { return cached }
    let container: [UInt8]
    do {
      container = try backend.read(location.pack, offset: location.offset, length: location.length)
    } catch let error as ReelError where error.kind == .notFound {
      throw ReelError(
        .corrupt, "\(place.description): the pack is missing",
        remedy: "run `reel store check` to see what it affects; rehydrate the range from a sealed archive")
    }
    guard container.count == location.length else {
      throw ChunkGroupFormat.damaged(place.description, "is cut short (\(container.count) of \(location.length) bytes)")
    }
    let group = try container.withUnsafeBytes { try ChunkGroupFormat.decode($0, what: place.description) }
    groups.put(place, group)
    return group
  }

  /// The decompressed length the header of the group at `location` gives, read alone.
  func groupContentLength(_ location: ChunkLocation) throws -> Int {
    let header = try backend.read(location.pack, offset: location.offset, length: ChunkGroupFormat.headerSize)
    guard header.count == ChunkGroupFormat.headerSize, header.prefix(4).elementsEqual(ChunkGroupFormat.magic) else {
      throw ChunkGroupFormat.damaged(
        GroupPlace(pack: location.pack, offset: location.offset).description, "is not a compression group")
    }
    return header.withUnsafeBytes { Int(UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt32.self))) }
  }

  /// The stored record of a chunk, as it would stand alone in a pack: read from the pack,
  /// or copied out of its decompressed group.
  func storedRecord(_ key: ChunkKey, at location: ChunkLocation) throws -> [UInt8] {
    if let recordOffset = location.recordOffset {
      let group = try group(at: location)
      return Array(try group.record(at: recordOffset, key: key, what: location.group!.description))
    }
    do {
      return try backend.read(location.pack, offset: location.offset, length: location.length)
    } catch let error as ReelError where error.kind == .notFound {
      throw ReelError(
        .corrupt, "chunk \(key): its pack \(location.pack) is missing",
        remedy: "run `reel store check` to see what it affects; rehydrate the range from a sealed archive")
    }
  }
}
