import ReelCore
import ReelFiles
import ReelStore

/// One point `reel bisect` asked its question at.
package struct BisectEvaluation: Sendable {
  /// 1 for the first question asked (always at the start of the range).
  package var number: Int
  package var point: VolumeChange
  package var answer: BisectAnswer
  /// Whether the answer equals the answer at the start of the range.
  package var same: Bool
}

/// The range searched, known before the first evaluation.
package struct BisectRange: Sendable {
  /// The start and end of the range as resolved (P1 and P2).
  package var from: VolumeChange
  package var to: VolumeChange
  /// The records between them that changed the volume's bytes: the candidates.
  package var records: Int
  /// ⌈log₂(records)⌉ + 2: what bisection can need at most.
  package var maximumEvaluations: Int
}

/// What `reel bisect` found.
package struct BisectReport: Sendable {
  package var volume: String
  package var question: String
  /// The start and end of the range as resolved (P1 and P2).
  package var from: VolumeChange
  package var to: VolumeChange
  /// The records between them that changed the volume's bytes: the candidates.
  package var records: Int
  /// ⌈log₂(records)⌉ + 2: what bisection can need at most.
  package var maximumEvaluations: Int
  package var evaluations: [BisectEvaluation]
  /// The last record with the start's answer and the first with another; nil when the end
  /// answers as the start.
  package var before: BisectEvaluation?
  package var after: BisectEvaluation?
  package var warnings: [String]
  /// Shows the state as of `before` (restore, files, sql or pg command lines).
  package var commandsBefore: [String]
}

/// "When did it change?": the first record between two points at which a question's
/// answer differs from its answer at the first point, by bisection over the records that
/// changed the volume (`HistorySearch.firstDifference`), each evaluation reported as it
/// happens. Reads the live store only (after catching it up with the journal, as every
/// reading command does); never writes to the volume.
package enum Bisect {
  package static func run(
    live: LiveStore, volume: String, from: Point, to: Point, partition: Int?, question: any BisectQuestion,
    started: (BisectRange) -> Void = { _ in }, report evaluated: @escaping (BisectEvaluation) -> Void = { _ in }
  ) throws -> BisectReport {
    let (_, endView, ingestWarnings) = try Restore.view(live: live, volume: volume, at: to)
    let startView = try VolumeView(live: live, volume: volume, at: from)
    let warnings = ingestWarnings + [startView.resolved.warning, endView.resolved.warning].compactMap { $0 }
    let start = VolumeChange(seq: startView.resolved.seq, time: startView.resolved.time)
    let end = VolumeChange(seq: endView.resolved.seq, time: endView.resolved.time)
    guard start.seq <= end.seq else {
      throw ReelError(
        .usage, "--from (\(from), seq \(start.seq)) is after --to (\(to), seq \(end.seq))",
        remedy: "give the older point as --from")
    }
    let candidates = try live.changes(of: endView.descriptor, after: start.seq, through: end.seq)
    let points = [start] + candidates
    started(
      BisectRange(
        from: start, to: end, records: candidates.count,
        maximumEvaluations: maximumEvaluations(records: candidates.count)))
    var evaluations: [BisectEvaluation] = []
    let search = HistorySearch(points: points) { index -> BisectAnswer in
      let answer = try ask(
        question, live: live, volume: volume, at: points[index], partition: partition, isStart: index == 0)
      let same = evaluations.first.map { $0.answer == answer } ?? true
      let evaluation = BisectEvaluation(number: evaluations.count + 1, point: points[index], answer: answer, same: same)
      evaluations.append(evaluation)
      evaluated(evaluation)
      return answer
    }
    let changed = try search.firstDifference()
    func evaluation(_ index: Int) -> BisectEvaluation? {
      evaluations.first { $0.point == points[index] }
    }
    let before = changed.flatMap { evaluation($0 - 1) }
    let after = changed.flatMap { evaluation($0) }
    var commands: [String] = []
    if let before {
      commands = [
        "reel restore \(shellQuoted(volume)) --at seq:\(before.point.seq) --output FILE",
        question.command(volume: volume, seq: before.point.seq),
      ]
    }
    return BisectReport(
      volume: volume, question: question.description, from: start, to: end, records: candidates.count,
      maximumEvaluations: maximumEvaluations(records: candidates.count), evaluations: evaluations, before: before,
      after: after, warnings: warnings, commandsBefore: commands)
  }

  /// ⌈log₂(records)⌉ + 2 (1 when there is no record: only the start is asked).
  package static func maximumEvaluations(records: Int) -> Int {
    guard records > 0 else { return 1 }
    var steps = 0
    while (1 << steps) < records { steps += 1 }
    return steps + 2
  }

  /// The question's answer at `point`. A failure there is an answer (the database is
  /// missing, the crash image unreadable, PostgreSQL refusing to start on it…), shown in
  /// the listing, except at the start of the range, where there would be nothing to
  /// compare with, and except an interruption. Failures of the surroundings (a damaged
  /// store, a full scratch folder) are answers too: they cannot be told apart from the
  /// point's own by their kind, and they show in the listing as what they are.
  private static func ask(
    _ question: any BisectQuestion, live: LiveStore, volume: String, at point: VolumeChange, partition: Int?,
    isStart: Bool
  ) throws -> BisectAnswer {
    do {
      let opened = try FilesAtPoint.open(live: live, volume: volume, seq: point.seq, partition: partition)
      return try question.answer(at: opened)
    } catch var error as ReelError {
      if isStart {
        error.message = "at --from (seq \(point.seq), \(point.time.rfc3339)): " + error.message
        throw error
      }
      if error.kind == .interrupted { throw error }
      return BisectAnswer(error: error)
    }
  }
}
