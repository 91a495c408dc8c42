import ArgumentParser
import ReelCore

struct KeyCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "key",
    abstract: "Create and show master keys (passphrase-protected key files, paper copies).")

  func run() throws {
    throw ReelError(.usage, "reel key is not built yet")
  }
}
