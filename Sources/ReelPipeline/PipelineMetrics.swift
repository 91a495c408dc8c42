import Foundation
import ReelCore
import ReelIO
import ReelStore

/// Prometheus textfile metrics (node_exporter's textfile collector) for one pipeline,
/// from its run history in the store catalog.
package enum PipelineMetrics {
  package static func text(pipeline: String, catalog: Catalog) throws -> String {
    let runs = try catalog.pipelineRuns(pipeline: pipeline, limit: 1000)
    let label = "pipeline=\"\(escape(pipeline))\""
    var lines: [String] = []
    func metric(_ name: String, _ help: String, _ type: String, _ samples: [(String, Double)]) {
      guard !samples.isEmpty else { return }
      lines.append("# HELP \(name) \(help)")
      lines.append("# TYPE \(name) \(type)")
      for (labels, value) in samples { lines.append("\(name){\(labels)} \(format(value))") }
    }
    func seconds(_ time: Timestamp) -> Double { Double(time.nanoseconds) / 1e9 }
    let finished = runs.filter { $0.finished != nil && $0.status != .superseded }
    let last = finished.first
    let lastSuccess = finished.first { $0.status == .success }
    metric(
      "reel_pipeline_last_run_timestamp_seconds", "When the pipeline's last run finished.", "gauge",
      last.map { [(label, seconds($0.finished!))] } ?? [])
    metric(
      "reel_pipeline_last_success_timestamp_seconds", "When the pipeline last finished with every stage done.",
      "gauge", lastSuccess.map { [(label, seconds($0.finished!))] } ?? [])
    metric(
      "reel_pipeline_last_run_status", "1 for the status of the last run (success, partial, failed).", "gauge",
      last.map { run in
        ["success", "partial", "failed"].map { ("\(label),status=\"\($0)\"", run.status.rawValue == $0 ? 1 : 0) }
      } ?? [])
    metric(
      "reel_pipeline_last_run_duration_seconds", "Wall time of the last run, from its start to its end.", "gauge",
      last.map { [(label, seconds($0.finished!) - seconds($0.started))] } ?? [])
    metric(
      "reel_pipeline_runs_total", "Finished runs by status.", "counter",
      ["success", "partial", "failed"].map { status in
        ("\(label),status=\"\(status)\"", Double(finished.filter { $0.status.rawValue == status }.count))
      })

    var duration: [(String, Double)] = []
    var bytes: [(String, Double)] = []
    var items: [(String, Double)] = []
    var repaired: [(String, Double)] = []
    var stageSuccess: [(String, Double)] = []
    var failures: [String: Double] = [:]
    var names: [String] = []
    var kinds: [String: String] = [:]
    for run in finished {
      for stage in try catalog.pipelineStages(runID: run.id) {
        if !names.contains(stage.name) {
          names.append(stage.name)
          kinds[stage.name] = stage.kind
        }
        if stage.status == .failed { failures[stage.name, default: 0] += 1 }
      }
    }
    if let last {
      let values = try catalog.pipelineValues(runID: last.id)
      for stage in try catalog.pipelineStages(runID: last.id) {
        let labels = "\(label),stage=\"\(escape(stage.name))\",kind=\"\(escape(stage.kind))\""
        if let elapsed = stage.duration { duration.append((labels, Double(elapsed.nanoseconds) / 1e9)) }
        bytes.append((labels, Double(stage.bytes)))
        items.append((labels, Double(stage.items)))
        if let count = values[RunState.repairedKey(stage: stage.name)].flatMap(Double.init) {
          repaired.append((labels, count))
        }
      }
    }
    for name in names {
      let labels = "\(label),stage=\"\(escape(name))\",kind=\"\(escape(kinds[name] ?? ""))\""
      for run in finished {
        if let stage = try catalog.pipelineStages(runID: run.id).first(where: { $0.name == name }),
          stage.status == .done || stage.status == .partial, let end = stage.finished
        {
          stageSuccess.append((labels, seconds(end)))
          break
        }
      }
    }
    metric("reel_pipeline_stage_duration_seconds", "Duration of each stage in the last run.", "gauge", duration)
    metric("reel_pipeline_stage_bytes", "Bytes each stage handled in the last run.", "gauge", bytes)
    metric(
      "reel_pipeline_stage_items", "Items (archives, copies, segments) each stage handled in the last run.", "gauge",
      items)
    metric(
      "reel_pipeline_stage_repaired_archives",
      "Archives the stage found damaged that their parity repairs, in the last run (rehydrate, verify-on-media).",
      "gauge", repaired)
    metric(
      "reel_pipeline_stage_last_success_timestamp_seconds", "When each stage last finished its work.", "gauge",
      stageSuccess)
    metric(
      "reel_pipeline_stage_failures_total", "Runs in which the stage failed.", "counter",
      names.map { name in
        ("\(label),stage=\"\(escape(name))\",kind=\"\(escape(kinds[name] ?? ""))\"", failures[name] ?? 0)
      })
    return lines.joined(separator: "\n") + "\n"
  }

  /// Writes the textfile atomically, as the textfile collector expects. World-readable
  /// (0644), the one file Reel makes so on purpose: node_exporter runs as another user, and
  /// the file holds only counts and durations.
  package static func write(pipeline: String, catalog: Catalog, to path: String) throws {
    let folder = (path as NSString).deletingLastPathComponent
    if !folder.isEmpty { try Durable.makeDirectory(folder, mode: 0o755) }
    try Durable.replaceFile(
      at: path, with: Array(try text(pipeline: pipeline, catalog: catalog).utf8), mode: 0o644)
  }

  static func escape(_ text: String) -> String {
    text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
      .replacingOccurrences(of: "\n", with: "\\n")
  }

  static func format(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(format: "%.3f", value)
  }
}
