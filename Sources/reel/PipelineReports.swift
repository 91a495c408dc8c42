import ReelCore
import ReelPipeline

/// Seconds as the reports give durations.
private func seconds(_ duration: Duration?) -> Double? {
  duration.map { Double($0.nanoseconds) / 1e9 }
}

/// `reel pipeline run --json`.
struct PipelineRunJSON: Encodable {
  struct Stage: Encodable {
    var name: String
    var kind: String
    var status: String
    @NullIfAbsent var durationSeconds: Double?
    var bytes: UInt64
    var items: Int
    var message: String
    var details: [String]
    var doneEarlier: Bool

    init(_ stage: StageReport) {
      name = stage.name
      kind = stage.kind.rawValue
      status = stage.status.rawValue
      durationSeconds = seconds(stage.duration)
      bytes = stage.bytes
      items = stage.items
      message = stage.message
      details = stage.lines
      doneEarlier = stage.doneEarlier
    }

    private enum CodingKeys: String, CodingKey {
      case name, kind, status, bytes, items, message, details
      case durationSeconds = "duration_seconds"
      case doneEarlier = "done_earlier"
    }
  }

  var pipeline: String
  var file: String
  @NullIfAbsent var runID: Int64?
  var dryRun: Bool
  var resumed: Bool
  var status: String
  var exitCode: Int32
  var started: String
  var finished: String
  var stages: [Stage]

  init(_ report: PipelineRunReport) {
    pipeline = report.pipeline
    file = report.file
    runID = report.runID
    dryRun = report.dryRun
    resumed = report.resumed
    status = report.status.rawValue
    exitCode = report.exitCode
    started = report.started.rfc3339
    finished = report.finished.rfc3339
    stages = report.stages.map(Stage.init)
  }

  private enum CodingKeys: String, CodingKey {
    case pipeline, file, resumed, status, started, finished, stages
    case runID = "run_id"
    case dryRun = "dry_run"
    case exitCode = "exit_code"
  }
}

/// `reel pipeline status --json`: `{"runs": [...]}`, newest runs of each pipeline.
struct PipelineStatusJSON: Encodable {
  struct Run: Encodable {
    var pipeline: String
    var runID: Int64
    var file: String
    var status: String
    var started: String
    @NullIfAbsent var finished: String?
    @NullIfAbsent var durationSeconds: Double?
    var attempts: Int
    var stages: [Stage]

    init(pipeline: String, run: PipelineRunRecord, stages: [PipelineStageRecord]) {
      self.pipeline = pipeline
      runID = run.id
      file = run.file
      status = run.status.rawValue
      started = run.started.rfc3339
      finished = run.finished?.rfc3339
      durationSeconds = run.finished.map { Double($0.nanoseconds - run.started.nanoseconds) / 1e9 }
      attempts = run.attempts
      self.stages = stages.map(Stage.init)
    }

    private enum CodingKeys: String, CodingKey {
      case pipeline, file, status, started, finished, attempts, stages
      case runID = "run_id"
      case durationSeconds = "duration_seconds"
    }
  }

  struct Stage: Encodable {
    var name: String
    var kind: String
    var status: String
    @NullIfAbsent var started: String?
    @NullIfAbsent var finished: String?
    @NullIfAbsent var durationSeconds: Double?
    var bytes: UInt64
    var items: Int
    @NullIfAbsent var message: String?

    init(_ stage: PipelineStageRecord) {
      name = stage.name
      kind = stage.kind
      status = stage.status.rawValue
      started = stage.started?.rfc3339
      finished = stage.finished?.rfc3339
      durationSeconds = seconds(stage.duration)
      bytes = stage.bytes
      items = stage.items
      message = stage.message
    }

    private enum CodingKeys: String, CodingKey {
      case name, kind, status, started, finished, bytes, items, message
      case durationSeconds = "duration_seconds"
    }
  }

  var runs: [Run]
}
