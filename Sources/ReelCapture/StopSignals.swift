import Foundation
import ReelCore

#if canImport(Glibc)
  import Glibc
#endif

/// Catches SIGINT and SIGTERM from the moment a server starts opening volumes, so a
/// signal that arrives during recovery is not lost but ends the server cleanly once it is up.
/// The handlers are ReelCore's `Interrupt`; a server waits on its pipe instead of polling.
enum StopSignals {
  /// Installs the handlers once per process; returns the pipe to read signal numbers from.
  static func install() -> Int32 {
    Interrupt.installWithPipe()
  }

  /// Wakes a reader of the pipe without a signal (value 0).
  static func wake() {
    Interrupt.wake()
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
