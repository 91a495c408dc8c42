import Foundation
import ReelArchive
import ReelCore

extension StageKind {
  package static let verify = StageKind(rawValue: "verify")
}

/// Verifies with the key every archive not yet on the media set (without a set, every one
/// never verified).
struct VerifyStage: PipelineStage {
  static let kind = StageKind.verify
  static let parameters: [ParameterSpec] = []
  static let needsKey = true

  init(_ definition: StageDefinition) {}

  func run(_ context: PipelineContext) throws -> StageOutcome {
    var outcome = StageOutcome()
    let set = context.definition.mediaSet
    let todo =
      try set.map { try PipelineArchives.pending(in: $0, context) }
      ?? PipelineArchives.of(context).filter { $0.verified == nil }
    if let set { try PipelineArchives.requireFiles(todo, mediaSet: set) }
    var failures: [String] = []
    for (number, archive) in todo.enumerated() {
      if context.state.isVerified(archiveID: archive.id) {
        outcome.items += 1
        continue
      }
      if context.dryRun {
        outcome.lines.append("would verify \(archive.fileName) (\(ByteSize.describe(archive.size))) with the key")
        outcome.items += 1
        outcome.bytes += archive.size
        continue
      }
      context.progress("verifying \(archive.fileName)", done: number, total: todo.count)
      let result = try ArchiveVerifier.verify(path: archive.path, masterKeys: try context.keys())
      if result.problems.isEmpty && result.structure.sha256 == archive.sha256 {
        try context.catalog.markArchiveVerified(id: archive.id)
        try context.state.setVerified(archiveID: archive.id)
        outcome.items += 1
        outcome.bytes += archive.size
        outcome.lines.append(
          "\(archive.fileName): OK (\(result.framesChecked) frames, \(result.chunksChecked) chunks)")
        context.event("verified \(archive.fileName)")
      } else {
        let problems =
          result.problems.map(\.description)
          + (result.structure.sha256 == archive.sha256
            ? [] : ["its SHA-256 differs from the one recorded at seal time"])
        failures.append("\(archive.fileName): " + problems.joined(separator: "; "))
      }
    }
    if !failures.isEmpty {
      throw ReelError(
        .corrupt, "\(failures.count) archive(s) failed verification: " + failures.joined(separator: " | "),
        remedy: "they are not exported and their journal segments stay; check the disk, then seal a new chain")
    }
    outcome.message = "\(outcome.items) archive(s) verified"
    return outcome
  }
}
