import Foundation
import ReelCore
import ReelFiles

#if canImport(Glibc)
  import Glibc
#endif

/// How a throwaway server is started.
package struct PostgresOptions: Sendable {
  /// The account the server runs as (`PostgresAccount.forServer`).
  package var account: PostgresAccount
  /// Where the private folder is made; nil chooses (`Scratch.choose`).
  package var scratch: String?
  /// How long startup (crash recovery included) may take.
  package var startupTimeout: Duration
  package var binariesRoot: String

  package init(
    account: PostgresAccount, scratch: String? = nil, startupTimeout: Duration = .seconds(600),
    binariesRoot: String = PostgresVersion.defaultBinariesRoot
  ) {
    self.account = account
    self.scratch = scratch
    self.startupTimeout = startupTimeout
    self.binariesRoot = binariesRoot
  }
}

/// Where the throwaway copy goes when the user did not say: $TMPDIR when set; else memory
/// (tmpfs, /dev/shm) when `dataBytes` fits in half its free room with 256 MiB to spare —
/// the copy is written once, read by one server and deleted, so nothing is gained by
/// writing it to a disk; else /tmp.
package enum Scratch {
  package static func choose(dataBytes: UInt64) -> String {
    let environment = ProcessInfo.processInfo.environment["TMPDIR"] ?? ""
    if !environment.isEmpty { return environment }
    var memory = statvfs()
    if statvfs("/dev/shm", &memory) == 0, access("/dev/shm", W_OK) == 0 {
      let free = UInt64(memory.f_bavail) * UInt64(memory.f_frsize)
      if free / 2 > dataBytes + (256 << 20) { return "/dev/shm" }
    }
    return "/tmp"
  }

}

/// PostgreSQL of a data directory at one point: `run` brings the directory out through
/// the file reader into a private folder and starts it as a throwaway server on a private
/// Unix socket (no TCP), letting it do crash recovery.
package enum PostgresAtPoint {
  /// Starts the server and returns once it accepts connections. Nothing is left behind
  /// when it throws; else the caller must `stop()` the instance (its deinit does too).
  package static func run(
    files: any FileSystemReading, pgdata: [UInt8], place: String, options: PostgresOptions
  ) throws -> PostgresInstance {
    let data = try PostgresDataDirectory.find(files: files, path: pgdata, place: place)
    let binaries = try data.version.binaries(root: options.binariesRoot)
    // The file system's size bounds the data directory's without walking it (a walk of
    // every inode cost more than the copy saved).
    let scratch = options.scratch ?? Scratch.choose(dataBytes: files.info.size)
    let instance = try PostgresInstance(
      version: data.version, binaries: binaries, scratch: scratch, account: options.account)
    do {
      try Interrupt.check()
      var redoCheck: PostgresInstance.RedoCheck?
      let (copy, notes) = try data.bringOut(into: instance.folder) { copy in
        redoCheck = try instance.startRedoCheck(dataDirectory: copy, place: place)
      }
      instance.notes = notes
      guard let redoCheck else { preconditionFailure("bringOut checks the redo before copying base") }
      try redoCheck.refuseRedoOutsideTheCopy()
      try instance.start(dataDirectory: copy, timeout: options.startupTimeout)
      return instance
    } catch {
      instance.stop()
      throw error
    }
  }
}

