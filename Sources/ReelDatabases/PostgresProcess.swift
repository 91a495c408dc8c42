import Foundation
import ReelCore
import ReelIO

#if canImport(Glibc)
  import Glibc
#endif

/// A child process of `reel pg`: the server or a client (pg_dump, psql, pg_isready). Each
/// is started in a process group of its own, so a Ctrl-C at the terminal reaches only
/// Reel, which then stops its children in order; each gets only descriptors 0–2, a clean
/// environment and the default signal dispositions. Known by PID only: never looked for
/// by name.
final class PostgresProcess: @unchecked Sendable {
  let pid: pid_t
  let name: String
  private let lock = NSLock()
  private var exitStatus: Int32?

  /// Starts `executable`. `account`: run as this user and group (through `setpriv`, which
  /// becomes the program itself with the same PID); nil runs as Reel's own user.
  init(
    _ executable: String, _ arguments: [String], environment: [String: String], account: PostgresAccount?,
    stdout: Spawn.Stream, stderr: Spawn.Stream
  ) throws {
    name = (executable as NSString).lastPathComponent
    var program = executable
    var argv = [executable] + arguments
    if let account, account.uid != geteuid() {
      program = "/usr/bin/setpriv"
      argv =
        [program, "--reuid=\(account.uid)", "--regid=\(account.gid)", "--clear-groups", "--", executable]
        + arguments
    }
    pid = try Spawn.start(
      program, argv, environment: environment, stdout: stdout, stderr: stderr, grouping: .ownGroup)
  }

  /// The exit status (128 + N when signal N ended it), or nil while it runs. Reaps it.
  var status: Int32? {
    lock.withLock {
      if let exitStatus { return exitStatus }
      var raw: Int32 = 0
      let result = waitpid(pid, &raw, WNOHANG)
      if result == pid {
        exitStatus = Self.decode(raw)
      } else if result < 0 && errno == ECHILD {
        exitStatus = 255
      }
      return exitStatus
    }
  }

  var isRunning: Bool { status == nil }

  /// Waits until the process ends, until `deadline`, or until Reel is interrupted
  /// (SIGINT/SIGTERM); returns the status, or nil if it still runs.
  func wait(until deadline: ContinuousClock.Instant?) -> Int32? {
    var pause = Self.firstPause
    while true {
      if let status { return status }
      if Interrupt.signal != nil { return nil }
      if let deadline, ContinuousClock.now >= deadline { return nil }
      Self.sleep(&pause)
    }
  }

  /// Waits for a child are polls that start short and grow: most children here (pg_dump
  /// of one table, pg_isready, a server's stop) end within milliseconds, and a fixed 20 ms
  /// poll made each wait 10 ms longer on average; a long dump is still polled gently.
  static let firstPause: useconds_t = 1_000
  static let longestPause: useconds_t = 20_000

  static func sleep(_ pause: inout useconds_t) {
    usleep(pause)
    pause = min(longestPause, pause * 2)
  }

  func signal(_ number: Int32) {
    guard isRunning else { return }
    kill(pid, number)
  }

  /// `first` (SIGQUIT: PostgreSQL's immediate shutdown; SIGTERM for clients), then
  /// SIGKILL if it has not ended within `grace`; always reaps it.
  func stop(first: Int32, grace: Duration) {
    guard isRunning else { return }
    kill(pid, first)
    let deadline = ContinuousClock.now + grace
    var pause = Self.firstPause
    while isRunning && ContinuousClock.now < deadline { Self.sleep(&pause) }
    guard isRunning else { return }
    kill(pid, SIGKILL)
    pause = Self.firstPause
    while isRunning { Self.sleep(&pause) }
  }

  /// Runs `executable` to the end (or `deadline`, or an interrupt: then it is stopped and
  /// an error thrown) and returns its status and standard output; standard error goes to
  /// `errors` (a file) or nowhere.
  static func output(
    _ executable: String, _ arguments: [String], environment: [String: String], errors: String?,
    deadline: ContinuousClock.Instant?
  ) throws -> (status: Int32, output: [UInt8]) {
    var ends: [Int32] = [0, 0]
    guard pipe(&ends) == 0 else { throw ReelError(.io, "cannot make a pipe", errno: errno) }
    for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
    let child: PostgresProcess
    do {
      child = try PostgresProcess(
        executable, arguments, environment: environment, account: nil, stdout: .descriptor(ends[1]),
        stderr: errors.map { .file($0) } ?? .null)
    } catch {
      close(ends[0])
      close(ends[1])
      throw error
    }
    close(ends[1])
    defer { close(ends[0]) }
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
      var poller = pollfd(fd: ends[0], events: Int16(POLLIN), revents: 0)
      if poll(&poller, 1, 100) > 0 {
        let count = read(ends[0], &buffer, buffer.count)
        if count <= 0 { break }
        output += buffer[0..<count]
      } else if Interrupt.signal != nil || deadline.map({ ContinuousClock.now >= $0 }) == true {
        break
      }
    }
    return (try child.finish(deadline: deadline), output)
  }

  /// Waits for the end; stops it (SIGTERM, then SIGKILL) and throws at `deadline` or on
  /// an interrupt.
  func finish(deadline: ContinuousClock.Instant?) throws -> Int32 {
    if let status = wait(until: deadline) { return status }
    stop(first: SIGTERM, grace: .seconds(2))
    try Interrupt.check()
    throw ReelError(
      .io, "\(name) did not finish within the --timeout; it was stopped", remedy: "give a longer --timeout",
      errno: ETIMEDOUT)
  }

  private static func decode(_ raw: Int32) -> Int32 {
    let signal = raw & 0x7f
    return signal == 0 ? (raw >> 8) & 0xff : 128 + signal
  }

  deinit {
    stop(first: SIGKILL, grace: .zero)
  }
}

/// The local account the server runs as (PostgreSQL refuses to run as root).
package struct PostgresAccount: Sendable, Equatable {
  package var name: String
  package var uid: uid_t
  package var gid: gid_t

  /// The account `name` of this machine (an error naming it when there is none).
  package static func named(_ name: String) throws -> PostgresAccount {
    guard let entry = getpwnam(name) else {
      throw ReelError(
        .notFound, "there is no local account named \(name) to run PostgreSQL as",
        remedy:
          "PostgreSQL refuses to run as root: create the account (the postgresql packages create `postgres`) or give --run-as USER"
      )
    }
    return PostgresAccount(name: name, uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid)
  }

  /// Reel's own account.
  package static func current() -> PostgresAccount {
    let uid = geteuid()
    let name = getpwuid(uid).map { String(cString: $0.pointee.pw_name) } ?? String(uid)
    return PostgresAccount(name: name, uid: uid, gid: getegid())
  }

  /// Who runs the server: `requested` if given; as root, `postgres`; else Reel's own user.
  package static func forServer(requested: String?) throws -> PostgresAccount {
    if let requested {
      let account = try named(requested)
      guard geteuid() == 0 || account.uid == geteuid() else {
        throw ReelError(
          .usage, "only root can run the server as another account (\(requested))",
          remedy: "leave out --run-as, or run reel as root")
      }
      guard account.uid != 0 else {
        throw ReelError(.usage, "PostgreSQL refuses to run as root", remedy: "give --run-as an ordinary account")
      }
      return account
    }
    return geteuid() == 0 ? try named("postgres") : current()
  }
}
