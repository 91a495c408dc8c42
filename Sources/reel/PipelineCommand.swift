import ArgumentParser
import Foundation
import ReelCodec
import ReelCore
import ReelIO
import ReelPipeline
import ReelStore

struct PipelineCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "pipeline",
    abstract: "Run scheduled pipelines (seal, export, verify, prune, offsite copies, DR drills) and show their runs.",
    subcommands: [Run.self, Status.self])

  struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Run a pipeline file's stages in order, resuming a killed run of it.",
      discussion: """
        The file is checked before anything runs (docs/pipelines.md). Run state lives in the
        store catalog: a run killed at any point is resumed by the next `reel pipeline run`
        of the same file, and every stage is idempotent. One run of a pipeline at a time.
        Exit status: 0 success, 3 partial (every stage ran, some could not do all their
        work), 1 a stage failed (the stages after it did not run), 64 a bad pipeline file,
        73 the pipeline is already running.
        """)

    @OptionGroup var options: StoreOption
    @OptionGroup var keyOptions: KeyOptions
    @Argument(help: "Pipeline file (YAML).") var file: String
    @Flag(help: "Say what each stage would do; change nothing.") var dryRun = false
    @Flag(help: "JSON report.") var json = false
    @Option(help: "Write Prometheus textfile metrics here after the run.") var metricsFile: String?
    @OptionGroup var objectStore: ObjectStoreOptions

    func run() throws {
      let definition = try PipelineFile.load(path: file)
      // s3:// media of the file: flags, then the file's object-store section, then the environment.
      try objectStore.activate(for: [], defaults: definition.objectStore)
      let store = try Store.open(StoreLayout.resolve(options.store))
      var keys: [SymmetricKey] = []
      if definition.needsKey && !dryRun {
        let path = try keyOptions.requiredPath()
        keys = [try KeyFile.read(at: path).open(passphrase: try Passphrase.obtain(for: path))]
      }
      var runOptions = PipelineRunOptions(dryRun: dryRun)
      let display = isatty(STDERR_FILENO) == 1 && !json ? ProgressLine() : nil
      if let display { runOptions.progress = { display.show($0) } }
      Interrupt.install()
      let report = try PipelineRunner.run(definition, store: store, masterKeys: keys, options: runOptions)
      display?.clear()
      if let metricsFile, !dryRun {
        try PipelineMetrics.write(pipeline: definition.name, catalog: store.catalog, to: metricsFile)
      }
      if json {
        say(jsonText(PipelineRunJSON(report)))
      } else {
        Self.describe(report)
      }
      if report.exitCode != 0 { throw ExitCode(report.exitCode) }
    }

    static func describe(_ report: PipelineRunReport) {
      let elapsed = Double(report.finished.nanoseconds - report.started.nanoseconds) / 1e9
      if report.dryRun {
        say("Pipeline \(report.pipeline) (\(report.file)): dry run, nothing was changed")
      } else {
        say(
          "Pipeline \(report.pipeline) (\(report.file)), run \(report.runID ?? 0)\(report.resumed ? " (resumed)" : ""): \(report.status.rawValue.uppercased()) in \(formatSeconds(elapsed))"
        )
      }
      var rows = [["stage", "kind", "status", "time", "items", "bytes", "result"]]
      for stage in report.stages {
        rows.append([
          stage.name, stage.kind.rawValue,
          stage.doneEarlier ? "\(stage.status.rawValue) (earlier)" : stage.status.rawValue,
          stage.duration.map { formatSeconds(Double($0.nanoseconds) / 1e9) } ?? "-", String(stage.items),
          stage.bytes > 0 ? ByteSize.describe(stage.bytes) : "-", stage.message,
        ])
      }
      for line in table(rows) { say("  " + line) }
      for stage in report.stages where !stage.lines.isEmpty {
        say("\(stage.name):")
        for line in stage.lines { say("  " + line) }
      }
    }
  }

  struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "The last runs of each pipeline, stage by stage: status, duration, items, bytes.")

    @OptionGroup var options: StoreOption
    @Argument(help: "Pipeline name (default: every pipeline that ran).") var pipeline: String?
    @Option(help: "How many runs of each pipeline.") var runs = 3
    @Flag(help: "JSON output.") var json = false

    func run() throws {
      let store = try Store.open(StoreLayout.resolve(options.store))
      let catalog = store.catalog
      let names = try pipeline.map { [$0] } ?? catalog.pipelineNames()
      var documents: [PipelineStatusJSON.Run] = []
      if names.isEmpty && !json { say("No pipeline has run on this store.") }
      for name in names {
        let history = try catalog.pipelineRuns(pipeline: name, limit: runs)
        if history.isEmpty && !json { say("\(name): never ran") }
        for run in history {
          let stages = try catalog.pipelineStages(runID: run.id)
          let elapsed = run.finished.map { Double($0.nanoseconds - run.started.nanoseconds) / 1e9 }
          if json {
            documents.append(PipelineStatusJSON.Run(pipeline: name, run: run, stages: stages))
            continue
          }
          let state =
            run.status == .running ? "RUNNING or killed (the next run resumes it)" : run.status.rawValue.uppercased()
          say(
            "\(name) run \(run.id): \(state), started \(run.started.rfc3339)\(elapsed.map { ", took \(formatSeconds($0))" } ?? "")\(run.attempts > 1 ? ", \(run.attempts) attempts" : "") (\(run.file))"
          )
          var rows = [["stage", "kind", "status", "time", "items", "bytes", "result"]]
          for stage in stages {
            rows.append([
              stage.name, stage.kind, stage.status.rawValue,
              stage.duration.map { formatSeconds(Double($0.nanoseconds) / 1e9) } ?? "-", String(stage.items),
              stage.bytes > 0 ? ByteSize.describe(stage.bytes) : "-",
              (stage.message ?? "").components(separatedBy: "\n").first ?? "",
            ])
          }
          for line in table(rows) { say("  " + line) }
        }
      }
      if json { say(jsonText(PipelineStatusJSON(runs: documents))) }
    }
  }
}

