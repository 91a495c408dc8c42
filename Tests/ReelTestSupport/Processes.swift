import CTestSupport
import Foundation
import ReelCore
import ReelIO

#if canImport(Glibc)
  import Glibc
#endif

/// A test-support step that could not be done (a tool missing, a process that would not
/// start); thrown so the test fails with the reason.
package struct SupportError: Error, CustomStringConvertible {
  package let description: String
  package init(_ description: String) { self.description = description }
}

/// The `reel` executable built next to the test bundle.
package var reelExecutable: String {
  var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
  if directory.path.hasSuffix(".xctest/Contents/MacOS") {
    directory = directory.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
  }
  return directory.appendingPathComponent("reel").path
}

/// A system tool by name, from the usual folders.
package func tool(_ name: String) throws -> String {
  for folder in ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"] {
    let path = folder + "/" + name
    if FileManager.default.isExecutableFile(atPath: path) { return path }
  }
  throw SupportError("\(name) is not installed")
}

package struct CommandResult: Sendable {
  /// The exit status, or 128 + the signal's number when a signal ended the process.
  package var status: Int32
  /// The signal that ended the process, if one did.
  package var signal: Int32?
  package var stdout: String
  package var stderr: String
  package var succeeded: Bool { status == 0 }
  package var killed: Bool { signal != nil }
  package var output: String { stdout + stderr }
}

/// Runs a program to completion and returns what it wrote. Standard output and error are
/// read together as they come, so a child filling either pipe never blocks. `environment`
/// is added to this process's own (a nil value removes a variable); `input`, when given,
/// is the child's standard input (else /dev/null).
@discardableResult
package func run(
  _ executable: String, _ arguments: [String], environment: [String: String?] = [:], input: [UInt8]? = nil,
  directory: String? = nil
) throws -> CommandResult {
  // A child that exits before reading all its input must not kill the test runner.
  if input != nil { signal(SIGPIPE, SIG_IGN) }
  let inPipe = try CloseOnExecPipe()
  let outPipe = try CloseOnExecPipe()
  let errPipe = try CloseOnExecPipe()
  let child: ChildProcess
  do {
    child = try ChildProcess(
      executable, arguments, environment: environment, directory: directory,
      stdin: input != nil ? .descriptor(inPipe.read) : .null, stdout: .descriptor(outPipe.write),
      stderr: .descriptor(errPipe.write))
  } catch {
    for descriptor in [inPipe.read, inPipe.write, outPipe.read, outPipe.write, errPipe.read, errPipe.write] {
      close(descriptor)
    }
    throw error
  }
  close(inPipe.read)
  close(outPipe.write)
  close(errPipe.write)
  let pending = input ?? []
  var writing: Int32? = nil
  if pending.isEmpty {
    close(inPipe.write)
  } else {
    // Written only as far as the pipe has room, so output is read while input is pending.
    _ = fcntl(inPipe.write, F_SETFL, O_NONBLOCK)
    writing = inPipe.write
  }

  var written = 0
  var reading: [Int32: [UInt8]] = [outPipe.read: [], errPipe.read: []]
  var collected: [Int32: [UInt8]] = [:]
  var buffer = [UInt8](repeating: 0, count: 1 << 16)
  while writing != nil || !reading.isEmpty {
    var polled = reading.keys.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
    if let writing { polled.append(pollfd(fd: writing, events: Int16(POLLOUT), revents: 0)) }
    if poll(&polled, nfds_t(polled.count), -1) < 0 {
      if errno == EINTR { continue }
      throw SupportError("poll: \(String(cString: strerror(errno)))")
    }
    for entry in polled where entry.revents != 0 {
      if entry.fd == writing {
        let count = pending.withUnsafeBytes { write(entry.fd, $0.baseAddress! + written, pending.count - written) }
        if count > 0 { written += count }
        if written == pending.count || (count < 0 && errno != EAGAIN && errno != EINTR) {
          close(entry.fd)
          writing = nil
        }
      } else {
        let count = buffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress!, $0.count) }
        if count > 0 {
          reading[entry.fd]!.append(contentsOf: buffer[0..<count])
        } else if count == 0 || (errno != EAGAIN && errno != EINTR) {
          collected[entry.fd] = reading.removeValue(forKey: entry.fd)
          close(entry.fd)
        }
      }
    }
  }
  let raw = child.waitRaw()
  let terminatingSignal = raw & 0x7F
  return CommandResult(
    status: terminatingSignal == 0 ? (raw >> 8) & 0xFF : 128 + terminatingSignal,
    signal: terminatingSignal == 0 ? nil : terminatingSignal,
    stdout: String(decoding: collected[outPipe.read] ?? [], as: UTF8.self),
    stderr: String(decoding: collected[errPipe.read] ?? [], as: UTF8.self))
}

