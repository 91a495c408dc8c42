import ReelCore
import ReelDatabases
import ReelStore

/// `reel bisect --json`: one object.
struct BisectJSON: Encodable {
  struct Place: Encodable {
    var seq: Seq
    var time: String

    init(_ point: VolumeChange) {
      seq = point.seq
      time = point.time.rfc3339
    }
  }

  struct Evaluation: Encodable {
    var seq: Seq
    var time: String
    var answer: String
    var sha256: String
    var same: Bool
    var failed: Bool

    init(_ evaluation: BisectEvaluation) {
      seq = evaluation.point.seq
      time = evaluation.point.time.rfc3339
      answer = evaluation.answer.summary
      sha256 = evaluation.answer.digest.description
      same = evaluation.same
      failed = evaluation.answer.failed
    }
  }

  var volume: String
  var question: String
  var from: Place
  var to: Place
  var records: Int
  var maximumEvaluations: Int
  var evaluations: [Evaluation]
  var changed: Bool
  @NullIfAbsent var before: Evaluation?
  @NullIfAbsent var after: Evaluation?
  var commands: [String]
  var warnings: [String]

  init(_ report: BisectReport) {
    volume = report.volume
    question = report.question
    from = Place(report.from)
    to = Place(report.to)
    records = report.records
    maximumEvaluations = report.maximumEvaluations
    evaluations = report.evaluations.map(Evaluation.init)
    changed = report.after != nil
    before = report.before.map(Evaluation.init)
    after = report.after.map(Evaluation.init)
    commands = report.commandsBefore
    warnings = report.warnings
  }

  private enum CodingKeys: String, CodingKey {
    case volume, question, from, to, records, evaluations, changed, before, after, commands, warnings
    case maximumEvaluations = "maximum_evaluations"
  }
}
