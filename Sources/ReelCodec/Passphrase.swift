import Foundation
import ReelCore

#if canImport(Glibc)
  import Glibc
#endif

/// The terminal a prompt has turned echo off on, and its mode before, so a signal that
/// ends the process mid-prompt can give the user their echo back. Set only while asking.
private nonisolated(unsafe) var promptTerminal: Int32 = -1
private nonisolated(unsafe) var promptTerminalMode = termios()

/// Where a key file's passphrase comes from: `REEL_PASSPHRASE`, else a prompt on the
/// controlling terminal with echo off. Never an argument, which `ps` shows to every user.
package enum Passphrase {
  static let environmentVariable = "REEL_PASSPHRASE"

  /// The passphrase for the key file at `path`. With `confirm` (a new key file) a prompt
  /// asks twice. Empty passphrases are refused.
  package static func obtain(for path: String, confirm: Bool = false) throws -> String {
    if let value = getenv(environmentVariable).map({ String(cString: $0) }) {
      guard !value.isEmpty else {
        throw ReelError(
          .usage, "\(environmentVariable) is set but empty; an empty passphrase is refused",
          remedy: "set it to the passphrase of \(path), or unset it to be asked")
      }
      return value
    }
    let terminal = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)
    guard terminal >= 0 else {
      throw ReelError(
        .usage, "\(path): no passphrase: \(environmentVariable) is not set and there is no terminal to ask on",
        remedy: "set \(environmentVariable) in the environment (not as an argument, which `ps` shows)")
    }
    defer { close(terminal) }
    let passphrase = try ask(confirm ? "New passphrase for \(path): " : "Passphrase for \(path): ", on: terminal)
    guard !passphrase.isEmpty else {
      throw ReelError(.usage, "\(path): an empty passphrase is refused", remedy: "type a passphrase")
    }
    if confirm {
      guard try ask("The same passphrase again: ", on: terminal) == passphrase else {
        throw ReelError(.usage, "\(path): the two passphrases differ; nothing was written", remedy: "try again")
      }
    }
    return passphrase
  }

  /// Prompts on `terminal` and reads one line with echo off.
  private static func ask(_ prompt: String, on terminal: Int32) throws -> String {
    write(prompt, to: terminal)
    var mode = termios()
    let isTerminal = tcgetattr(terminal, &mode) == 0
    var previousActions: [(Int32, sigaction)] = []
    if isTerminal {
      promptTerminal = terminal
      promptTerminalMode = mode
      for number in [SIGINT, SIGTERM, SIGHUP, SIGQUIT] {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { number in
          _ = tcsetattr(promptTerminal, TCSAFLUSH, &promptTerminalMode)
          // SA_RESETHAND has put back the default action; it runs once this handler returns.
          raise(number)
        }
        action.sa_flags = Int32(bitPattern: SA_RESETHAND)
        sigemptyset(&action.sa_mask)
        var previous = sigaction()
        sigaction(number, &action, &previous)
        previousActions.append((number, previous))
      }
      var quiet = mode
      quiet.c_lflag &= ~tcflag_t(ECHO)
      tcsetattr(terminal, TCSAFLUSH, &quiet)
    }
    defer {
      if isTerminal {
        tcsetattr(terminal, TCSAFLUSH, &mode)
        for (number, action) in previousActions {
          var action = action
          sigaction(number, &action, nil)
        }
        promptTerminal = -1
        write("\n", to: terminal)
      }
    }
    var line: [UInt8] = []
    while true {
      var byte: UInt8 = 0
      let count = read(terminal, &byte, 1)
      if count < 0 && errno == EINTR { continue }
      if count <= 0 {
        guard !line.isEmpty else { throw ReelError(.usage, "no passphrase was typed") }
        break
      }
      if byte == 10 { break }
      line.append(byte)
      guard line.count <= 4096 else { throw ReelError(.usage, "the passphrase is longer than 4096 bytes") }
    }
    if line.last == 13 { line.removeLast() }
    return String(decoding: line, as: UTF8.self)
  }

  private static func write(_ text: String, to terminal: Int32) {
    let bytes = Array(text.utf8)
    var written = 0
    while written < bytes.count {
      let count = bytes.withUnsafeBytes { Glibc.write(terminal, $0.baseAddress! + written, bytes.count - written) }
      if count < 0 && errno == EINTR { continue }
      guard count > 0 else { return }
      written += count
    }
  }
}
