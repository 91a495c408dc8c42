import Foundation
import ReelArchive
import ReelCore
import ReelMedia
import ReelStore

extension StageKind {
  package static let verifyOnMedia = StageKind(rawValue: "verify-on-media")
}

/// Reads each new copy back from the media and verifies it with the key.
struct VerifyOnMediaStage: PipelineStage {
  static let kind = StageKind.verifyOnMedia
  static let parameters = [ParameterSpec("media-set", .string, "media set (default: the file's media-set)")]
  static let needsKey = true
  static let needsMediaSet = true

  let name: String
  let mediaSet: String?

  init(_ definition: StageDefinition) {
    name = definition.name
    mediaSet = definition.string("media-set")
  }

  func run(_ context: PipelineContext) throws -> StageOutcome {
    var outcome = StageOutcome()
    let set = context.mediaSet(named: mediaSet)
    let ids = Set(try PipelineArchives.of(context).map(\.id))
    let checked = Set(
      try context.catalog.mediaChecks().filter(\.ok).map { "\($0.archiveID)/\($0.cartridgeID)/\($0.tapeFile)" })
    let todo = try context.catalog.archiveCopies(mediaSet: set).filter {
      (ids.contains($0.archiveID) || context.definition.volumes == nil)
        && !checked.contains("\($0.archiveID)/\($0.cartridgeID)/\($0.tapeFile)")
    }
    let cartridges = Dictionary(
      try context.catalog.cartridges().map { ($0.cartridgeID, $0) }, uniquingKeysWith: { first, _ in first })
    var failures: [String] = []
    var repairable = 0
    var number = 0
    for (cartridgeID, copies) in Dictionary(grouping: todo, by: \.cartridgeID).sorted(by: { $0.key < $1.key }) {
      let label = copies[0].cartridgeLabel
      guard let record = cartridges[cartridgeID], let address = try? MediaAddress(parsing: record.address),
        PipelineArchives.isAtHand(address)
      else {
        outcome.partial = true
        outcome.lines.append(
          "\(label): not at hand (\(cartridges[cartridgeID]?.address ?? "address unknown")); \(copies.count) cop(ies) not checked"
        )
        continue
      }
      if context.dryRun {
        for copy in copies {
          outcome.lines.append(
            "would read back \(copy.volumeName) archive \(copy.archiveID.prefix(8)) from \(label) file \(copy.tapeFile) and verify it with the key"
          )
        }
        outcome.items += copies.count
        continue
      }
      let medium = try address.openOne()
      for copy in copies.sorted(by: { $0.tapeFile < $1.tapeFile }) {
        number += 1
        let what =
          "\(copy.volumeName) \(PipelineArchives.window(copy.fromSeq, copy.untilSeq)) on \(label) file \(copy.tapeFile)"
        context.progress("reading back \(what)", done: number - 1, total: todo.count)
        var problems: [String]
        do {
          let result = try ArchiveVerifier.verify(
            source: try medium.openArchive(file: copy.tapeFile, size: copy.size), masterKeys: try context.keys(),
            label: what)
          problems = result.problems.map(\.description)
          if result.structure.sha256 != copy.sha256 { problems.append("its SHA-256 differs from the exported one") }
          if result.structure.manifest.archiveID != copy.archiveID { problems.append("it holds another archive") }
        } catch let error as ReelError {
          problems = [error.message]
        }
        try context.catalog.recordMediaCheck(
          MediaCheck(
            archiveID: copy.archiveID, cartridgeID: copy.cartridgeID, tapeFile: copy.tapeFile, checked: .now(),
            ok: problems.isEmpty, detail: problems.isEmpty ? nil : problems.joined(separator: "; ")))
        if problems.isEmpty {
          outcome.items += 1
          outcome.bytes += copy.size
          outcome.lines.append("\(what): OK with the key")
        } else {
          // The copy is damaged either way (it no longer counts); whether its parity can
          // still repair it says how urgent a new copy is.
          let repair = repairability(of: copy, on: medium, context)
          if repair.repairable { repairable += 1 }
          failures.append("\(what): " + problems.joined(separator: "; ") + repair.text)
        }
        context.event("checked \(what)")
      }
    }
    try context.state.setRepairedArchives(repairable, stage: context.stageName)
    if !failures.isEmpty {
      throw ReelError(
        .corrupt, "\(failures.count) cop(ies) on media failed verification: " + failures.joined(separator: " | "),
        remedy: "those copies no longer count; export to another cartridge (the journal segments stay until then)")
    }
    try PipelineArchives.requireEveryVolume(on: set, after: name, context)
    outcome.message = "\(outcome.items) cop(ies) verified on media set \(set)"
    return outcome
  }

  /// Reads the damaged copy again, repairs it from its parity in a private folder of the
  /// store, and says how that went; the repaired bytes are not kept (the copy on media
  /// stays damaged).
  private func repairability(
    of copy: ArchiveCopy, on medium: any MediaVolume, _ context: PipelineContext
  ) -> (text: String, repairable: Bool) {
    let folder = context.store.layout.root + "/incoming"
    do {
      guard
        let (_, outcome) = try ArchiveMending.mend(
          archiveID: copy.archiveID, in: folder, open: { try medium.openArchive(file: copy.tapeFile, size: copy.size) })
      else { return (" (no parity: not repairable)", false) }
      let ranges = outcome.ranges.map(\.sentence).joined(separator: "; ")
      return outcome.whole
        ? (" (repairable from its parity\(outcome.margin.map { ", \($0)" } ?? ""): \(ranges))", true)
        : (" (beyond what its parity can repair: \(ranges))", false)
    } catch {
      return (" (its parity could not be read: \(error))", false)
    }
  }
}
