import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// The write end of the pipe SIGINT and SIGTERM are reported through. A signal handler
/// may only do async-signal-safe things; writing a byte to a pipe is one.
private nonisolated(unsafe) var stopSignalPipe: Int32 = -1

/// Catches SIGINT and SIGTERM from the moment a server starts opening volumes, so a
/// signal that arrives during recovery is not lost but ends the server cleanly once it is up.
enum StopSignals {
  private static let installation = NSLock()
  private nonisolated(unsafe) static var readEnd: Int32 = -1

  /// Installs the handlers once per process; returns the pipe to read signal numbers from.
  static func install() -> Int32 {
    installation.withLock {
      if readEnd >= 0 { return readEnd }
      var ends: [Int32] = [0, 0]
      guard pipe(&ends) == 0 else { return -1 }
      for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
      stopSignalPipe = ends[1]
      readEnd = ends[0]
      for number in [SIGINT, SIGTERM] {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { number in
          var byte = UInt8(truncatingIfNeeded: number)
          _ = write(stopSignalPipe, &byte, 1)
        }
        action.sa_flags = SA_RESTART
        sigemptyset(&action.sa_mask)
        sigaction(number, &action, nil)
      }
      signal(SIGPIPE, SIG_IGN)
      // A parent may have started us with these blocked (posix_spawn keeps the caller's
      // mask); threads started from here on inherit the unblocked mask.
      var stopping = sigset_t()
      sigemptyset(&stopping)
      sigaddset(&stopping, SIGINT)
      sigaddset(&stopping, SIGTERM)
      pthread_sigmask(SIG_UNBLOCK, &stopping, nil)
      return readEnd
    }
  }

  /// Wakes a reader of the pipe without a signal (value 0).
  static func wake() {
    var byte: UInt8 = 0
    _ = write(stopSignalPipe, &byte, 1)
  }

  /// Blocks until a signal (or `wake`) arrives; returns the signal number, 0 for a wake.
  static func next(from readEnd: Int32) -> Int32 {
    var byte: UInt8 = 0
    while true {
      let got = read(readEnd, &byte, 1)
      if got == 1 { return Int32(byte) }
      if got < 0 && errno == EINTR { continue }
      return 0
    }
  }
}
