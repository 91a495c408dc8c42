import ArgumentParser
import Foundation
import ReelCore
import ReelDatabases

struct PgCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "pg",
    abstract: "Start PostgreSQL on a data directory as it was at a point, and pg_dump (or psql) from it.",
    discussion: """
      The data directory --pgdata inside the volume's file system at POINT (and its \
      tablespaces, followed inside the same file system) is copied out through the file \
      reader into a private folder (0700) under --scratch (memory when it fits), started with the system's \
      PostgreSQL of the version its PG_VERSION names (/usr/lib/postgresql/NN/bin; as root, \
      the server runs as `postgres` or --run-as), on a Unix socket in that folder only (no \
      TCP), and left to do crash recovery. Then `pg_dump ARGS` runs against it (output to \
      standard output), or `psql -X -A -c SQL ARGS` with --sql. The server is stopped and \
      the folder removed on every path, errors and Ctrl-C included. Clients connect as \
      the server's account name (initdb's default superuser): add -U ROLE to ARGS \
      otherwise, and a database name (default postgres). POINT: as for `reel restore`. \
      Nothing is written to the store or the volume.
      """)

  @OptionGroup var source: FilesCommand.Source
  @Argument(help: "Volume name.") var volume: String
  @Option(parsing: .unconditional, help: "The point: RFC 3339 time, -10m, bookmark, seq:N, latest.")
  var at: String
  @Option(help: "The data directory inside the file system (the folder holding PG_VERSION).") var pgdata: String
  @Option(help: "Run this SQL with psql (-X -A) instead of pg_dump.") var sql: String?
  @Option(help: "Seconds the server may take to start (crash recovery included) and, again, the command to finish.")
  var timeout: Int?
  @Option(
    name: .customLong("run-as"), help: "The account the server runs as when reel runs as root (default postgres).")
  var runAs: String?
  @Option(
    help:
      "Folder for the private copy (default $TMPDIR if set, else /dev/shm when the volume's file system fits in half its free room, else /tmp)."
  )
  var scratch: String?
  @Argument(parsing: .postTerminator, help: "Arguments for pg_dump (or psql with --sql), after --.")
  var arguments: [String] = []

  func validate() throws {
    if let timeout, timeout <= 0 { throw ValidationError("--timeout takes a number of seconds above 0") }
  }

  func run() throws {
    try PostgresInstance.refuseOtherServers(arguments)
    let opened = try source.open(volume, at: at)
    Interrupt.install(forceOnSecond: false)
    let options = PostgresOptions(
      account: try PostgresAccount.forServer(requested: runAs), scratch: scratch,
      startupTimeout: .seconds(timeout ?? 600))
    let instance = try PostgresAtPoint.run(
      files: opened.files, pgdata: Array(pgdata.utf8), place: opened.place, options: options)
    defer { instance.stop() }
    for note in instance.notes { warn(note) }
    let deadline = timeout.map { ContinuousClock.now + .seconds($0) }
    let status: Int32
    if let sql {
      status = try instance.runClient(
        "psql", ["-X", "-A", "-v", "ON_ERROR_STOP=1", "-c", sql] + arguments, deadline: deadline)
    } else {
      status = try instance.runClient("pg_dump", arguments, deadline: deadline)
    }
    try Interrupt.check()
    if status != 0 {
      warn("\(sql == nil ? "pg_dump" : "psql") ended with status \(status) (its message is above)")
      throw ExitCode(status)
    }
  }
}
