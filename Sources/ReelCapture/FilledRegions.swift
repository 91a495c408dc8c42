import Foundation
import ReelCore
import ReelIO

/// Which regions (one store block each) of a lazy live image hold the volume's bytes; the
/// others read from the live store as of the image's backing seq. Bits are only ever set.
struct FilledRegions: Sendable, Equatable {
  let regionSize: UInt64
  let count: Int
  private(set) var words: [UInt64]
  private(set) var filledCount = 0

  init(volumeSize: UInt64, regionSize: UInt64) {
    self.regionSize = regionSize
    count = Int((volumeSize + regionSize - 1) / regionSize)
    words = [UInt64](repeating: 0, count: (count + 63) / 64)
  }

  var isComplete: Bool { filledCount == count }

  func contains(_ region: Int) -> Bool { words[region >> 6] & (1 << UInt64(region & 63)) != 0 }

  mutating func insert(_ region: Int) {
    let bit: UInt64 = 1 << UInt64(region & 63)
    guard words[region >> 6] & bit == 0 else { return }
    words[region >> 6] |= bit
    filledCount += 1
  }
}

/// `live.filled`: the bitmap of a lazy live image, named by the same generation as the
/// `live.state` that points at it, so a bitmap left by an interrupted rebuild is never
/// taken for the current one. Written with `Durable.replaceFile` (whole or not at all).
///
/// ```
/// "REELFILL"  u32 version (1)  u32 region size  16 bytes generation (UUID)
/// u64 backing seq  u64 region count  then the bits, u64 words little-endian
/// ```
enum FilledRegionsFile {
  static let name = "live.filled"
  static let magic = Array("REELFILL".utf8)
  static let version: UInt32 = 1
  static let headerSize = 8 + 4 + 4 + 16 + 8 + 8

  static func encode(_ regions: FilledRegions, generation: UUID, backingSeq: Seq) -> [UInt8] {
    var bytes = magic
    bytes.reserveCapacity(headerSize + regions.words.count * 8)
    func append<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
    append(version)
    append(UInt32(regions.regionSize))
    withUnsafeBytes(of: generation.uuid) { bytes += $0 }
    append(UInt64(backingSeq))
    append(UInt64(regions.count))
    for word in regions.words { append(word) }
    return bytes
  }

  /// The bitmap at `path` if it is whole and belongs to this generation and volume.
  static func read(
    _ path: String, generation: UUID, backingSeq: Seq, volumeSize: UInt64, regionSize: UInt64
  ) -> FilledRegions? {
    guard let data = FileManager.default.contents(atPath: path) else { return nil }
    let bytes = [UInt8](data)
    var regions = FilledRegions(volumeSize: volumeSize, regionSize: regionSize)
    guard bytes.count == headerSize + regions.words.count * 8, Array(bytes[0..<8]) == magic else { return nil }
    func integer<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
      bytes[offset..<(offset + MemoryLayout<T>.size)].withUnsafeBytes { T(littleEndian: $0.loadUnaligned(as: T.self)) }
    }
    let stored = bytes[16..<32].withUnsafeBytes { $0.loadUnaligned(as: uuid_t.self) }
    guard integer(8, UInt32.self) == version, UInt64(integer(12, UInt32.self)) == regionSize,
      UUID(uuid: stored) == generation, Seq(integer(32, UInt64.self)) == backingSeq,
      integer(40, UInt64.self) == UInt64(regions.count)
    else { return nil }
    for region in 0..<regions.count {
      let word = integer(headerSize + (region >> 6) * 8, UInt64.self)
      if word & (1 << UInt64(region & 63)) != 0 { regions.insert(region) }
    }
    return regions
  }
}
