import Foundation
import GRDB
import ReelCore
import ReelIO
import ReelStore

/// One run of a pipeline as the store catalog remembers it (migration `v5-pipeline`).
package struct PipelineRunRecord: Sendable, Equatable {
  package enum Status: String, Sendable, Codable {
    /// Started and not finished: still running, or killed (the next run resumes it).
    case running
    case success
    /// Every stage ran, some did only part of their work.
    case partial
    /// A stage failed; the stages after it did not run.
    case failed
    /// Given up for a new run because the pipeline file changed.
    case superseded
  }

  package var id: Int64
  package var pipeline: String
  package var file: String
  package var definitionSHA256: String
  package var started: Timestamp
  package var finished: Timestamp?
  package var status: Status
  /// How many invocations worked on this run (1 + resumes).
  package var attempts: Int
}

/// One stage of a run.
package struct PipelineStageRecord: Sendable, Equatable {
  package enum Status: String, Sendable, Codable {
    case pending
    case running
    case done
    case partial
    case failed
    /// Not run because an earlier stage failed.
    case skipped
  }

  package var runID: Int64
  package var position: Int
  package var name: String
  package var kind: String
  package var status: Status
  package var started: Timestamp?
  package var finished: Timestamp?
  package var bytes: UInt64
  package var items: Int
  package var message: String?

  package init(
    runID: Int64, position: Int, name: String, kind: String, status: Status, started: Timestamp? = nil,
    finished: Timestamp? = nil, bytes: UInt64 = 0, items: Int = 0, message: String? = nil
  ) {
    self.runID = runID
    self.position = position
    self.name = name
    self.kind = kind
    self.status = status
    self.started = started
    self.finished = finished
    self.bytes = bytes
    self.items = items
    self.message = message
  }

  package var duration: Duration? {
    guard let started, let finished else { return nil }
    return .nanoseconds(finished.nanoseconds - started.nanoseconds)
  }
}

/// The newest keyed check of one copy of an archive on media.
package struct MediaCheck: Sendable, Equatable {
  package var archiveID: String
  package var cartridgeID: String
  package var tapeFile: Int
  package var checked: Timestamp
  package var ok: Bool
  package var detail: String?

  package init(archiveID: String, cartridgeID: String, tapeFile: Int, checked: Timestamp, ok: Bool, detail: String?) {
    self.archiveID = archiveID
    self.cartridgeID = cartridgeID
    self.tapeFile = tapeFile
    self.checked = checked
    self.ok = ok
    self.detail = detail
  }

  var key: String { "\(archiveID)/\(cartridgeID)/\(tapeFile)" }
}

/// Pipeline run state in the store catalog (migration `v5-pipeline`): runs, their stages,
/// and small values a stage must find again when a killed run resumes (the cut point of
/// each volume, the scratch folder of a drill); and the keyed checks of copies on media.
extension Catalog {
  /// Starts a run with its stages pending, in one transaction.
  package func beginPipelineRun(
    pipeline: String, file: String, definitionSHA256: String, stages: [(name: String, kind: String)]
  ) throws -> PipelineRunRecord {
    let started = Timestamp.now()
    let id = try database.write { db in
      try db.execute(
        sql: """
          INSERT INTO pipeline_run (pipeline, file, definition_sha256, started_ns, status) VALUES (?, ?, ?, ?, ?)
          """,
        arguments: [pipeline, file, definitionSHA256, started.nanoseconds, PipelineRunRecord.Status.running.rawValue])
      let id = db.lastInsertedRowID
      for (position, stage) in stages.enumerated() {
        try db.execute(
          sql: "INSERT INTO pipeline_stage (run_id, position, name, kind, status) VALUES (?, ?, ?, ?, ?)",
          arguments: [id, position, stage.name, stage.kind, PipelineStageRecord.Status.pending.rawValue])
      }
      return id
    }
    return PipelineRunRecord(
      id: id, pipeline: pipeline, file: file, definitionSHA256: definitionSHA256, started: started, finished: nil,
      status: .running, attempts: 1)
  }

  /// Counts one more invocation working on a run that was killed.
  func resumePipelineRun(id: Int64) throws {
    try database.write { db in
      try db.execute(sql: "UPDATE pipeline_run SET attempts = attempts + 1 WHERE id = ?", arguments: [id])
    }
  }

  func finishPipelineRun(id: Int64, status: PipelineRunRecord.Status) throws {
    try database.write { db in
      try db.execute(
        sql: "UPDATE pipeline_run SET status = ?, finished_ns = ? WHERE id = ?",
        arguments: [status.rawValue, Timestamp.now().nanoseconds, id])
    }
  }

