import Foundation
import ReelCodec
import ReelCore
import ReelIO
import ReelStore

/// What one stage did.
struct StageOutcome: Sendable {
  /// Some of the work could not be done (the lines say what); later stages still run.
  package var partial = false
  package var bytes: UInt64 = 0
  package var items = 0
  /// One line for the summary table.
  package var message = ""
  /// Details for the summary, one per line.
  package var lines: [String] = []

  package init() {}
}

/// One stage in a run's report.
package struct StageReport: Sendable {
  package var name: String
  package var kind: StageKind
  package var status: PipelineStageRecord.Status
  package var duration: Duration?
  package var bytes: UInt64
  package var items: Int
  package var message: String
  package var lines: [String]
  /// Done by an earlier, killed invocation of the same run.
  package var doneEarlier: Bool
}

package struct PipelineRunReport: Sendable {
  package var pipeline: String
  package var file: String
  /// Nil for a dry run.
  package var runID: Int64?
  package var dryRun: Bool
  /// A killed run was picked up where it stopped.
  package var resumed: Bool
  package var status: PipelineRunRecord.Status
  package var started: Timestamp
  package var finished: Timestamp
  package var stages: [StageReport]

  /// 0 success, 3 partial, 1 failed.
  package var exitCode: Int32 {
    switch status {
    case .success: 0
    case .partial: 3
    default: 1
    }
  }
}

/// Progress for a display: which stage, and what it is doing now.
package struct PipelineProgress: Sendable {
  package var stageNumber: Int
  package var stageCount: Int
  package var stage: String
  package var text: String
  /// Work units done and expected in this stage, when known.
  package var done: Int?
  package var total: Int?
}

package struct PipelineRunOptions {
  package var dryRun = false
  package var progress: ((PipelineProgress) -> Void)?
  /// Test hook: SIGKILL this process at the Nth event (`REEL_PIPELINE_KILL_AFTER`).
  var killAfterEvents: Int?
  /// Test hook: append each event to this file (`REEL_PIPELINE_EVENT_LOG`).
  var eventLog: String?

  package init(dryRun: Bool = false, environment: [String: String] = ProcessInfo.processInfo.environment) {
    self.dryRun = dryRun
    killAfterEvents = environment["REEL_PIPELINE_KILL_AFTER"].flatMap(Int.init)
    eventLog = environment["REEL_PIPELINE_EVENT_LOG"].flatMap { $0.isEmpty ? nil : $0 }
  }
}

/// What a stage sees: the definition, the store, the key, the run's state.
final class PipelineContext {
  package let definition: PipelineDefinition
  package let store: Store
  package let live: LiveStore
  package let runID: Int64?
  package let dryRun: Bool
  let masterKeys: [SymmetricKey]
  let options: PipelineRunOptions
  let state: RunState
  private var events = 0
  var stageNumber = 0
  var stageName = ""

  init(
    definition: PipelineDefinition, store: Store, runID: Int64?, masterKeys: [SymmetricKey],
    options: PipelineRunOptions
  ) throws {
    self.definition = definition
    self.store = store
    live = LiveStore(store: store)
    self.runID = runID
    dryRun = options.dryRun
    self.masterKeys = masterKeys
    self.options = options
    state = try RunState(catalog: store.catalog, runID: runID)
  }

  package var catalog: Catalog { store.catalog }

  /// The volumes the pipeline works on.
  package var volumes: [String] { definition.volumes ?? store.layout.volumeNames() }

  var archiveDirectory: String {
    definition.archiveDirectory ?? store.layout.root + "/archives"
  }

  func keys() throws -> [SymmetricKey] {
    guard !masterKeys.isEmpty else {
      throw ReelError(.usage, "this stage needs the master key", remedy: "give --key FILE or set REEL_KEY")
    }
    return masterKeys
  }

  /// The media set a stage names, else the file's.
  func mediaSet(named name: String?) -> String {
    name ?? definition.mediaSet ?? "default"
  }

  func mediaSet(of stage: StageDefinition) -> String {
    mediaSet(named: stage.string("media-set"))
  }

