/// What defines a protected volume. Stored as `volume.json` in the volume's folder so the
/// capture server and the journal can find it without the catalog.
public struct VolumeDescriptor: Codable, Sendable, Equatable {
  public static let formatVersion = 1

  public var formatVersion: Int
  public var id: VolumeID
  public var name: String
  /// Size in bytes, a multiple of `blockSize`.
  public var size: UInt64
  public var blockSize: UInt32
  public var created: Timestamp
  /// True when the volume started from an image, kept as `base.img`; else it started as zeros.
  public var hasBase: Bool

  public init(
    id: VolumeID = VolumeID(), name: String, size: UInt64, blockSize: UInt32, created: Timestamp,
    hasBase: Bool = false
  ) {
    self.formatVersion = Self.formatVersion
    self.id = id
    self.name = name
    self.size = size
    self.blockSize = blockSize
    self.created = created
    self.hasBase = hasBase
  }

  /// Names become folder names and NBD export names: keep them portable.
  public static func validate(name: String) throws {
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