/// The arguments that start `executable` through /bin/sh with the file-creation mask
/// `mask`, as a login shell or service manager would: for tests that Reel sets the modes
/// of what it creates itself instead of leaving them to the umask.
package func withUmask(_ mask: mode_t, _ executable: String, _ arguments: [String]) -> (String, [String]) {
  ("/bin/sh", ["-c", "umask \(String(mask, radix: 8)) && exec \"$0\" \"$@\"", executable] + arguments)
}

/// `run` with the file-creation mask `mask` (see `withUmask`).
@discardableResult
package func run(
  umask mask: mode_t, _ executable: String, _ arguments: [String], environment: [String: String?] = [:]
) throws -> CommandResult {
  let (shell, shellArguments) = withUmask(mask, executable, arguments)
  return try run(shell, shellArguments, environment: environment)
}

/// Runs `command` as the unprivileged account `nobody` (group nogroup, no other groups),
/// the "another local user" of the permission tests.
package func runAsNobody(_ command: [String]) throws -> CommandResult {
  try run(try tool("setpriv"), ["--reuid=nobody", "--regid=nogroup", "--clear-groups"] + command)
}

/// Runs a program that must succeed; throws with its output otherwise.
@discardableResult
package func runChecked(
  _ executable: String, _ arguments: [String], environment: [String: String?] = [:], directory: String? = nil
) throws -> CommandResult {
  let result = try run(executable, arguments, environment: environment, directory: directory)
  guard result.succeeded else {
    throw SupportError(
      "\(executable) \(arguments.joined(separator: " ")) exited \(result.status)\n\(result.stdout)\n\(result.stderr)")
  }
  return result
}

/// A pipe whose ends are closed on exec, so that children started at the same moment by
/// other tests do not hold them open (a reader would then never see the end).
private struct CloseOnExecPipe {
  let read: Int32
  let write: Int32

  init() throws {
    var ends: [Int32] = [0, 0]
    guard pipe2(&ends, O_CLOEXEC) == 0 else { throw SupportError("pipe2: \(String(cString: strerror(errno)))") }
    read = ends[0]
    write = ends[1]
  }
}

/// A child process started with posix_spawn and reaped with waitpid. Foundation's
/// `Process` was seen to hang in `waitUntilExit` when tests spawn from several threads.
package final class ChildProcess: @unchecked Sendable {
  package let pid: pid_t
  private let lock = NSLock()
  private var status: Int32?

  /// Starts `executable`; stdin is /dev/null, stdout and stderr go to the given files
  /// (appended), or to /dev/null.
  package convenience init(
    _ executable: String, _ arguments: [String], stdout: String? = nil, stderr: String? = nil,
    environment: [String: String?] = [:]
  ) throws {
    try self.init(
      executable, arguments, environment: environment, directory: nil, stdin: .null,
      stdout: .file(stdout ?? "/dev/null", mode: 0o644), stderr: .file(stderr ?? "/dev/null", mode: 0o644))
  }

  /// Starts `executable` with the given standard streams; every other descriptor is closed
  /// in the child: a descriptor another test thread has open without O_CLOEXEC (a file on
  /// its loop mount, say) would otherwise live on in a long-running child (`reel mount`,
  /// nbdfuse) and keep that test's mount busy. Test threads block signals, so the child
  /// starts with none blocked (or it would never see SIGTERM).
  init(
    _ executable: String, _ arguments: [String], environment changes: [String: String?], directory: String?,
    stdin: Spawn.Stream, stdout: Spawn.Stream, stderr: Spawn.Stream
  ) throws {
    var environment = ProcessInfo.processInfo.environment
    for (name, value) in changes { environment[name] = value }
    do {
      pid = try Spawn.start(
        executable, [executable] + arguments, environment: environment, directory: directory, stdin: stdin,
        stdout: stdout, stderr: stderr, grouping: .same, defaultSignals: [SIGINT, SIGTERM, SIGPIPE])
    } catch let error as ReelError {
      throw SupportError(error.message)
    }
  }

  deinit {
    if isRunning { kill(pid, SIGKILL) }
    _ = waitRaw()
  }

  package var isRunning: Bool {
    lock.withLock {
      if status != nil { return false }
      var raw: Int32 = 0
      if waitpid(pid, &raw, WNOHANG) == pid { status = raw }
      return status == nil
    }
  }

  /// Waits for the exit; the exit status, or 128 + signal number when killed.
  @discardableResult
  package func wait() -> Int32 {
    let raw = waitRaw()
    let signal = raw & 0x7F
    return signal == 0 ? (raw >> 8) & 0xFF : 128 + signal
  }

  /// Waits for the exit; the status as waitpid gives it.
  func waitRaw() -> Int32 {
    lock.withLock {
      if let status { return status }
      var raw: Int32 = 0
      while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
      status = raw
      return raw
    }
  }

  package func signal(_ number: Int32) {
    if isRunning { kill(pid, number) }
  }

  /// Waits at most `seconds` for the exit; its status as `wait()` gives it, or nil while
  /// the process still runs.
  package func wait(upTo seconds: Double) -> Int32? {
    let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
    while isRunning {
      guard ContinuousClock.now < deadline else { return nil }
      usleep(20_000)
    }
    return wait()
  }
}