func formatSeconds(_ seconds: Double) -> String {
  seconds < 60 ? String(format: "%.1f s", seconds) : String(format: "%dm%02ds", Int(seconds) / 60, Int(seconds) % 60)
}

/// Left-aligned columns; the last column is not padded.
func table(_ rows: [[String]]) -> [String] {
  guard let columns = rows.first?.count else { return [] }
  var widths = [Int](repeating: 0, count: columns)
  for row in rows {
    for (index, cell) in row.enumerated() where index < columns - 1 { widths[index] = max(widths[index], cell.count) }
  }
  return rows.map { row in
    row.enumerated().map { index, cell in
      index < columns - 1 ? cell.padding(toLength: widths[index], withPad: " ", startingAt: 0) : cell
    }.joined(separator: "  ")
  }
}

/// One line on the terminal, rewritten in place: the stage, a bar, what is happening.
final class ProgressLine {
  private var lastStage = 0

  func show(_ progress: PipelineProgress) {
    let width = 20
    let bar: String
    if let done = progress.done, let total = progress.total, total > 0 {
      let filled = min(width, done * width / total)
      bar =
        "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
        + "] \(done)/\(total)"
    } else {
      let filled = (progress.stageNumber - 1) * width / max(progress.stageCount, 1)
      bar = "[" + String(repeating: "=", count: filled) + String(repeating: " ", count: width - filled) + "]"
    }
    var text = "stage \(progress.stageNumber)/\(progress.stageCount) \(progress.stage) \(bar) \(progress.text)"
    let columns = terminalColumns()
    if text.count > columns - 1 { text = String(text.prefix(columns - 2)) + "…" }
    FileHandle.standardError.write(Data("\r\u{1B}[K\(text)".utf8))
  }

  func clear() {
    FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
  }

  private func terminalColumns() -> Int {
    var size = winsize()
    return ioctl(STDERR_FILENO, UInt(TIOCGWINSZ), &size) == 0 && size.ws_col > 0 ? Int(size.ws_col) : 100
  }
}
