import ReelCore
import ReelMedia

/// `reel export --json`.
struct ExportJSON: Encodable {
  struct Exported: Encodable {
    var archiveID: String
    var fileName: String
    var cartridge: String
    @NullIfAbsent var address: String?
    var tapeFile: Int
    var size: UInt64
    var alreadyThere: Bool

    init(_ archive: ExportedArchive) {
      archiveID = archive.archiveID
      fileName = archive.fileName
      cartridge = archive.cartridgeLabel
      address = archive.address
      tapeFile = archive.tapeFile
      size = archive.size
      alreadyThere = archive.alreadyThere
    }

    private enum CodingKeys: String, CodingKey {
      case cartridge, address, size
      case archiveID = "archive_id"
      case fileName = "file_name"
      case tapeFile = "tape_file"
      case alreadyThere = "already_there"
    }
  }

  struct Abandoned: Encodable {
    var archiveID: String
    var cartridge: String
    var tapeFile: Int

    init(_ copy: AbandonedCopy) {
      archiveID = copy.archiveID
      cartridge = copy.cartridgeLabel
      tapeFile = copy.tapeFile
    }

    private enum CodingKeys: String, CodingKey {
      case cartridge
      case archiveID = "archive_id"
      case tapeFile = "tape_file"
    }
  }

  var mediaSet: String
  var mediaSetID: String
  var exported: [Exported]
  var abandoned: [Abandoned]

  init(_ report: ExportReport) {
    mediaSet = report.mediaSet
    mediaSetID = report.mediaSetID
    exported = report.exported.map(Exported.init)
    abandoned = report.abandoned.map(Abandoned.init)
  }

  private enum CodingKeys: String, CodingKey {
    case exported, abandoned
    case mediaSet = "media_set"
    case mediaSetID = "media_set_id"
  }
}
