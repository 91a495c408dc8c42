import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// A real PostgreSQL 15 cluster for tests: made by initdb, run by the `postgres` account
/// (PostgreSQL refuses root) on a Unix socket in a folder of its own (no TCP), known by
/// its PID only. Stopped with SIGKILL when dropped, whatever happened in the test.
package final class PostgresCluster {
  package static let binaries = "/usr/lib/postgresql/15/bin"
  package static let account = "postgres"
  package let dataDirectory: String
  package let socketDirectory: String
  package let logPath: String
  package let port = 5432
  private var server: ChildProcess?

  /// Runs initdb (superuser `postgres`, trust on the socket, 1 MiB WAL segments so the
  /// cluster stays small) into `dataDirectory`; its parent is given to the account. The
  /// socket and the log go into `work`, also given to the account.
  package init(dataDirectory: String, work: String) throws {
    self.dataDirectory = dataDirectory
    socketDirectory = work + "/socket"
    logPath = work + "/postgres.log"
    try FileManager.default.createDirectory(atPath: socketDirectory, withIntermediateDirectories: true)
    for folder in [(dataDirectory as NSString).deletingLastPathComponent, work, socketDirectory] {
      try Self.giveToAccount(folder)
    }
    try runAsAccount(
      Self.binaries + "/initdb",
      [
        "-D", dataDirectory, "-U", "postgres", "-A", "trust", "--no-sync", "--wal-segsize=1", "-E", "UTF8",
        "--locale=C",
      ])
  }

  /// A cluster whose data directory already exists (on a clone or a restored copy):
  /// nothing is initialised; the socket and the log go into `work`.
  package init(existingDataDirectory dataDirectory: String, work: String) throws {
    self.dataDirectory = dataDirectory
    socketDirectory = work + "/socket"
    logPath = work + "/postgres.log"
    try FileManager.default.createDirectory(atPath: socketDirectory, withIntermediateDirectories: true)
    for folder in [work, socketDirectory] { try Self.giveToAccount(folder) }
  }

  /// Starts the server and waits until it accepts connections.
  package func start(settings: [String] = []) throws {
    let arguments =
      ["-D", dataDirectory, "-p", String(port), "-k", socketDirectory, "-c", "listen_addresses="]
      + settings.flatMap { ["-c", $0] }
    let (executable, full) = Self.asAccount(Self.binaries + "/postgres", arguments)
    let server = try ChildProcess(executable, full, stdout: logPath, stderr: logPath)
    self.server = server
    for _ in 0..<600 {
      guard server.isRunning else {
        throw SupportError("postgres did not start: \((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")")
      }
      let ready = try run(Self.binaries + "/pg_isready", ["-q", "-h", socketDirectory, "-p", String(port)])
      if ready.succeeded { return }
      usleep(100_000)
    }
    throw SupportError("postgres did not accept connections within a minute")
  }

  /// The server's PID while it runs.
  package var pid: pid_t? { server.flatMap { $0.isRunning ? $0.pid : nil } }

  /// SIGINT: fast shutdown, a clean stop. `immediate`: SIGQUIT, what `pg_ctl stop -m
  /// immediate` sends — no checkpoint, so the next start must do crash recovery. A server
  /// that has not stopped after a minute (one stuck in recovery on a full disk kept a run
  /// of the tests waiting for good) gets SIGQUIT, then SIGKILL: a test fails, it does not
  /// hang.
  package func stop(immediate: Bool = false) {
    guard let server else { return }
    self.server = nil
    server.signal(immediate ? SIGQUIT : SIGINT)
    if server.wait(upTo: 60) != nil { return }
    server.signal(SIGQUIT)
    if server.wait(upTo: 10) != nil { return }
    server.signal(SIGKILL)
    server.wait()
  }

  /// psql -X -A -t -v ON_ERROR_STOP=1 as the superuser; its output.
  @discardableResult
  package func psql(_ sql: String, database: String = "postgres") throws -> String {
    try runChecked(
      Self.binaries + "/psql",
      [
        "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-h", socketDirectory, "-p", String(port), "-U", "postgres",
        "-d", database, "-c", sql,
      ]
    ).stdout
  }

  /// Arguments for a client program to reach this server.
  package var connection: [String] { ["-h", socketDirectory, "-p", String(port), "-U", "postgres"] }

  deinit {
    if let server, server.isRunning {
      server.signal(SIGKILL)
      server.wait()
    }
  }

  /// `executable` run as the account when the tests run as root (through setpriv, which
  /// becomes the program: same PID).
  package static func asAccount(_ executable: String, _ arguments: [String]) -> (String, [String]) {
    guard geteuid() == 0 else { return (executable, arguments) }
    return (
      "/usr/bin/setpriv",
      ["--reuid=\(account)", "--regid=\(account)", "--clear-groups", "--", executable] + arguments
    )
  }

  @discardableResult
  private func runAsAccount(_ executable: String, _ arguments: [String]) throws -> CommandResult {
    let (program, full) = Self.asAccount(executable, arguments)
    return try ReelTestSupport.runChecked(program, full, directory: "/")
  }

  package static func giveToAccount(_ path: String) throws {
    guard geteuid() == 0 else { return }
    guard let entry = getpwnam(account) else { throw SupportError("no \(account) account") }
    guard chown(path, entry.pointee.pw_uid, entry.pointee.pw_gid) == 0 else {
      throw SupportError("chown \(path): \(String(cString: strerror(errno)))")
    }
  }

  /// Processes whose command line or working folder mentions `text` (a test's private
  /// folder: server children rename themselves but stay in their data directory), to check
  /// none is left; looked at, never killed.
  package static func processes(mentioning text: String) -> [String] {
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap { entry in
      guard Int(entry) != nil, Int32(entry) != getpid(),
        let data = FileManager.default.contents(atPath: "/proc/\(entry)/cmdline")
      else { return nil }
      let line = String(decoding: data.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
      let folder = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(entry)/cwd")) ?? ""
      return line.contains(text) || folder.contains(text) ? "\(entry): \(line) (in \(folder))" : nil
    }
  }
}