  /// Something happened that a killed run must survive. Counted for the kill test hook.
  package func event(_ text: String) {
    events += 1
    if let log = options.eventLog,
      let handle = FileHandle(forWritingAtPath: log)
        ?? {
          _ = FileManager.default.createFile(atPath: log, contents: nil, attributes: [.posixPermissions: 0o600])
          return FileHandle(forWritingAtPath: log)
        }()
    {
      handle.seekToEndOfFile()
      handle.write(Data("\(events) \(stageName): \(text)\n".utf8))
      try? handle.close()
    }
    if let limit = options.killAfterEvents, events >= limit {
      kill(getpid(), SIGKILL)
    }
  }

  package func progress(_ text: String, done: Int? = nil, total: Int? = nil) {
    options.progress?(
      PipelineProgress(
        stageNumber: stageNumber, stageCount: definition.stages.count, stage: stageName, text: text, done: done,
        total: total))
  }
}

/// Runs a pipeline's stages in order with their state in the store catalog. A run killed
/// at any point is resumed by the next invocation of the same pipeline file: stages that
/// finished are not run again, the one that was running runs again (every stage is
/// idempotent), and values fixed earlier (cut points) are kept.
package enum PipelineRunner {
  package static func run(
    _ definition: PipelineDefinition, store: Store, masterKeys: [SymmetricKey], options: PipelineRunOptions
  ) throws -> PipelineRunReport {
    try checkAgainstStore(definition, store: store)
    try definition.objectStore?.apply()
    if options.dryRun {
      return try dryRun(definition, store: store, masterKeys: masterKeys, options: options)
    }
    let lock = try takeLock(definition, store: store)
    defer {
      flock(lock.descriptor, LOCK_UN)
    }
    let catalog = store.catalog
    var run: PipelineRunRecord
    var resumed = false
    if let last = try catalog.pipelineRuns(pipeline: definition.name, limit: 1).first, last.status == .running {
      if last.definitionSHA256 == definition.sha256 {
        run = last
        resumed = true
        try catalog.resumePipelineRun(id: last.id)
      } else {
        try catalog.finishPipelineRun(id: last.id, status: .superseded)
        run = try catalog.beginPipelineRun(
          pipeline: definition.name, file: definition.file, definitionSHA256: definition.sha256,
          stages: definition.stages.map { ($0.name, $0.kind.rawValue) })
      }
    } else {
      run = try catalog.beginPipelineRun(
        pipeline: definition.name, file: definition.file, definitionSHA256: definition.sha256,
        stages: definition.stages.map { ($0.name, $0.kind.rawValue) })
    }
    let context = try PipelineContext(
      definition: definition, store: store, runID: run.id, masterKeys: masterKeys, options: options)
    var records = try catalog.pipelineStages(runID: run.id)
    var reports: [StageReport] = []
    var failed = false
    var partial = false
    context.event("run \(run.id) \(resumed ? "resumed" : "started")")
    for (position, stage) in definition.stages.enumerated() {
      var record = records[position]
      context.stageNumber = position + 1
      context.stageName = stage.name
      if record.status == .done || record.status == .partial {
        partial = partial || record.status == .partial
        reports.append(
          StageReport(
            name: stage.name, kind: stage.kind, status: record.status, duration: record.duration, bytes: record.bytes,
            items: record.items, message: record.message ?? "", lines: [], doneEarlier: true))
        continue
      }
      if failed {
        record.status = .skipped
        try catalog.updatePipelineStage(record)
        reports.append(
          StageReport(
            name: stage.name, kind: stage.kind, status: .skipped, duration: nil, bytes: 0, items: 0,
            message: "not run: an earlier stage failed", lines: [], doneEarlier: false))
        continue
      }
      if Interrupt.signal != nil {
        throw Interrupt.error("stopped before stage \(stage.name); run the same pipeline again to resume")
      }
      record.status = .running
      record.started = .now()
      record.finished = nil
      try catalog.updatePipelineStage(record)
      context.event("stage start")
      context.progress("starting")
      var lines: [String] = []
      do {
        let outcome = try stage.stageType.init(stage).run(context)
        record.status = outcome.partial ? .partial : .done
        record.bytes = outcome.bytes
        record.items = outcome.items
        record.message = outcome.message
        lines = outcome.lines
        partial = partial || outcome.partial
      } catch let error as ReelError where error.kind == .interrupted {
        // Left as a killed run leaves it (the stage still running), which the next run of
        // the same file resumes; a failed stage would not be.
        context.event("stage interrupted")
        throw Interrupt.error("\(error.message) (stage \(stage.name)); run the same pipeline again to resume")
      } catch {
        record.status = .failed
        record.message = "\(error)"
        failed = true
      }
      record.finished = .now()
      try catalog.updatePipelineStage(record)
      records[position] = record
      context.event("stage \(record.status.rawValue)")
      reports.append(
        StageReport(
          name: stage.name, kind: stage.kind, status: record.status, duration: record.duration, bytes: record.bytes,
          items: record.items, message: record.message ?? "", lines: lines, doneEarlier: false))
    }
    let status: PipelineRunRecord.Status = failed ? .failed : partial ? .partial : .success
    try catalog.finishPipelineRun(id: run.id, status: status)
    context.event("run \(status.rawValue)")
    return PipelineRunReport(
      pipeline: definition.name, file: definition.file, runID: run.id, dryRun: false, resumed: resumed,
      status: status, started: run.started, finished: .now(), stages: reports)
  }

  /// What each stage would do now; nothing is written anywhere.
  static func dryRun(
    _ definition: PipelineDefinition, store: Store, masterKeys: [SymmetricKey], options: PipelineRunOptions
  ) throws -> PipelineRunReport {
    let started = Timestamp.now()
    let context = try PipelineContext(
      definition: definition, store: store, runID: nil, masterKeys: masterKeys, options: options)
    var reports: [StageReport] = []
    for (position, stage) in definition.stages.enumerated() {
      context.stageNumber = position + 1
      context.stageName = stage.name
      let outcome = try stage.stageType.init(stage).run(context)
      reports.append(
        StageReport(
          name: stage.name, kind: stage.kind, status: .pending, duration: nil, bytes: outcome.bytes,
          items: outcome.items, message: outcome.message, lines: outcome.lines, doneEarlier: false))
    }
    return PipelineRunReport(
      pipeline: definition.name, file: definition.file, runID: nil, dryRun: true, resumed: false, status: .success,
      started: started, finished: .now(), stages: reports)
  }

  /// Problems only the store can reveal (a volume it does not have), still before anything runs.
  static func checkAgainstStore(_ definition: PipelineDefinition, store: Store) throws {
    guard let volumes = definition.volumes else { return }
    let known = store.layout.volumeNames()
    let unknown = volumes.filter { !known.contains($0) }
    guard !unknown.isEmpty else { return }
    let location = definition.volumesLocation ?? FileLocation(file: definition.file, line: 1, column: 1)
    throw PipelineFile.error(
      file: definition.file,
      problems: unknown.map {
        PipelineProblem(
          location: location, message: "volume \"\($0)\" is not in the store at \(store.layout.root)",
          fix: known.isEmpty
            ? "create it first (reel volume create), or point --store at the right store"
            : "the store has: \(known.joined(separator: ", "))")
      })
  }

  /// One run of a pipeline at a time: an exclusive lock on `<store>/run/pipeline-NAME.lock`,
  /// released by the kernel when the process ends however it ends.
  static func takeLock(_ definition: PipelineDefinition, store: Store) throws -> PosixFile {
    let folder = store.layout.root + "/run"
    try Durable.makeDirectory(folder)
    let path = folder + "/pipeline-\(definition.name).lock"
    let lock = try PosixFile.openLock(path)
    guard lock.tryLockExclusive() else {
      let holder = (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
      throw ReelError(
        .alreadyExists,
        "pipeline \(definition.name) is already running\(holder.map { $0.isEmpty ? "" : " (\($0))" } ?? "")",
        remedy: "wait for that run to finish; `reel pipeline status` shows it. Nothing was done.")
    }
    try lock.truncate(to: 0)
    let text = Array("pid \(getpid()) since \(Timestamp.now().rfc3339)\n".utf8)
    try lock.write(text, at: 0)
    return lock
  }
}
