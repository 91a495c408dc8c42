import ReelCore
import ReelMedia

/// `reel rehydrate --json`.
struct RehydrateJSON: Encodable {
  /// History lost to damage beyond repair (`LostHistory`).
  struct Lost: Encodable {
    var archive: String
    var archiveID: String
    var location: String
    var fromSeq: Seq
    var untilSeq: Seq
    @NullIfAbsent var fromTime: String?
    @NullIfAbsent var untilTime: String?
    var damage: [String]
    @NullIfAbsent var reason: String?
    @NullIfAbsent var importedThrough: Seq?
    var sentence: String

    init(_ lost: LostHistory) {
      archive = lost.archive
      archiveID = lost.archiveID
      location = lost.location
      fromSeq = lost.fromSeq
      untilSeq = lost.untilSeq
      fromTime = lost.fromTime
      untilTime = lost.untilTime
      damage = lost.damage
      reason = lost.reason
      importedThrough = lost.importedThrough
      sentence = lost.sentence
    }

    private enum CodingKeys: String, CodingKey {
      case archive, location, damage, reason, sentence
      case archiveID = "archive_id"
      case fromSeq = "from_seq"
      case untilSeq = "until_seq"
      case fromTime = "from_time"
      case untilTime = "until_time"
      case importedThrough = "imported_through"
    }
  }

  struct Volume: Encodable {
    var volume: String
    var chainID: String
    var complete: Bool
    var imported: [String]
    var alreadyInStore: [String]
    var setAside: [String]
    var missing: [String]
    var damaged: [String]
    var withheld: [String]
    var restorableUntilSeq: Seq
    @NullIfAbsent var restorableUntilTime: String?
    var restorableBookmarks: [String]
    var bytesRead: UInt64
    var contentVerified: Bool
    var neededBy: [String]
    var repaired: [String]
    var damageOnMedia: [String]
    var lost: [Lost]
    var notImported: [String]

    init(_ result: RehydratedVolume) {
      volume = result.volume
      chainID = result.chainID
      complete = result.complete
      imported = result.imported.map(\.fileName)
      alreadyInStore = result.alreadyInStore.map(\.fileName)
      setAside = result.setAside.map(\.fileName)
      missing = result.missing
      damaged = result.damaged
      withheld = result.withheld
      restorableUntilSeq = result.restorableUntilSeq
      restorableUntilTime = result.restorableUntilTime
      restorableBookmarks = result.restorableBookmarks
      bytesRead = result.bytesRead
      contentVerified = result.contentVerified
      neededBy = result.neededBy
      repaired = result.repaired
      damageOnMedia = result.damageOnMedia
      lost = result.lost.map(Lost.init)
      notImported = result.notImported
    }

    private enum CodingKeys: String, CodingKey {
      case volume, complete, imported, missing, damaged, withheld
      case chainID = "chain_id"
      case alreadyInStore = "already_in_store"
      case setAside = "set_aside"
      case restorableUntilSeq = "restorable_until_seq"
      case restorableUntilTime = "restorable_until_time"
      case restorableBookmarks = "restorable_bookmarks"
      case bytesRead = "bytes_read"
      case contentVerified = "content_verified"
      case neededBy = "needed_by"
      case repaired
      case damageOnMedia = "damage_on_media"
      case lost
      case notImported = "not_imported"
    }
  }

  var store: String
  var complete: Bool
  /// Complete and no medium damaged (exit 0).
  var clean: Bool
  var refused: [String]
  var mediaProblems: [String]
  var volumes: [Volume]

  init(_ report: RehydrateReport, store: String) {
    self.store = store
    complete = report.complete
    clean = report.clean
    refused = report.refused
    mediaProblems = report.mediaProblems
    volumes = report.volumes.map(Volume.init)
  }

  private enum CodingKeys: String, CodingKey {
    case store, complete, clean, refused, volumes
    case mediaProblems = "media_problems"
  }
}
