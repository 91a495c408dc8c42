import Foundation

/// An error a user can meet. `message` says what happened and to what; `remedy` says what
/// to do. Both are written for a person at a terminal, never a Swift dump.
package struct ReelError: Error, Sendable, CustomStringConvertible, Equatable {
  package enum Kind: String, Sendable {
    case usage
    case notFound
    case alreadyExists
    case corrupt
    case incompatible
    case io
    case protocolViolation
    /// The key or passphrase does not open this key file or archive.
    case wrongKey
    /// Media (a cartridge, a media set) has no room left.
    case mediaFull
    /// SIGINT or SIGTERM stopped the command (`Interrupt`).
    case interrupted
  }

  package var kind: Kind
  package var message: String
  package var remedy: String?
  /// The system's error number, when the error came from a system call: code tells
  /// errors apart by it, never by the words of `message`.
  package var errno: Int32?

  package init(_ kind: Kind, _ message: String, remedy: String? = nil, errno: Int32? = nil) {
    self.kind = kind
    self.message = message
    self.remedy = remedy
    self.errno = errno
  }

  package var description: String {
    if let remedy { return "\(message)\n  → \(remedy)" }
    return message
  }

  /// Exit status for the CLI: corruption is distinct so scripts can tell it apart.
  package var exitCode: Int32 {
    switch kind {
    case .usage: 64
    case .notFound: 66
    case .alreadyExists: 73
    case .corrupt: 65
    case .incompatible: 65
    case .io: 74
    case .protocolViolation: 76
    case .wrongKey: 77
    case .mediaFull: 75
    // The shell's convention for death by a signal, though the command ended cleanly.
    case .interrupted: 128 + (Interrupt.signal ?? SIGINT)
    }
  }
}