  /// Runs, newest first; of one pipeline when named.
  package func pipelineRuns(pipeline: String? = nil, limit: Int = 20) throws -> [PipelineRunRecord] {
    try database.read { db in
      let filter = pipeline == nil ? "" : "WHERE pipeline = ?"
      let arguments: StatementArguments = pipeline.map { [$0, limit] } ?? [limit]
      return try Row.fetchAll(
        db, sql: "SELECT * FROM pipeline_run \(filter) ORDER BY id DESC LIMIT ?", arguments: arguments
      ).map { row in
        PipelineRunRecord(
          id: row["id"], pipeline: row["pipeline"], file: row["file"], definitionSHA256: row["definition_sha256"],
          started: Timestamp(nanoseconds: row["started_ns"]),
          finished: (row["finished_ns"] as Int64?).map { Timestamp(nanoseconds: $0) },
          status: PipelineRunRecord.Status(rawValue: row["status"]) ?? .failed, attempts: row["attempts"])
      }
    }
  }

  /// The names of every pipeline that ever ran, in name order.
  package func pipelineNames() throws -> [String] {
    try database.read { db in
      try String.fetchAll(db, sql: "SELECT DISTINCT pipeline FROM pipeline_run ORDER BY pipeline")
    }
  }

  package func pipelineStages(runID: Int64) throws -> [PipelineStageRecord] {
    try database.read { db in
      try Row.fetchAll(
        db, sql: "SELECT * FROM pipeline_stage WHERE run_id = ? ORDER BY position", arguments: [runID]
      ).map { row in
        PipelineStageRecord(
          runID: row["run_id"], position: row["position"], name: row["name"], kind: row["kind"],
          status: PipelineStageRecord.Status(rawValue: row["status"]) ?? .failed,
          started: (row["started_ns"] as Int64?).map { Timestamp(nanoseconds: $0) },
          finished: (row["finished_ns"] as Int64?).map { Timestamp(nanoseconds: $0) },
          bytes: UInt64(row["bytes"] as Int64), items: row["items"], message: row["message"])
      }
    }
  }

  func updatePipelineStage(_ stage: PipelineStageRecord) throws {
    try database.write { db in
      try db.execute(
        sql: """
          UPDATE pipeline_stage SET status = ?, started_ns = ?, finished_ns = ?, bytes = ?, items = ?, message = ?
          WHERE run_id = ? AND position = ?
          """,
        arguments: [
          stage.status.rawValue, stage.started?.nanoseconds, stage.finished?.nanoseconds, Int64(stage.bytes),
          stage.items, stage.message, stage.runID, stage.position,
        ])
    }
  }

  /// Remembers a value for the rest of the run (and for a resumed run).
  func setPipelineValue(runID: Int64, key: String, value: String) throws {
    try database.write { db in
      try db.execute(
        sql: """
          INSERT INTO pipeline_run_value (run_id, key, value) VALUES (?, ?, ?)
          ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value
          """,
        arguments: [runID, key, value])
    }
  }

  package func pipelineValues(runID: Int64) throws -> [String: String] {
    try database.read { db in
      var values: [String: String] = [:]
      for row in try Row.fetchAll(
        db, sql: "SELECT key, value FROM pipeline_run_value WHERE run_id = ?", arguments: [runID])
      {
        values[row["key"]] = row["value"]
      }
      return values
    }
  }

  func recordMediaCheck(_ check: MediaCheck) throws {
    try database.write { db in
      try db.execute(
        sql: """
          INSERT INTO media_check (archive_id, cartridge_id, tape_file, checked_ns, ok, detail) VALUES (?, ?, ?, ?, ?, ?)
          ON CONFLICT (archive_id, cartridge_id, tape_file) DO UPDATE SET checked_ns = excluded.checked_ns,
            ok = excluded.ok, detail = excluded.detail
          """,
        arguments: [
          check.archiveID, check.cartridgeID, check.tapeFile, check.checked.nanoseconds, check.ok, check.detail,
        ])
    }
  }

  package func mediaChecks() throws -> [MediaCheck] {
    try database.read { db in
      try Row.fetchAll(db, sql: "SELECT * FROM media_check").map { row in
        MediaCheck(
          archiveID: row["archive_id"], cartridgeID: row["cartridge_id"], tapeFile: row["tape_file"],
          checked: Timestamp(nanoseconds: row["checked_ns"]), ok: row["ok"], detail: row["detail"])
      }
    }
  }
}
