import Foundation
import ReelArchive
import ReelCapture
import ReelCore
import ReelStore

extension StageKind {
  package static let cut = StageKind(rawValue: "cut")
}

/// Fixes each volume's cut point: its newest flush barrier or bookmark, or a new bookmark
/// now. The point is kept in the run's state, so a resumed run seals to the same place.
struct CutStage: PipelineStage {
  enum Mode: String {
    /// The newest flush or bookmark.
    case barrier
    /// A new bookmark now.
    case bookmark
  }

  static let kind = StageKind.cut
  static let parameters = [
    ParameterSpec(
      "mode", .choice([Mode.barrier.rawValue, Mode.bookmark.rawValue]),
      "barrier: the newest flush or bookmark; bookmark: a new bookmark now"),
    ParameterSpec("label", .string, "bookmark label for mode bookmark; {pipeline}, {run} and {date} are filled in"),
  ]

  let mode: Mode
  let labelTemplate: String

  init(_ definition: StageDefinition) {
    mode = definition.string("mode").flatMap(Mode.init(rawValue:)) ?? .barrier
    labelTemplate = definition.string("label") ?? "{pipeline}-run{run}"
  }

  func run(_ context: PipelineContext) throws -> StageOutcome {
    var outcome = StageOutcome()
    let live = context.live
    for volume in context.volumes {
      if let fixed = context.state.cutPoint(volume: volume) {
        outcome.lines.append(
          "\(volume): " + (fixed.seq.map { "cut at seq \($0)" } ?? "nothing to cut") + " (fixed earlier in this run)")
        if fixed != .nothingToCut { outcome.items += 1 }
        continue
      }
      let descriptor = try context.store.layout.descriptor(of: volume)
      if !context.dryRun { try live.ingest(volume: volume) }
      var bounds = try live.historyBounds(of: descriptor)
      let from = max(try live.sealedSeq(of: descriptor), bounds.retainedFrom)
      // A dry run does not ingest: what the journal holds beyond the store is read here.
      var journalBarrier: Seq?
      if context.dryRun {
        try context.store.layout.journalReader(of: volume).forEachRecord(fromSeq: bounds.ingested + 1) { record in
          bounds.ingested = record.seq
          if record.kind == .flush || record.kind == .bookmark { journalBarrier = record.seq }
          return true
        }
      }
      // Until a volume has an archive nothing of it is protected: with nothing later to cut
      // at, its first archive holds the state its history starts from (the image it was
      // created from) alone.
      let alone = Sealer.stateAloneIsSealable(
        descriptor: descriptor, bounds: bounds, last: try live.lastSealedArchive(of: descriptor))
      guard bounds.ingested > from || alone else {
        outcome.lines.append("\(volume): nothing journaled after seq \(from)")
        if !context.dryRun { try context.state.setCutPoint(.nothingToCut, volume: volume) }
        continue
      }
      var cut: Seq?
      if bounds.ingested == from {
        cut = from
      } else if mode == .bookmark {
        let label = bookmarkLabel(context)
        let existing = try live.bookmarks(of: descriptor, after: 0, through: bounds.ingested).first {
          $0.label == label
        }
        if let existing {
          cut = existing.seq
        } else if context.dryRun {
          outcome.lines.append(
            "\(volume): would place bookmark \"\(label)\" now and cut there (after seq \(bounds.ingested))")
          outcome.items += 1
          continue
        } else {
          let placed = try Bookmarks.create(layout: context.store.layout, volume: volume, label: label)
          context.event("bookmark \(label) placed on \(volume) at seq \(placed.seq)")
          try live.ingest(volume: volume)
          cut = placed.seq
        }
      } else {
        cut = try journalBarrier ?? live.lastBarrier(of: descriptor, after: from, through: bounds.ingested)
        if cut == nil && alone { cut = from }
      }
      guard let cut else {
        outcome.lines.append(
          "\(volume): no flush or bookmark after seq \(from) (journaled up to seq \(bounds.ingested)); nothing to cut")
        if !context.dryRun { try context.state.setCutPoint(.nothingToCut, volume: volume) }
        continue
      }
      let time = journalBarrier == nil ? " (\(try live.time(of: cut, in: descriptor).rfc3339))" : ""
      outcome.items += 1
      outcome.lines.append(
        "\(volume): \(context.dryRun ? "would cut" : "cut") at seq \(cut)\(time); "
          + (cut > from
            ? "history after seq \(from) goes into the next archive"
            : "the volume's first archive holds its state at seq \(cut) alone"))
      if !context.dryRun {
        try context.state.setCutPoint(.seq(cut), volume: volume)
        context.event("cut \(volume) at seq \(cut)")
      }
    }
    outcome.message = "\(outcome.items) volume(s) to seal"
    return outcome
  }

  func bookmarkLabel(_ context: PipelineContext) -> String {
    labelTemplate
      .replacingOccurrences(of: "{pipeline}", with: context.definition.name)
      .replacingOccurrences(of: "{run}", with: context.runID.map(String.init) ?? "N")
      .replacingOccurrences(of: "{date}", with: String(Timestamp.now().rfc3339.prefix(10)))
  }
}
