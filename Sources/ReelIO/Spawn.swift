import CLinux
import Foundation
import ReelCore

#if canImport(Glibc)
  import Glibc
#endif

/// Starting a child program the way every Reel child starts: only descriptors 0–2
/// (a descriptor of Reel's without O_CLOEXEC must not live on in a long-running child),
/// signals unblocked, the listed ones back to their default action, and a process group
/// or session of its own when asked. Known by PID only.
package enum Spawn {
  /// Where a standard stream of the child goes.
  package enum Stream {
    /// Reel's own descriptor of the same number (the user's terminal or pipe).
    case inherit
    case null
    /// A file, created with `mode` (0600 unless given; appended when it exists).
    case file(String, mode: mode_t = 0o600)
    /// An open descriptor of Reel's (a pipe's end).
    case descriptor(Int32)
  }

  package enum Grouping {
    /// Reel's own process group: a Ctrl-C at the terminal reaches the child too.
    case same
    /// A process group of its own: Reel decides when the child stops.
    case ownGroup
    /// A session of its own: nothing sent to Reel's group or terminal reaches it.
    case ownSession
  }

  /// Starts `program` with `arguments` (`arguments[0]` is the name it is given), in
  /// `directory` when given; `environment` nil passes Reel's own.
  package static func start(
    _ program: String, _ arguments: [String], environment: [String: String]? = nil, directory: String? = nil,
    stdin: Stream = .null, stdout: Stream, stderr: Stream, grouping: Grouping,
    defaultSignals: [Int32] = [SIGINT, SIGTERM, SIGPIPE, SIGHUP, SIGQUIT]
  ) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    for (number, stream) in [(Int32(0), stdin), (1, stdout), (2, stderr)] {
      switch stream {
      case .inherit: break
      case .null: posix_spawn_file_actions_addopen(&actions, number, "/dev/null", number == 0 ? O_RDONLY : O_WRONLY, 0)
      case .file(let path, let mode):
        posix_spawn_file_actions_addopen(&actions, number, path, O_WRONLY | O_CREAT | O_APPEND, mode)
      case .descriptor(let descriptor): posix_spawn_file_actions_adddup2(&actions, descriptor, number)
      }
    }
    _ = withUnsafeMutablePointer(to: &actions) { reel_spawn_close_from(UnsafeMutableRawPointer($0), 3) }
    if let directory {
      _ = withUnsafeMutablePointer(to: &actions) { reel_spawn_chdir(UnsafeMutableRawPointer($0), directory) }
    }
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var noSignals = sigset_t()
    sigemptyset(&noSignals)
    posix_spawnattr_setsigmask(&attributes, &noSignals)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for number in defaultSignals { sigaddset(&defaults, number) }
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    var flags = Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)
    switch grouping {
    case .same: break
    case .ownGroup:
      posix_spawnattr_setpgroup(&attributes, 0)
      flags |= Int16(POSIX_SPAWN_SETPGROUP)
    case .ownSession: flags |= reel_spawn_setsid_flag()
    }
    posix_spawnattr_setflags(&attributes, flags)
    let cArguments = arguments.map { strdup($0) } + [nil]
    let cEnvironment =
      (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") }
      + [nil]
    defer { for pointer in cArguments + cEnvironment { free(pointer) } }
    var child: pid_t = 0
    let result = posix_spawn(&child, program, &actions, &attributes, cArguments, cEnvironment)
    guard result == 0 else {
      throw ReelError(.io, "cannot start \(program): \(String(cString: strerror(result)))", errno: result)
    }
    return child
  }
}
