/// What defines a protected volume. Stored as `volume.json` in the volume's folder so the
/// capture server and the journal can find it without the catalog.
/// Version 2 added `storeBlockSize`; a version 1 file means 64 KiB store blocks.
package struct VolumeDescriptor: Codable, Sendable, Equatable {
  package static let formatVersion = 2
  package static let readableVersions = 1...2
  /// Store blocks of volumes created before the size was recorded (descriptor version 1).
  package static let legacyStoreBlockSize: UInt32 = 64 * 1024
  /// Store blocks of new volumes: large enough that per-chunk compression loses little
  /// against one stream and that restores read few, long records (docs/store-format.md).
  package static let defaultStoreBlockSize: UInt32 = 256 * 1024

  package var formatVersion: Int
  package var id: VolumeID
  package var name: String
  /// Size in bytes, a multiple of `blockSize`.
  package var size: UInt64
  package var blockSize: UInt32
  /// The live store cuts this volume into blocks of this many bytes (a power of two and
  /// a multiple of `blockSize`); fixed for the volume's life, since chunks and versions
  /// are keyed by it.
  package var storeBlockSize: UInt32
  package var created: Timestamp
  /// True when the volume started from an image, kept as `base.img`; else it started as zeros.
  package var hasBase: Bool

  package init(
    id: VolumeID = VolumeID(), name: String, size: UInt64, blockSize: UInt32, created: Timestamp,
    hasBase: Bool = false, storeBlockSize: UInt32 = Self.defaultStoreBlockSize
  ) {
    self.formatVersion = Self.formatVersion
    self.id = id
    self.name = name
    self.size = size
    self.blockSize = blockSize
    self.storeBlockSize = storeBlockSize
    self.created = created
    self.hasBase = hasBase
  }

  private enum CodingKeys: String, CodingKey {
    case formatVersion, id, name, size, blockSize, storeBlockSize, created, hasBase
  }

  package init(from decoder: any Decoder) throws {
    let container = try decoder.container(keyedBy: CodingKeys.self)
    formatVersion = try container.decode(Int.self, forKey: .formatVersion)
    id = try container.decode(VolumeID.self, forKey: .id)
    name = try container.decode(String.self, forKey: .name)
    size = try container.decode(UInt64.self, forKey: .size)
    blockSize = try container.decode(UInt32.self, forKey: .blockSize)
    storeBlockSize =
      try container.decodeIfPresent(UInt32.self, forKey: .storeBlockSize) ?? Self.legacyStoreBlockSize
    created = try container.decode(Timestamp.self, forKey: .created)
    hasBase = try container.decode(Bool.self, forKey: .hasBase)
  }

  /// Store block sizes a volume may use: powers of two from 64 KiB to 4 MiB.
  package static func validate(storeBlockSize: UInt32) throws {
    guard storeBlockSize >= 64 * 1024, storeBlockSize <= 4 << 20, storeBlockSize & (storeBlockSize - 1) == 0 else {
      throw ReelError(
        .usage, "store block size \(storeBlockSize) is not supported",
        remedy: "use a power of two from 64K to 4M, e.g. --store-block-size 256K")
    }
  }

  /// Names become folder names and NBD export names: keep them portable.
  package static func validate(name: String) throws {
    let allowed = name.utf8.allSatisfy { c in
      (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 45 || c == 95 || c == 46
    }
    guard !name.isEmpty, name.utf8.count <= 64, allowed, !name.hasPrefix(".") else {
      throw ReelError(
        .usage, "invalid volume name \"\(name)\"",
        remedy: "use 1 to 64 letters, digits, '-', '_' or '.', not starting with '.'")
    }
  }
}
