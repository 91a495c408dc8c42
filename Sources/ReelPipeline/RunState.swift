import ReelCore
import ReelStore

/// What a run fixed that must not change when it is resumed: cut points, archives it
/// verified, the drill's scratch store. Kept as the run's pipeline values in the store
/// catalog; their keys and texts are part of the catalog format, so a run started by an
/// earlier Reel resumes with them.
final class RunState {
  /// Where the cut stage fixed a volume's history for this run.
  enum CutPoint: Equatable {
    case nothingToCut
    case seq(Seq)

    var seq: Seq? {
      if case .seq(let seq) = self { return seq }
      return nil
    }
  }

  private let catalog: Catalog
  /// Nil for a dry run: nothing is written to the catalog.
  private let runID: Int64?
  private var values: [String: String]

  init(catalog: Catalog, runID: Int64?) throws {
    self.catalog = catalog
    self.runID = runID
    values = try runID.map { try catalog.pipelineValues(runID: $0) } ?? [:]
  }

  func cutPoint(volume: String) -> CutPoint? {
    switch values["cut.\(volume)"] {
    case nil: nil
    case "none"?: .nothingToCut
    case let text?: Seq(text).map(CutPoint.seq)
    }
  }

  func setCutPoint(_ point: CutPoint, volume: String) throws {
    let text =
      switch point {
      case .nothingToCut: "none"
      case .seq(let seq): String(seq)
      }
    try set("cut.\(volume)", text)
  }

  func isVerified(archiveID: String) -> Bool { values["verified.\(archiveID)"] != nil }

  func setVerified(archiveID: String) throws { try set("verified.\(archiveID)", "ok") }

  /// The folder the drill rehydrates into.
  var scratchStore: String? { values["drill.scratch"] }

  func setScratchStore(_ path: String) throws { try set("drill.scratch", path) }

  /// The newest seq of a volume the scratch store can restore.
  func latestRehydrated(volume: String) -> Seq? { values["drill.latest.\(volume)"].flatMap { Seq($0) } }

  func setLatestRehydrated(_ seq: Seq, volume: String) throws { try set("drill.latest.\(volume)", String(seq)) }

  /// Archives a stage found damaged that their parity repairs (repaired on the way in by a
  /// rehydrate, or damaged on media but repairable for verify-on-media): the
  /// `reel_pipeline_stage_repaired_archives` metric.
  static func repairedKey(stage: String) -> String { "repaired.\(stage)" }

  func setRepairedArchives(_ count: Int, stage: String) throws {
    try set(Self.repairedKey(stage: stage), String(count))
  }

  private func set(_ key: String, _ value: String) throws {
    values[key] = value
    if let runID { try catalog.setPipelineValue(runID: runID, key: key, value: value) }
  }
}
