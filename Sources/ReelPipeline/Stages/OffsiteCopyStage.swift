import Foundation
import ReelArchive
import ReelCodec
import ReelCore
import ReelIO
import ReelMedia
import ReelStore

extension StageKind {
  package static let offsiteCopy = StageKind(rawValue: "offsite-copy")
}

/// Copies the recent archives of one media set to another: from the archive file when it
/// is still there, else read back from a cartridge of the source set.
struct OffsiteCopyStage: PipelineStage {
  static let kind = StageKind.offsiteCopy
  static let parameters = [
    ParameterSpec("from-media-set", .string, required: true, "the media set to copy from"),
    ParameterSpec("to", .media, required: true, "the offsite media to write to"),
    ParameterSpec("media-set", .string, "the offsite media set (default: the file's media-set)"),
    ParameterSpec("since", .duration, "archives whose history ends within this window (default 7d)"),
  ]
  static let needsMediaSet = true

  let fromMediaSet: String
  let targets: [MediaAddress]
  let mediaSet: String?
  let window: Duration

  init(_ definition: StageDefinition) {
    fromMediaSet = definition.string("from-media-set") ?? "default"
    targets = definition.media("to") ?? []
    mediaSet = definition.string("media-set")
    window = definition.duration("since") ?? .seconds(7 * 86_400)
  }

  func run(_ context: PipelineContext) throws -> StageOutcome {
    var outcome = StageOutcome()
    let from = fromMediaSet
    let set = context.mediaSet(named: mediaSet)
    let cutoff = Timestamp(nanoseconds: Timestamp.now().nanoseconds - window.nanoseconds)
    let wanted = Set(try PipelineArchives.of(context).map(\.id))
    let sourceCopies = try context.catalog.archiveCopies(mediaSet: from).filter {
      $0.untilTime >= cutoff && (context.definition.volumes == nil || wanted.contains($0.archiveID))
    }
    let already = Set(try context.catalog.archiveCopies(mediaSet: set).map(\.archiveID))
    var order: [String] = []
    for copy in sourceCopies.sorted(by: { ($0.volumeName, $0.chainIndex) < ($1.volumeName, $1.chainIndex) })
    where !already.contains(copy.archiveID) && !order.contains(copy.archiveID) {
      order.append(copy.archiveID)
    }
    let records = Dictionary(try allArchives(context).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    if context.dryRun {
      for id in order {
        let copy = sourceCopies.first { $0.archiveID == id }!
        let local = records[id].map { FileManager.default.fileExists(atPath: $0.path) } ?? false
        outcome.lines.append(
          "would copy \(copy.volumeName) \(PipelineArchives.window(copy.fromSeq, copy.untilSeq)) to media set \(set) from \(local ? "its local file" : "\(copy.cartridgeLabel) file \(copy.tapeFile)")"
        )
        outcome.bytes += copy.size
      }
      outcome.items = order.count
      outcome.message = "\(order.count) archive(s) to copy offsite"
      return outcome
    }
    guard !order.isEmpty else {
      outcome.message =
        "nothing to copy: media set \(set) holds every archive of media set \(from) since \(cutoff.rfc3339)"
      return outcome
    }
    let staging = context.store.layout.root + "/run/offsite-staging"
    defer { try? FileManager.default.removeItem(atPath: staging) }
    var paths: [String] = []
    for id in order {
      if let record = records[id], let size = try? PosixFile.openForReading(record.path).size(), size == record.size {
        paths.append(record.path)
        continue
      }
      paths.append(
        try stageFromMedia(id, copies: sourceCopies.filter { $0.archiveID == id }, into: staging, context: context))
    }
    let (report, lines, bytes) = try PipelineArchives.exportArchives(
      paths, to: targets, mediaSet: set, context: context, verb: "copied to")
    outcome.lines = lines
    outcome.bytes = bytes
    outcome.items = report.exported.filter { !$0.alreadyThere }.count
    outcome.message = "\(outcome.items) archive(s) copied from media set \(from) to \(set)"
    return outcome
  }

  func allArchives(_ context: PipelineContext) throws -> [SealedArchiveRecord] {
    var result: [SealedArchiveRecord] = []
    for volume in context.store.layout.volumeNames() {
      result += try context.live.sealedArchives(of: try context.store.layout.descriptor(of: volume))
    }
    return result
  }

  /// Reads an archive off a cartridge of the source set into a staging file, checked
  /// against the SHA-256 recorded when that copy was verified.
  func stageFromMedia(_ id: String, copies: [ArchiveCopy], into staging: String, context: PipelineContext)
    throws -> String
  {
    let cartridges = try context.catalog.cartridges()
    for copy in copies {
      guard let record = cartridges.first(where: { $0.cartridgeID == copy.cartridgeID }),
        let address = try? MediaAddress(parsing: record.address), PipelineArchives.isAtHand(address)
      else { continue }
      try Durable.makeDirectory(staging)
      let path = staging + "/" + id + ArchiveFormat.fileSuffix
      let partial = path + ".partial"
      context.progress(
        "reading \(copy.volumeName) archive \(id.prefix(8)) from \(copy.cartridgeLabel) file \(copy.tapeFile)")
      var source = try address.openOne().openArchive(file: copy.tapeFile, size: copy.size)
      unlink(partial)  // a killed copy's; a link planted there is removed, never followed
      let file = try PosixFile.createNew(partial)
      let hasher = SHA256Hasher()
      let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
      defer { buffer.deallocate() }
      var offset: UInt64 = 0
      while true {
        let count = try source.read(into: buffer)
        if count == 0 { break }
        let piece = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
        hasher.update(piece)
        try file.write(piece, at: offset)
        offset += UInt64(count)
      }
      try file.sync()
      guard hasher.finish().hex == copy.sha256 else {
        unlink(partial)
        continue
      }
      try Durable.rename(partial, to: path)
      return path
    }
    throw ReelError(
      .notFound, "archive \(id) is not at hand: its file is gone and no cartridge holding it is reachable",
      remedy: "load a cartridge of the source set that holds it (reel media needed shows which)")
  }
}
