import ArgumentParser
import Foundation
import ReelCore
import ReelDatabases
import ReelIO
import ReelStore

struct BisectCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bisect",
    abstract: "Find the first instant between two points where a question's answer changed.",
    usage: """
      reel bisect NAME --from P1 [--to P2] (--file PATH | --sql "SELECT …" --db PATH | --pg "SELECT …" --pgdata PATH) [--partition N] [--json]
      """,
    discussion: """
      The question is asked at --from, at --to and then at the middle of the interval \
      whose start still gives the --from answer and whose end does not, over the records \
      that changed the volume between them, until the change stands between two \
      neighbouring records: at most ⌈log₂(records)⌉ + 2 evaluations, each printed as it \
      happens. It finds where the answer turned from the --from answer to another; if it \
      changed and changed back in between, bisect cannot see that. A point where the \
      question cannot be answered (the file system or the database unreadable there) \
      counts as an answer of its own. Prints the record just before the change and the \
      first one after it, and the commands that show the state as of just before. \
      POINT: as for `reel restore`. Nothing is written to the store but the catch-up \
      with the journal every reading command does.
      """)

  @OptionGroup var options: StoreOption
  @Argument(help: "Volume name.") var volume: String
  @Option(parsing: .unconditional, help: "The older point (P1): RFC 3339 time, -10m, bookmark, seq:N.")
  var from: String
  @Option(parsing: .unconditional, help: "The newer point (P2); default: latest.") var to: String = "latest"
  @Option(help: "Question: the existence, type and content of this path in the file system.") var file: String?
  @Option(help: "Question: the rows of this read-only SQL query on the SQLite database --db.") var sql: String?
  @Option(help: "The SQLite database file in the volume's file system, for --sql.") var db: String?
  @Option(help: "Question: the rows of this SQL query on the PostgreSQL cluster --pgdata.") var pg: String?
  @Option(help: "The PostgreSQL data directory in the volume's file system, for --pg.") var pgdata: String?
  @Option(help: "The partition holding the file system (1-based), when the volume has a partition table.")
  var partition: Int?
  @Option(help: "Seconds one evaluation's query may run (with --pg: also the server's start, crash recovery included).")
  var timeout: Int?
  @Option(
    name: .customLong("run-as"),
    help: "With --pg: the account the server runs as when reel runs as root (default postgres).")
  var runAs: String?
  @Option(help: "With --pg: folder for each evaluation's private copy (default $TMPDIR, else /tmp).")
  var scratch: String?
  @Flag(help: "One JSON object at the end instead of the listing.") var json = false

  func validate() throws {
    let questions = [file, sql, pg].compactMap { $0 }
    guard questions.count == 1 else {
      throw ValidationError(
        "give exactly one question: --file PATH, --sql \"SELECT …\" --db PATH or --pg \"SELECT …\" --pgdata PATH")
    }
    if sql != nil && db == nil { throw ValidationError("--sql needs --db PATH: the SQLite database in the volume") }
    if db != nil && sql == nil { throw ValidationError("--db goes with --sql") }
    if pg != nil && pgdata == nil {
      throw ValidationError("--pg needs --pgdata PATH: the data directory in the volume")
    }
    if pgdata != nil && pg == nil { throw ValidationError("--pgdata goes with --pg") }
    if let partition, partition < 1 { throw ValidationError("--partition \(partition): partitions count from 1") }
    if let timeout, timeout <= 0 { throw ValidationError("--timeout takes a number of seconds above 0") }
    if pg == nil && (runAs != nil || scratch != nil) { throw ValidationError("--run-as and --scratch go with --pg") }
  }

  func question() throws -> any BisectQuestion {
    if let file { return BisectFileQuestion(path: file) }
    if let sql, let db { return BisectSQLQuestion(database: db, sql: sql, timeout: timeout.map(Double.init)) }
    let options = PostgresOptions(
      account: try PostgresAccount.forServer(requested: runAs), scratch: scratch,
      startupTimeout: .seconds(timeout ?? 600))
    return BisectPostgresQuestion(pgdata: pgdata ?? "", sql: pg ?? "", options: options, timeout: timeout)
  }

  func run() throws {
    let question = try question()
    let store = try Store.open(StoreLayout.resolve(options.store))
    let start = try Point.parse(from)
    let end = try Point.parse(to)
    // With --pg a second Ctrl-C must not end reel before the server it started is stopped.
    Interrupt.install(forceOnSecond: pg == nil)
    var seqWidth = 1
    let report = try Bisect.run(
      live: LiveStore(store: store), volume: volume, from: start.point, to: end.pastOrLatest(), partition: partition,
      question: question,
      started: { range in
        guard !json else { return }
        seqWidth = "seq:\(range.to.seq)".count
        say(
          "Bisecting \(question.description) in volume \(volume) from seq:\(range.from.seq) (\(range.from.time.rfc3339)) to seq:\(range.to.seq) (\(range.to.time.rfc3339)): \(range.records) records changed the volume, at most \(range.maximumEvaluations) evaluations"
        )
        fflush(nil)
      }
    ) { evaluation in
      guard !json else { return }
      say(evaluationLine(evaluation, seqWidth: seqWidth))
      fflush(nil)  // each evaluation shows as it happens, also through a pipe
    }
    for warning in report.warnings { warn(warning) }
    if json {
      say(jsonText(BisectJSON(report)))
      return
    }
    guard let before = report.before, let after = report.after else {
      say(
        "No change found: the answer at --to is the answer at --from. (A change and a change back between them cannot be seen by bisect.)"
      )
      say(countLine(report))
      return
    }
    say("Just before: seq:\(before.point.seq)  \(before.point.time.rfc3339)  \(before.answer.summary)")
    say("Just after:  seq:\(after.point.seq)  \(after.point.time.rfc3339)  \(after.answer.summary)")
    say(countLine(report))
    say("As of just before the change:")
    for command in report.commandsBefore { say("  " + command) }
  }

  /// `  3  seq:120    2026-…Z  b4ee41521b28  same       file, 67 bytes, …`: columns aligned.
  private func evaluationLine(_ evaluation: BisectEvaluation, seqWidth: Int) -> String {
    let verdict = evaluation.number == 1 ? "(--from)" : evaluation.same ? "same" : "different"
    let seq = "seq:\(evaluation.point.seq)"
    let seqColumn = seq + String(repeating: " ", count: max(0, seqWidth - seq.count))
    let verdictColumn = verdict + String(repeating: " ", count: max(0, 9 - verdict.count))
    return
      "\(pad(evaluation.number, 3))  \(seqColumn)  \(evaluation.point.time.rfc3339)  \(evaluation.answer.shortDigest)  \(verdictColumn)  \(evaluation.answer.summary)"
  }

  private func countLine(_ report: BisectReport) -> String {
    "\(report.evaluations.count) evaluations (at most \(report.maximumEvaluations) for \(report.records) records)."
  }
}

/// Right-aligns `value` in `width` characters.
private func pad(_ value: some CustomStringConvertible, _ width: Int) -> String {
  let text = value.description
  return String(repeating: " ", count: max(0, width - text.count)) + text
}
