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
/// 16..<20 CRC-32C over bytes 0..<20 and the stored bytes (u32 LE, its own bytes taken
/// as zero); 20..<24 how many chunk records the content holds (u32 LE); then the stored
/// bytes.
package enum ChunkGroupFormat {
  static let headerSize = 24
  static let magic: [UInt8] = Array("RGR1".utf8)
  static let layoutVersion: UInt8 = 1
  /// The largest content a reader decompresses: an archive's bound on a group.
  package static let contentLimit = 64 << 20
  /// The container for one zstd frame of `contentLength` decompressed bytes holding
  /// `recordCount` chunk records.
  package static func container(frame: UnsafeRawBufferPointer, contentLength: Int, recordCount: Int) -> [UInt8] {
    [UInt8](unsafeUninitializedCapacity: headerSize + frame.count) { buffer, count in
      let bytes = UnsafeMutableRawBufferPointer(buffer)
      writeLeadingFields(into: bytes, magic: magic, kind: layoutVersion, contentLength, frame.count)
      UnsafeMutableRawBufferPointer(rebasing: bytes[headerSize...]).copyMemory(from: frame)
      bytes.storeBytes(of: 0, toByteOffset: 16, as: UInt32.self)
      bytes.storeBytes(of: UInt32(recordCount).littleEndian, toByteOffset: 20, as: UInt32.self)
      let sum = checksum(
        UnsafeRawBufferPointer(rebasing: bytes[0..<headerSize]),
        stored: UnsafeRawBufferPointer(rebasing: bytes[headerSize...]))
      bytes.storeBytes(of: sum.littleEndian, toByteOffset: 16, as: UInt32.self)
      count = headerSize + frame.count
    }
  }

  /// The decompressed content of a whole container; `what` names it in errors. A group
  /// that fails its checksum, or whose frame does not decode, gives what still decodes
  /// before the damage (`DecodedGroup.damage`): every record carries its own checksum,
  /// so a flipped byte costs the chunks from it to the group's end, not all of them.
  static func decode(_ container: UnsafeRawBufferPointer, what: String) throws -> DecodedGroup {
    let contentLength = try soundContentLength(container, what: what)
    guard contentLength <= contentLimit else {
      throw damaged(what, "claims \(contentLength) bytes of content, more than the \(contentLimit) a group may hold")
    }
    let group = DecodedGroup(count: contentLength)
    let frame = UnsafeRawBufferPointer(rebasing: container[headerSize...])
    var damage: String?
    if !checksumMatches(container) {
      damage = damaged(what, "fails its checksum").message
    } else {
      do {
        try Zstd.decompress(frame, into: group.mutableBytes, what: what)
        return group
      } catch let error as ReelError {
        damage = error.message
      }
    }
    group.intactLength = Zstd.salvage(frame, into: group.mutableBytes)
    group.damage = damage
    return group
  }

  /// The content length of a whole container whose magic, layout version and stored
  /// length are right; its checksum not checked.
  private static func soundContentLength(_ container: UnsafeRawBufferPointer, what: String) throws -> Int {
    guard let fields = fields(of: container) else { throw damaged(what, "is not a compression group") }
    guard container[4] == layoutVersion else { throw damaged(what, "has unknown layout version \(container[4])") }
    let stored = container.count - headerSize
    guard fields.storedLength == stored else {
      throw damaged(what, "holds \(stored) stored bytes, its header says \(fields.storedLength)")
    }
    return fields.contentLength
  }

  /// The length and count fields of the header at the start of `bytes`; nil when the
  /// bytes are too few or lack the magic.
  static func fields(of bytes: UnsafeRawBufferPointer) -> (contentLength: Int, storedLength: Int, recordCount: Int)? {
    guard bytes.count >= headerSize, bytes.prefix(magic.count).elementsEqual(magic) else { return nil }
    func field(_ offset: Int) -> Int {
      Int(UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self)))
    }
    return (field(8), field(12), field(20))
  }

  private static func checksumMatches(_ container: UnsafeRawBufferPointer) -> Bool {
    checksum(
      UnsafeRawBufferPointer(rebasing: container[0..<headerSize]),
      stored: UnsafeRawBufferPointer(rebasing: container[headerSize...]))
      == UInt32(littleEndian: container.loadUnaligned(fromByteOffset: 16, as: UInt32.self))
  }

  /// CRC-32C over the header, its checksum field taken as zero, and the stored bytes.
  private static func checksum(_ header: UnsafeRawBufferPointer, stored: UnsafeRawBufferPointer) -> UInt32 {
    var crc = CRC32C()
    crc.update(UnsafeRawBufferPointer(rebasing: header[0..<16]))
    withUnsafeBytes(of: UInt32(0)) { crc.update($0) }
    crc.update(UnsafeRawBufferPointer(rebasing: header[20..<headerSize]))
    crc.update(stored)
    return crc.value
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
  let count: Int

  init(count: Int) {
    self.count = count
    intactLength = count
    storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(count, 1), alignment: 16)
  }

  deinit { storage.deallocate() }

  fileprivate var mutableBytes: UnsafeMutableRawBufferPointer { storage }
  var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: storage[0..<intactLength]) }
  /// Set when the group is damaged: what is wrong with it. Only the first `intactLength`
  /// bytes then decoded, and nothing in them is trusted beyond each record's checksum.
  fileprivate(set) var damage: String?
  fileprivate(set) var intactLength: Int

  /// The chunk record that starts at `offset` of the content; its header's lengths are
  /// checked against the content, not its checksum (the record's decode checks that).
  func record(at offset: Int, key: ChunkKey, what: String) throws -> UnsafeRawBufferPointer {
    let bytes = self.bytes
    guard offset >= 0, offset < bytes.count,
      let header = ChunkRecordHeader(UnsafeRawBufferPointer(rebasing: bytes[offset...])),
      header.recordLength <= bytes.count - offset
    else {
      if let damage {
        throw ChunkGroupFormat.damaged("chunk \(key):", "\(damage), and its record is past what still decodes")
      }
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

  /// The stored record of a chunk, as it would stand alone in a pack: read from the pack,
  /// or copied out of its decompressed group.
  func storedRecord(_ key: ChunkKey, at location: ChunkLocation) throws -> [UInt8] {
    if let recordOffset = location.recordOffset {
      let group: DecodedGroup
      do {
        group = try self.group(at: location)
      } catch let error as ReelError {
        throw ReelError(error.kind, "chunk \(key): \(error.message)", remedy: error.remedy)
      }
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

extension LiveStore {
  /// The header of the group at `location`, read alone (its checksum covers the whole
  /// group and is not checked here).
  func groupHeader(_ location: ChunkLocation) throws -> (contentLength: Int, recordCount: Int) {
    let header = try backend.read(location.pack, offset: location.offset, length: ChunkGroupFormat.headerSize)
    guard let fields = header.withUnsafeBytes({ ChunkGroupFormat.fields(of: $0) }) else {
      throw ChunkGroupFormat.damaged(
        GroupPlace(pack: location.pack, offset: location.offset).description, "is not a compression group")
    }
    return (fields.contentLength, fields.recordCount)
  }
}
