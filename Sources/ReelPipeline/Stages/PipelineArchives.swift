import Foundation
import ReelArchive
import ReelCore
import ReelMedia
import ReelStore

/// The pipeline's sealed archives and their copies on media sets, as the stages that
/// verify, export and copy them share them.
enum PipelineArchives {
  /// The catalog's archives of the pipeline's volumes, by volume and chain order.
  static func of(_ context: PipelineContext) throws -> [SealedArchiveRecord] {
    var result: [SealedArchiveRecord] = []
    for volume in context.volumes {
      let descriptor = try context.store.layout.descriptor(of: volume)
      result += try context.live.sealedArchives(of: descriptor)
    }
    return result
  }

  /// Archives with no verified copy in the media set yet.
  static func pending(in mediaSet: String, _ context: PipelineContext) throws -> [SealedArchiveRecord] {
    let onSet = Set(try context.catalog.archiveCopies(mediaSet: mediaSet).map(\.archiveID))
    return try of(context).filter { !onSet.contains($0.id) }
  }

  static func requireFiles(_ archives: [SealedArchiveRecord], mediaSet: String) throws {
    let missing = archives.filter { !FileManager.default.fileExists(atPath: $0.path) }
    guard !missing.isEmpty else { return }
    throw ReelError(
      .notFound,
      "\(missing.count) archive(s) have no copy on media set \(mediaSet) and their files are gone: "
        + missing.map(\.path).joined(separator: ", "),
      remedy: "put the files back, or seal a new chain (reel seal --new-chain); their journal segments are kept")
  }

  /// The promise of a job that exports: once its last stage that puts archives on a media
  /// set or checks them there is done, every volume it protects has an archive on that set.
  /// A volume without one would not survive losing the store, however well the rest went,
  /// so the run fails and names it.
  static func requireEveryVolume(on set: String, after stageName: String, _ context: PipelineContext) throws {
    let stages = context.definition.stages
    guard !context.dryRun, stages.contains(where: { $0.kind == .export && context.mediaSet(of: $0) == set }),
      stages.last(where: { ($0.kind == .export || $0.kind == .verifyOnMedia) && context.mediaSet(of: $0) == set })?
        .name == stageName
    else { return }
    let unprotected = try volumesWithoutCopies(on: set, context)
    guard !unprotected.isEmpty else { return }
    throw ReelError(
      .notFound,
      "\(unprotected.count) volume(s) have no verified archive on media set \(set): "
        + unprotected.map { "\($0.volume) (\($0.why))" }.joined(separator: "; "),
      remedy:
        "nothing of them would survive losing this store: see the cut, seal and export stages above for why, fix that (a volume written without a flush yet: `reel seal VOLUME --until latest`), then run the pipeline again"
    )
  }

  /// The pipeline's volumes of which the set holds no archive. A copy counts when it is
  /// recorded (read back and verified when exported, or checked with the key frame by frame
  /// when a store was rehydrated from it) and its newest keyed check on media did not fail.
  static func volumesWithoutCopies(on set: String, _ context: PipelineContext) throws
    -> [(volume: String, why: String)]
  {
    let failed = Set(
      try context.catalog.mediaChecks().filter { !$0.ok }.map { "\($0.archiveID)/\($0.cartridgeID)/\($0.tapeFile)" })
    let held = Set(
      try context.catalog.archiveCopies(mediaSet: set).filter {
        !failed.contains("\($0.archiveID)/\($0.cartridgeID)/\($0.tapeFile)")
      }.map(\.archiveID))
    var result: [(volume: String, why: String)] = []
    for volume in context.volumes {
      let archives = try context.live.sealedArchives(of: try context.store.layout.descriptor(of: volume))
      if archives.isEmpty {
        result.append((volume, "nothing of it is sealed"))
      } else if !archives.contains(where: { held.contains($0.id) }) {
        result.append((volume, "\(archives.count) archive(s) sealed, none with a good copy on the set"))
      }
    }
    return result
  }

  /// Exports archive files to a media set, one event per archive verified on the media.
  static func exportArchives(
    _ paths: [String], to targets: [MediaAddress], mediaSet: String, context: PipelineContext, verb: String
  ) throws -> (report: ExportReport, lines: [String], bytes: UInt64) {
    var exporter = Exporter(mediaSet: mediaSet, targets: targets, store: context.catalog)
    var done = 0
    exporter.progress = { context.progress($0, done: done, total: paths.count) }
    var lines: [String] = []
    var bytes: UInt64 = 0
    exporter.exported = { archive in
      done += 1
      if !archive.alreadyThere { bytes += archive.size }
      lines.append(
        "\(archive.fileName): \(archive.alreadyThere ? "already on" : verb) \(archive.cartridgeLabel) file \(archive.tapeFile), read back and verified"
      )
      context.event("exported \(archive.fileName) to \(mediaSet)")
    }
    let report = try exporter.export(paths)
    for parity in report.parity {
      lines.append(
        "parity of group \(parity.group) (\(parity.members.joined(separator: ", "))) written to \(parity.parityLabel)")
    }
    // The archives are on media either way; a group left without parity is said, not hidden.
    for warning in report.parityWarnings {
      lines.append("parity NOT written for \(warning)")
      context.event("parity not written on \(mediaSet): \(warning)")
    }
    return (report, lines, bytes)
  }

  /// An archive's window for people; a first archive may hold only the state it starts from.
  static func window(_ from: Seq, _ until: Seq) -> String {
    until > from ? "seq \(from + 1)…\(until)" : "the state at seq \(from)"
  }

  /// The media's path exists here (a cartridge sent offsite is not at hand).
  static func isAtHand(_ address: MediaAddress) -> Bool {
    switch address {
    case .folder(let path), .virtualTape(let path), .tapeDrive(let path): FileManager.default.fileExists(atPath: path)
    // Object storage is reached over the network; whether it answers is found when it is read.
    case .objectStore: true
    }
  }
}
