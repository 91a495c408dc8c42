import Foundation
import ReelCore
import ReelIO
import ReelMedia

extension StageKind {
  static let recordCatalog = StageKind(rawValue: "record-catalog")
}

/// Keeps a consistent copy of the store catalog (and a media list) beside the archives.
struct RecordCatalogStage: PipelineStage {
  static let kind = StageKind.recordCatalog
  static let parameters = [
    ParameterSpec("to", .string, "folder for catalog copies (default: <store>/catalog-copies)"),
    ParameterSpec("keep", .integer(minimum: 1), "how many copies to keep (default 14)"),
  ]

  let folder: String?
  let keep: Int

  init(_ definition: StageDefinition) {
    folder = definition.string("to")
    keep = definition.integer("keep") ?? 14
  }

  func run(_ context: PipelineContext) throws -> StageOutcome {
    var outcome = StageOutcome()
    let folder = self.folder ?? context.store.layout.root + "/catalog-copies"
    let prefix = "catalog-\(context.definition.name)-run"
    let base = folder + "/" + prefix + (context.runID.map(String.init) ?? "N")
    if context.dryRun {
      outcome.lines.append("would copy the store catalog to \(base).sqlite and list the media in \(base).media.json")
      outcome.message = "catalog copy planned"
      return outcome
    }
    try Durable.makeDirectory(folder)
    if FileManager.default.fileExists(atPath: base + ".sqlite")
      && FileManager.default.fileExists(atPath: base + ".media.json")
    {
      outcome.lines.append("already recorded: \(base).sqlite")
    } else {
      try context.catalog.snapshot(to: base + ".sqlite")
      try Durable.replaceFile(at: base + ".media.json", with: try mediaListJSON(context))
      try Durable.syncDirectory(folder)
      context.event("catalog copied to \(base).sqlite")
      outcome.lines.append("catalog copied to \(base).sqlite; media list in \(base).media.json")
    }
    outcome.bytes = (try? PosixFile.openForReading(base + ".sqlite").size()) ?? 0
    outcome.items = 1
    // Keep the newest copies of this pipeline.
    let runs = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).compactMap { name -> Int? in
      guard name.hasPrefix(prefix), name.hasSuffix(".sqlite") else { return nil }
      return Int(name.dropFirst(prefix.count).dropLast(".sqlite".count))
    }.sorted()
    for old in runs.dropLast(keep) {
      for suffix in [".sqlite", ".media.json"] { unlink(folder + "/" + prefix + String(old) + suffix) }
      outcome.lines.append("dropped the copy of run \(old) (keeping \(keep))")
    }
    try Durable.syncDirectory(folder)
    outcome.message = "catalog recorded"
    return outcome
  }

  /// Media sets, cartridges and the archive copies on each, as JSON for a person or a script.
  func mediaListJSON(_ context: PipelineContext) throws -> [UInt8] {
    let copies = try context.catalog.archiveCopies()
    let document = MediaListDocument(
      written: Timestamp.now().rfc3339,
      cartridges: try context.catalog.cartridges().map { cartridge in
        MediaListDocument.Cartridge(
          cartridge, archives: copies.filter { $0.cartridgeID == cartridge.cartridgeID })
      })
    return Array(try ReportJSON.encode(document, pretty: true)) + [10]
  }
}

/// The media list beside each catalog copy (`*.media.json`, indented).
struct MediaListDocument: Encodable {
  struct Cartridge: Encodable {
    var label: String
    var cartridgeID: String
    @NullIfAbsent var mediaSet: String?
    var sequence: Int
    var address: String
    var closed: Bool
    var archives: [Archive]

    init(_ cartridge: CartridgeRecord, archives: [ArchiveCopy]) {
      label = cartridge.label
      cartridgeID = cartridge.cartridgeID
      mediaSet = cartridge.mediaSet
      sequence = cartridge.sequence
      address = cartridge.address
      closed = cartridge.closed
      self.archives = archives.map(Archive.init)
    }

    private enum CodingKeys: String, CodingKey {
      case label, sequence, address, closed, archives
      case cartridgeID = "cartridge_id"
      case mediaSet = "media_set"
    }
  }

  struct Archive: Encodable {
    var archiveID: ArchiveID
    var volume: String
    var tapeFile: Int
    var fromSeq: Seq
    var untilSeq: Seq
    var fromTime: String
    var untilTime: String
    var size: UInt64
    var sha256: String

    init(_ copy: ArchiveCopy) {
      archiveID = copy.archiveID
      volume = copy.volumeName
      tapeFile = copy.tapeFile
      fromSeq = copy.fromSeq
      untilSeq = copy.untilSeq
      fromTime = copy.fromTime.rfc3339
      untilTime = copy.untilTime.rfc3339
      size = copy.size
      sha256 = copy.sha256
    }

    private enum CodingKeys: String, CodingKey {
      case volume, size, sha256
      case archiveID = "archive_id"
      case tapeFile = "tape_file"
      case fromSeq = "from_seq"
      case untilSeq = "until_seq"
      case fromTime = "from_time"
      case untilTime = "until_time"
    }
  }

  var written: String
  var cartridges: [Cartridge]
}