/// A running throwaway server. Its private folder (0700) holds the data directory copy,
/// the socket folder, the server log and the access rules (trust, local socket only).
package final class PostgresInstance: @unchecked Sendable {
  package let version: PostgresVersion
  package let binaries: String
  /// The private folder; removed by `stop()`.
  package let folder: String
  package let account: PostgresAccount
  /// The socket's folder and port, for clients (PGHOST, PGPORT).
  package var socketDirectory: String { folder + "/socket" }
  package let port: Int
  package var logPath: String { folder + "/server.log" }
  /// What the user should know about the copy (signal files removed, defaults used).
  package internal(set) var notes: [String] = []
  /// The role clients connect as: the server's account, the name initdb gives the
  /// bootstrap superuser by default (a `-U` in the client's arguments wins).
  package var role: String { account.name }

  private let lock = NSLock()
  private var server: PostgresProcess?
  private var removed = false

  init(version: PostgresVersion, binaries: String, scratch: String, account: PostgresAccount) throws {
    self.version = version
    self.binaries = binaries
    self.account = account
    port = Int.random(in: 20_000...60_000)
    var template = Array((scratch + "/reel-pg-XXXXXX").utf8CString)
    guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
      throw ReelError(
        .io, "cannot create a private folder in \(scratch)", remedy: "give --scratch a folder with room", errno: errno)
    }
    folder = String(cString: made)
    do {
      try makeFolder(socketDirectory)
      try writePrivateFile(folder + "/pg_hba.conf", "local all all trust\n")
      try writePrivateFile(folder + "/pg_ident.conf", "")
    } catch {
      removeFolder()
      throw error
    }
  }

  deinit { stop() }

  /// Starts the server on the copy and waits until it accepts connections.
  func start(dataDirectory: String, timeout: Duration) throws {
    if account.uid != geteuid() { try giveTree(folder, to: account) }
    let settings = [
      "listen_addresses=", "unix_socket_directories=\(socketDirectory)", "unix_socket_permissions=0700",
      "hba_file=\(folder)/pg_hba.conf", "ident_file=\(folder)/pg_ident.conf", "archive_mode=off",
      "shared_preload_libraries=", "ssl=off", "fsync=off", "synchronous_commit=off", "full_page_writes=off",
      "max_connections=20", "superuser_reserved_connections=3", "shared_buffers=64MB", "huge_pages=off",
      "autovacuum=off", "logging_collector=off", "log_destination=stderr",
      "lc_messages=C", "lc_monetary=C", "lc_numeric=C", "lc_time=C", "cluster_name=reel-pg",
    ]
    let arguments = ["-D", dataDirectory, "-p", String(port)] + settings.flatMap { ["-c", $0] }
    let server = try PostgresProcess(
      binaries + "/postgres", arguments, environment: serverEnvironment, account: account,
      stdout: .file(logPath), stderr: .file(logPath))
    lock.withLock { self.server = server }
    let deadline = ContinuousClock.now + timeout
    var polls = 0
    while true {
      if let status = server.status {
        throw ReelError(
          .io, "PostgreSQL \(version) did not start on the copy (it exited with status \(status))\(logTail())",
          remedy: "the log above says why; \(logPath) is removed with the copy")
      }
      try Interrupt.check()
      if ContinuousClock.now >= deadline {
        throw ReelError(
          .io,
          "PostgreSQL \(version) did not accept connections within \(timeout) (crash recovery may need longer)\(logTail())",
          remedy: "give a longer --timeout", errno: ETIMEDOUT)
      }
      // The postmaster says it accepts connections in its pid file, which costs one read
      // to look at (`pg_ctl start` waits on the same line); pg_isready (a process each
      // time, 20 ms on a cold cache) is asked every half second in case the file says
      // nothing.
      if postmasterSaysReady(dataDirectory: dataDirectory, pid: server.pid) { return }
      if polls % 250 == 249, try ready() { return }
      polls += 1
      usleep(2_000)
    }
  }

  /// Whether `postmaster.pid` names this server (line 1) and says `ready` (line 8,
  /// PostgreSQL 10 and later).
  private func postmasterSaysReady(dataDirectory: String, pid: pid_t) -> Bool {
    guard let text = try? String(contentsOfFile: dataDirectory + "/postmaster.pid", encoding: .utf8) else {
      return false
    }
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    return lines.count > 7 && lines[0].trimmingCharacters(in: .whitespaces) == String(pid)
      && lines[7].trimmingCharacters(in: .whitespaces) == "ready"
  }

  /// Crash recovery replays a CREATE TABLESPACE logged after the last checkpoint at the
  /// absolute path it names, on this machine: it would make (or take over) a folder
  /// outside the private copy, perhaps the live server's. Such a point is refused.
  /// `startRedoCheck` reads the control file and starts `pg_waldump` on the WAL since the
  /// last checkpoint's redo point (it needs `global` and `pg_wal` only, so it runs while
  /// the relation files are copied); `RedoCheck.refuseRedoOutsideTheCopy` waits for it.
  func startRedoCheck(dataDirectory: String, place: String) throws -> RedoCheck {
    let (_, control) = try PostgresProcess.output(
      binaries + "/pg_controldata", ["-D", dataDirectory], environment: serverEnvironment, errors: nil, deadline: nil)
    var fields: [String: String] = [:]
    for line in String(decoding: control, as: UTF8.self).split(separator: "\n") {
      guard let colon = line.firstIndex(of: ":") else { continue }
      fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    guard let redo = fields["Latest checkpoint's REDO location"],
      let timeline = fields["Latest checkpoint's TimeLineID"]
    else {
      throw ReelError(
        .corrupt, "pg_controldata cannot read the control file of the data directory in \(place)",
        remedy: "the data directory is damaged at that point; try another point")
    }
    let records = folder + "/redo-tablespaces.txt"
    let waldump = try PostgresProcess(
      binaries + "/pg_waldump", ["-p", dataDirectory + "/pg_wal", "-s", redo, "-t", timeline, "-r", "Tablespace"],
      environment: serverEnvironment, account: nil, stdout: .file(records), stderr: .null)
    return RedoCheck(waldump: waldump, records: records, place: place)
  }

  /// A `pg_waldump` looking for tablespaces the redo would create (`startRedoCheck`); its
  /// deinit stops it when the copy fails first.
  struct RedoCheck {
    let waldump: PostgresProcess
    let records: String
    let place: String

    func refuseRedoOutsideTheCopy() throws {
      _ = try waldump.finish(deadline: nil)
      let text = (try? String(contentsOfFile: records, encoding: .utf8)) ?? ""
      unlink(records)
      let created = text.split(separator: "\n").compactMap { line -> String? in
        guard let range = line.range(of: "desc: CREATE ") else { return nil }
        let rest = line[range.upperBound...]
        guard let open = rest.firstIndex(of: "\""), let close = rest.lastIndex(of: "\""), open < close else {
          return String(rest)
        }
        return String(rest[rest.index(after: open)..<close])
      }
      guard created.isEmpty else {
        throw ReelError(
          .incompatible,
          "at \(place) the WAL since the last checkpoint creates the tablespace folder \(created.joined(separator: ", ")); crash recovery would create or take over that path on this machine, outside the private copy, so the server was not started",
          remedy:
            "choose a point after the next checkpoint (CHECKPOINT, or a bookmark taken after one), or restore the volume and start the cluster where that path is its own"
        )
      }
    }
  }

  private func ready() throws -> Bool {
    let probe = try PostgresProcess(
      binaries + "/pg_isready", ["-q", "-h", socketDirectory, "-p", String(port), "-t", "2", "-d", "template1"],
      environment: clientEnvironment, account: nil, stdout: .null, stderr: .null)
    guard let status = probe.wait(until: ContinuousClock.now + .seconds(5)) else {
      probe.stop(first: SIGKILL, grace: .zero)
      try Interrupt.check()
      return false
    }
    return status == 0
  }

  /// Refuses client arguments that would reach another server (`-h`, `-p`, `--host`,
  /// `--port`, a connection string naming a host or port): a dump of the live database
  /// taken by mistake for the past one is the worst outcome of a restore.
  package static func refuseOtherServers(_ arguments: [String]) throws {
    for argument in arguments {
      let option =
        (argument.hasPrefix("-h") || argument.hasPrefix("-p")) && !argument.hasPrefix("--")
        || argument.hasPrefix("--host") || argument.hasPrefix("--port")
      let connection =
        argument.hasPrefix("postgres://") || argument.hasPrefix("postgresql://")
        || ["host=", "hostaddr=", "port=", "service="].contains { argument.contains($0) }
      if option || connection {
        throw ReelError(
          .usage,
          "\(argument): reel pg connects its client to the throwaway server only; host, port and connection strings are refused",
          remedy: "leave them out (give -U ROLE and a database name if needed)")
      }
    }
  }

  /// Runs a client program of this version (`pg_dump`, `psql`) against the server with
  /// Reel's standard output and error; returns its exit status. `deadline`: the client
  /// is stopped and an error thrown when it has not finished by then.
  package func runClient(_ program: String, _ arguments: [String], deadline: ContinuousClock.Instant?) throws -> Int32 {
    let client = try PostgresProcess(
      binaries + "/" + program, arguments, environment: clientEnvironment, account: nil, stdout: .inherit,
      stderr: .inherit)
    return try client.finish(deadline: deadline)
  }

  /// One query through `psql -X -A -t` (unaligned, tuples only: one row per line, columns
  /// separated by `|`); its output, or an error with what psql said.
  package func query(_ sql: String, database: String? = nil, deadline: ContinuousClock.Instant? = nil) throws -> String
  {
    let errors = folder + "/query-\(UInt32.random(in: 0...UInt32.max)).err"
    defer { unlink(errors) }
    var arguments = ["-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql]
    if let database { arguments += ["-d", database] }
    let (status, output) = try PostgresProcess.output(
      binaries + "/psql", arguments, environment: clientEnvironment, errors: errors, deadline: deadline)
    guard status == 0 else {
      let said =
        (try? String(contentsOfFile: errors, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
      throw ReelError(.usage, "psql failed (status \(status)): \(said.isEmpty ? "no message" : said)")
    }
    var text = String(decoding: output, as: UTF8.self)
    if text.hasSuffix("\n") { text.removeLast() }
    return text
  }

  /// Immediate shutdown (SIGQUIT: the copy is thrown away, so nothing in it needs the
  /// checkpoint a fast shutdown writes), SIGKILL after 10 s, then the private folder is
  /// removed. Safe to call more than once, from any path.
  package func stop() {
    let server = lock.withLock { () -> PostgresProcess? in
      defer { self.server = nil }
      return self.server
    }
    server?.stop(first: SIGQUIT, grace: .seconds(10))
    removeFolder()
  }

  private func removeFolder() {
    let first = lock.withLock { () -> Bool in
      defer { removed = true }
      return !removed
    }
    if first { PrivateFolder.remove(folder) }
  }

  /// The server log's last lines, for an error message.
  package func logTail(lines: Int = 20) -> String {
    guard let text = try? String(contentsOfFile: logPath, encoding: .utf8), !text.isEmpty else { return "" }
    let tail = text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines + 1)
    return "; the server log ends:\n" + tail.joined(separator: "\n").trimmingCharacters(in: .newlines)
  }

  private var serverEnvironment: [String: String] {
    ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TZ": ProcessInfo.processInfo.environment["TZ"] ?? "UTC"]
  }

  /// Clients reach this server only: the user's PG* variables (another host, a password
  /// file) are left out.
  private var clientEnvironment: [String: String] {
    var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("PG") }
    environment["PGHOST"] = socketDirectory
    environment["PGPORT"] = String(port)
    environment["PGUSER"] = role
    environment["PGDATABASE"] = "postgres"
    environment["PGCONNECT_TIMEOUT"] = "10"
    return environment
  }
}
