import ReelCore
import ReelFiles

/// `reel bisect --pg "SELECT …" --pgdata PATH`: the output of `psql -X -A -t -c SQL` on the
/// cluster brought up at the point as `reel pg` does (`PostgresAtPoint`: copied out through
/// the file reader, crash recovery on a private socket), then stopped and removed. Answers
/// compare byte for byte. Each evaluation starts a server: seconds, not milliseconds.
package struct BisectPostgresQuestion: BisectQuestion {
  package let pgdata: String
  package let sql: String
  package let options: PostgresOptions
  /// Seconds the query may run once the server is up.
  package let timeout: Int?

  package init(pgdata: String, sql: String, options: PostgresOptions, timeout: Int? = nil) {
    self.pgdata = pgdata
    self.sql = sql
    self.options = options
    self.timeout = timeout
  }

  package var description: String { "PostgreSQL \(pgdata): \(sql)" }

  package func answer(at point: FilesAtPoint) throws -> BisectAnswer {
    let instance = try PostgresAtPoint.run(
      files: point.files, pgdata: Array(pgdata.utf8), place: point.place, options: options)
    defer { instance.stop() }
    let output = try instance.query(sql, deadline: timeout.map { ContinuousClock.now + .seconds($0) })
    let lines = output.split(separator: "\n", omittingEmptySubsequences: false)
    let summary =
      output.isEmpty ? "no rows" : lines.count == 1 ? output : "\(lines.count) rows: \(lines[0]) …"
    return BisectAnswer(bytes: Array(output.utf8), summary: summary)
  }

  package func command(volume: String, seq: Seq) -> String {
    "reel pg \(shellQuoted(volume)) --at seq:\(seq) --pgdata \(shellQuoted(pgdata)) --sql \(shellQuoted(sql))"
  }
}
