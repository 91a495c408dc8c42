import Foundation
import ReelArchive
import ReelCore
import ReelIO
import ReelMedia
import ReelStore

extension StageKind {
  package static let rehydrate = StageKind(rawValue: "rehydrate")
}

/// Rebuilds a scratch store from the media and the key (the first half of a DR drill).
struct RehydrateStage: PipelineStage {
  static let kind = StageKind.rehydrate
  static let parameters = [
    ParameterSpec("from", .media, "media to read (default: the media set's cartridges as the store knows them)"),
    ParameterSpec("media-set", .string, "media set to read (default: the file's media-set)"),
    ParameterSpec("scratch", .string, "scratch store folder (default: <store>/drill/run-N)"),
  ]
  static let needsKey = true

  static func placementProblems(_ stage: StageDefinition, after earlier: [StageDefinition], mediaSet: String?)
    -> [(message: String, fix: String)]
  {
    guard stage.media("from") == nil && stage.string("media-set") == nil && mediaSet == nil else { return [] }
    return [
      (
        "stage \"\(stage.name)\" (rehydrate) does not say where the archives are",
        "add `from: [MEDIA...]` or `media-set: NAME` (its cartridges as the store knows them)"
      )
    ]
  }

  let from: [MediaAddress]
  let mediaSet: String?
  let scratch: String?

  init(_ definition: StageDefinition) {
    from = definition.media("from") ?? []
    mediaSet = definition.string("media-set")
    scratch = definition.string("scratch")
  }

  func run(_ context: PipelineContext) throws -> StageOutcome {
    var outcome = StageOutcome()
    let scratch =
      context.state.scratchStore ?? self.scratch
      ?? context.store.layout.root + "/drill/run-\(context.runID.map(String.init) ?? "N")"
    var addresses = from
    if addresses.isEmpty {
      let set = context.mediaSet(named: mediaSet)
      addresses = try context.catalog.cartridges().filter { $0.mediaSet == set && $0.sequence > 0 }
        .compactMap { try? MediaAddress(parsing: $0.address) }.filter(PipelineArchives.isAtHand)
      guard !addresses.isEmpty else {
        throw ReelError(
          .notFound, "no cartridge of media set \(set) is at hand",
          remedy: "load the set's cartridges, or give the stage `from: [MEDIA...]`")
      }
    }
    if context.dryRun {
      outcome.lines.append(
        "would rehydrate \(context.definition.volumes?.joined(separator: ", ") ?? "every volume") from \(addresses.map(\.description).joined(separator: ", ")) into the scratch store \(scratch)"
      )
      outcome.message = "rehydrate planned"
      return outcome
    }
    if context.state.scratchStore == nil {
      // A scratch folder left by an earlier drill is never reused: it would merge.
      if FileManager.default.fileExists(atPath: scratch) { try FileManager.default.removeItem(atPath: scratch) }
      try context.state.setScratchStore(scratch)
    }
    let supplies = try addresses.map { try MediaArchiveSupply($0) }
    let store = try Store.initialize(StoreLayout(root: scratch)).store
    var current = ""
    let report = try Rehydrator.run(
      RehydrateRequest(supplies: supplies, masterKeys: try context.keys(), volumes: context.definition.volumes ?? []),
      store: store,
      progress: { progress in
        if progress.archive != current {
          current = progress.archive
          context.event("importing \(progress.archive)")
        }
        context.progress(
          "\(progress.archive) \(ByteSize.describe(progress.bytes)) from \(progress.location)",
          done: progress.number - 1,
          total: progress.count)
      })
    for volume in report.volumes {
      outcome.items += volume.imported.count
      outcome.bytes += volume.bytesRead
      // Only what the scratch store can restore: a volume whose whole history is its first
      // archive's state at seq 0 restores at seq 0, one with no archive imported does not.
      if !volume.imported.isEmpty || !volume.alreadyInStore.isEmpty {
        try context.state.setLatestRehydrated(volume.restorableUntilSeq, volume: volume.volume)
      }
      outcome.lines.append(
        "\(volume.volume): \(volume.imported.count) archive(s) imported, \(volume.alreadyInStore.count) already there; restorable up to seq \(volume.restorableUntilSeq) (\(volume.restorableUntilTime ?? "-"))"
      )
      for missing in volume.missing { outcome.lines.append("  MISSING \(missing)") }
      for damaged in volume.damaged { outcome.lines.append("  DAMAGED \(damaged)") }
      for repaired in volume.repaired { outcome.lines.append("  REPAIRED \(repaired)") }
      for range in volume.damageOnMedia { outcome.lines.append("  MEDIA \(range)") }
    }
    for problem in report.mediaProblems { outcome.lines.append("MEDIA \(problem)") }
    let missing = Self.notRehydrated(context)
    for volume in missing {
      outcome.lines.append("\(volume): NOT REHYDRATED — no archive of it could be imported from the media")
    }
    outcome.partial = !report.clean
    try context.state.setRepairedArchives(report.volumes.reduce(0) { $0 + $1.repaired.count }, stage: context.stageName)
    outcome.message =
      "\(report.volumes.count - missing.count) volume(s) rehydrated into \(scratch)"
      + (report.complete ? "" : " (incomplete)")
      + (missing.isEmpty ? "" : "; not rehydrated: \(missing.joined(separator: ", "))")
    // The compare stage reports them after comparing the rest; without one the drill ends here.
    if !missing.isEmpty && !context.definition.stages.contains(where: { $0.kind == .compare }) {
      throw Self.notRehydratedError(missing)
    }
    return outcome
  }

  /// Volumes of the store the drill protects that the scratch store cannot restore.
  static func notRehydrated(_ context: PipelineContext) -> [String] {
    context.volumes.filter { context.state.latestRehydrated(volume: $0) == nil }
  }

  /// `comparedAlike`: the volumes the compare stage found identical, said here because a
  /// failed stage's report keeps only its message.
  static func notRehydratedError(_ missing: [String], comparedAlike: Int? = nil) -> ReelError {
    ReelError(
      .notFound,
      "\(missing.count) volume(s) of the store could not be rebuilt from the media: \(missing.joined(separator: ", "))"
        + (comparedAlike.map { "; the other \($0) volume(s) were restored and identical to the live store" } ?? ""),
      remedy:
        "a disaster would lose them: seal and export them (the nightly pipeline), or see the rehydrate stage's lines for archives missing or damaged on the media"
    )
  }
}
