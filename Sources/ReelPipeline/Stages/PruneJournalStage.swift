import Foundation
import ReelCore

extension StageKind {
  static let pruneJournal = StageKind(rawValue: "prune-journal")
}

/// Deletes journal segments that are sealed, verified and have N verified copies.
struct PruneJournalStage: PipelineStage {
  static let kind = StageKind.pruneJournal
  static let parameters = [
    ParameterSpec("copies", .integer(minimum: 1), required: true, "verified copies on media each archive needs"),
    ParameterSpec("media-sets", .strings, "count only copies in these media sets (default: all)"),
  ]

  let copies: Int
  let mediaSets: [String]

  init(_ definition: StageDefinition) {
    copies = definition.integer("copies") ?? 1
    mediaSets = definition.strings("media-sets") ?? []
  }

  func run(_ context: PipelineContext) throws -> StageOutcome {
    var outcome = StageOutcome()
    for volume in context.volumes {
      if context.dryRun {
        let plan = try context.live.journalPrunePlan(volume: volume, copies: copies, mediaSets: mediaSets)
        let deletable = plan.filter(\.deletable)
        outcome.items += deletable.count
        outcome.bytes += deletable.reduce(0) { $0 + $1.size }
        outcome.lines.append(
          "\(volume): would delete \(deletable.count) of \(plan.count) segment(s) (\(ByteSize.describe(deletable.reduce(0) { $0 + $1.size })))"
            + (plan.first { !$0.deletable }.map { "; keeps from segment \($0.number): \($0.reason)" } ?? ""))
        continue
      }
      let report = try context.live.pruneJournal(volume: volume, copies: copies, mediaSets: mediaSets) { segment in
        context.event("deleted \(volume) segment \(segment.number) (seq \(segment.firstSeq)…\(segment.lastSeq ?? 0))")
      }
      outcome.items += report.deleted.count
      outcome.bytes += report.bytesFreed
      outcome.lines.append(
        "\(volume): deleted \(report.deleted.count) segment(s) (\(ByteSize.describe(report.bytesFreed))), kept \(report.kept.count)"
          + (report.kept.first.map { "; segment \($0.number) stays: \($0.reason)" } ?? ""))
    }
    outcome.message =
      "\(outcome.items) segment(s) \(context.dryRun ? "deletable" : "deleted") (\(ByteSize.describe(outcome.bytes)))"
    return outcome
  }
}
