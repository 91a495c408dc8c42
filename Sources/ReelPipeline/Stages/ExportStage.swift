import Foundation
import ReelCore
import ReelMedia

extension StageKind {
  package static let export = StageKind(rawValue: "export")
}

/// Copies the archives to the media set, each read back and verified.
struct ExportStage: PipelineStage {
  static let kind = StageKind.export
  static let parameters = [
    ParameterSpec("to", .media, required: true, "the media to write to"),
    ParameterSpec("media-set", .string, "media set (default: the file's media-set)"),
  ]
  static let needsMediaSet = true

  let name: String
  let targets: [MediaAddress]
  let mediaSet: String?

  init(_ definition: StageDefinition) {
    name = definition.name
    targets = definition.media("to") ?? []
    mediaSet = definition.string("media-set")
  }

  func run(_ context: PipelineContext) throws -> StageOutcome {
    var outcome = StageOutcome()
    let set = context.mediaSet(named: mediaSet)
    let todo = try PipelineArchives.pending(in: set, context)
    if context.dryRun {
      for archive in todo {
        outcome.lines.append(
          "would export \(archive.fileName) (\(ByteSize.describe(archive.size))) to media set \(set)")
        outcome.bytes += archive.size
      }
      outcome.items = todo.count
      outcome.lines.append(
        "…and whatever the seal stage of this run seals; targets: \(targets.map(\.description).joined(separator: ", "))"
      )
      outcome.message = "\(todo.count) archive(s) to export"
      return outcome
    }
    try PipelineArchives.requireFiles(todo, mediaSet: set)
    guard !todo.isEmpty else {
      try PipelineArchives.requireEveryVolume(on: set, after: name, context)
      outcome.message = "nothing to export: every archive is on media set \(set)"
      return outcome
    }
    let (report, lines, bytes) = try PipelineArchives.exportArchives(
      todo.map(\.path), to: targets, mediaSet: set, context: context, verb: "written to")
    outcome.lines = lines
    for copy in report.abandoned {
      outcome.lines.append(
        "cut off at end of media on \(copy.cartridgeLabel) file \(copy.tapeFile); written whole on the next cartridge")
    }
    outcome.bytes = bytes
    outcome.items = report.exported.filter { !$0.alreadyThere }.count
    try PipelineArchives.requireEveryVolume(on: set, after: name, context)
    outcome.message = "\(outcome.items) archive(s) exported to media set \(set)"
    return outcome
  }
}
