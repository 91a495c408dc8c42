import Foundation
import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// The first SIGINT or SIGTERM this process received (0: none). Set by the signal handler;
/// long loops read it between units of work through `Interrupt.check`.
private let receivedSignal = Atomic<Int32>(0)
/// Whether a second signal, while the first is still being acted on, ends the process at
/// once: the way out of a phase that does not check.
private let forceOnSecondSignal = Atomic<Bool>(false)
/// The write end of the pipe a server waits on for signals (-1 when none is wanted). A
/// signal handler may only do async-signal-safe things; an atomic store and writing a
/// byte to a pipe are.
private nonisolated(unsafe) var signalPipe: Int32 = -1

/// Cooperative cancellation for SIGINT and SIGTERM. The handler only records the signal
/// (and wakes a server's signal pipe); work that takes long calls `check()` between units,
/// which throws an `.interrupted` error that unwinds through the caller's cleanup, so
/// nothing is left half-written and nobody calls `exit` from a signal handler.
package enum Interrupt {
  private static let installation = NSLock()
  private nonisolated(unsafe) static var readEnd: Int32 = -1

  /// Installs the handlers once per process. `forceOnSecond`: a second signal ends the
  /// process with that signal's default action (for commands; a server shuts down in its
  /// own time instead).
  package static func install(forceOnSecond: Bool = true) {
    installation.withLock {
      // Globals are initialized lazily; the handler must not be the first to touch them.
      _ = receivedSignal.load(ordering: .relaxed)
      if forceOnSecond { forceOnSecondSignal.store(true, ordering: .relaxed) }
      installHandlers()
    }
  }

  /// Installs the handlers and a pipe each signal writes its number to; returns the read end.
  package static func installWithPipe() -> Int32 {
    installation.withLock {
      if readEnd >= 0 { return readEnd }
      var ends: [Int32] = [0, 0]
      guard pipe(&ends) == 0 else { return -1 }
      for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
      signalPipe = ends[1]
      readEnd = ends[0]
      _ = receivedSignal.load(ordering: .relaxed)
      installHandlers()
      return readEnd
    }
  }

  private nonisolated(unsafe) static var installed = false

  private static func installHandlers() {
    guard !installed else { return }
    installed = true
    for number in [SIGINT, SIGTERM] {
      var action = sigaction()
      action.__sigaction_handler.sa_handler = { number in
        let (first, _) = receivedSignal.compareExchange(expected: 0, desired: number, ordering: .relaxed)
        if !first && forceOnSecondSignal.load(ordering: .relaxed) {
          Glibc.signal(number, SIG_DFL)
          raise(number)
          return
        }
        var byte = UInt8(truncatingIfNeeded: number)
        if signalPipe >= 0 { _ = write(signalPipe, &byte, 1) }
      }
      action.sa_flags = SA_RESTART
      sigemptyset(&action.sa_mask)
      sigaction(number, &action, nil)
    }
    Glibc.signal(SIGPIPE, SIG_IGN)
    // A parent may have started us with these blocked (posix_spawn keeps the caller's
    // mask); threads started from here on inherit the unblocked mask.
    var stopping = sigset_t()
    sigemptyset(&stopping)
    sigaddset(&stopping, SIGINT)
    sigaddset(&stopping, SIGTERM)
    pthread_sigmask(SIG_UNBLOCK, &stopping, nil)
  }

  /// Wakes a reader of the signal pipe without a signal (value 0).
  package static func wake() {
    var byte: UInt8 = 0
    _ = write(signalPipe, &byte, 1)
  }

  /// The signal received, if any.
  package static var signal: Int32? {
    let number = receivedSignal.load(ordering: .relaxed)
    return number == 0 ? nil : number
  }

  /// Throws `.interrupted` once SIGINT or SIGTERM has arrived.
  package static func check() throws {
    if signal != nil { throw error() }
  }

  /// The error a command ends with when interrupted; `cleanup` says what was removed.
  package static func error(_ cleanup: String? = nil) -> ReelError {
    ReelError(.interrupted, "interrupted" + (cleanup.map { "; \($0)" } ?? ""))
  }
}
