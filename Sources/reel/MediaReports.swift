import ReelCore
import ReelMedia

/// An archive copy on media, as `media list --json` and `media needed --json` show it.
struct ArchiveCopyJSON: Encodable {
  var copy: ArchiveCopy

  private enum CodingKeys: String, CodingKey {
    case cartridge, volume, size, sha256, verified
    case archiveID = "archive_id"
    case mediaSet = "media_set"
    case cartridgeID = "cartridge_id"
    case tapeFile = "tape_file"
    case chainID = "chain_id"
    case chainIndex = "chain_index"
    case fromSeq = "from_seq"
    case untilSeq = "until_seq"
    case fromTime = "from_time"
    case untilTime = "until_time"
  }

  func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(copy.archiveID, forKey: .archiveID)
    try container.encode(copy.mediaSet, forKey: .mediaSet)
    try container.encode(copy.cartridgeLabel, forKey: .cartridge)
    try container.encode(copy.cartridgeID, forKey: .cartridgeID)
    try container.encode(copy.tapeFile, forKey: .tapeFile)
    try container.encode(copy.volumeName, forKey: .volume)
    try container.encode(copy.chainID, forKey: .chainID)
    try container.encode(copy.chainIndex, forKey: .chainIndex)
    try container.encode(copy.fromSeq, forKey: .fromSeq)
    try container.encode(copy.untilSeq, forKey: .untilSeq)
    try container.encode(copy.fromTime.rfc3339, forKey: .fromTime)
    try container.encode(copy.untilTime.rfc3339, forKey: .untilTime)
    try container.encode(copy.size, forKey: .size)
    try container.encode(copy.sha256, forKey: .sha256)
    try container.encode(copy.verified.rfc3339, forKey: .verified)
  }
}

/// One cartridge of `reel media list --json`, with the archive copies on it.
struct CartridgeJSON: Encodable {
  var label: String
  var cartridgeID: String
  @NullIfAbsent var mediaSet: String?
  @NullIfAbsent var mediaSetID: String?
  var sequence: Int
  var address: String
  var full: Bool
  var archives: [ArchiveCopyJSON]

  init(_ cartridge: CartridgeRecord, copies: [ArchiveCopy]) {
    label = cartridge.label
    cartridgeID = cartridge.cartridgeID
    mediaSet = cartridge.mediaSet
    mediaSetID = cartridge.mediaSetID
    sequence = cartridge.sequence
    address = cartridge.address
    full = cartridge.closed
    archives = copies.filter { $0.cartridgeID == cartridge.cartridgeID }.map(ArchiveCopyJSON.init)
  }

  private enum CodingKeys: String, CodingKey {
    case label, sequence, address, full, archives
    case cartridgeID = "cartridge_id"
    case mediaSet = "media_set"
    case mediaSetID = "media_set_id"
  }
}

/// `reel media needed --json`: the archives a restore needs and the cartridges of each set.
struct RestorePlanJSON: Encodable {
  struct Archive: Encodable {
    var archiveID: String
    var chainIndex: Int
    var fromTime: String
    var untilTime: String
    var copies: [ArchiveCopyJSON]

    private enum CodingKeys: String, CodingKey {
      case copies
      case archiveID = "archive_id"
      case chainIndex = "chain_index"
      case fromTime = "from_time"
      case untilTime = "until_time"
    }
  }

  struct MediaSet: Encodable {
    struct Cartridge: Encodable {
      var label: String
      var files: [Int]
    }

    var mediaSet: String
    var complete: Bool
    var missing: [String]
    var cartridges: [Cartridge]

    private enum CodingKeys: String, CodingKey {
      case complete, missing, cartridges
      case mediaSet = "media_set"
    }
  }

  var volume: String
  var point: String
  var chainID: String
  var archives: [Archive]
  var mediaSets: [MediaSet]

  init(_ plan: RestorePlan) {
    volume = plan.volume
    point = plan.point.description
    chainID = plan.chainID
    archives = plan.archives.map {
      Archive(
        archiveID: $0.archiveID, chainIndex: $0.chainIndex, fromTime: $0.fromTime.rfc3339,
        untilTime: $0.untilTime.rfc3339, copies: $0.copies.map(ArchiveCopyJSON.init))
    }
    mediaSets = plan.sets.map {
      MediaSet(
        mediaSet: $0.mediaSet, complete: $0.missing.isEmpty, missing: $0.missing,
        cartridges: $0.cartridges.map { MediaSet.Cartridge(label: $0.label, files: $0.files) })
    }
  }

  private enum CodingKeys: String, CodingKey {
    case volume, point, archives
    case chainID = "chain_id"
    case mediaSets = "media_sets"
  }
}

/// `reel media catalog --json`: a cartridge's catalog as it is on the medium (one line),
/// or an array of them for a library.
struct CatalogsJSON: Encodable {
  var catalogs: [CartridgeCatalog]
  var library: Bool

  func encode(to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    if library {
      try container.encode(catalogs)
    } else {
      try container.encode(catalogs[0])
    }
  }
}
