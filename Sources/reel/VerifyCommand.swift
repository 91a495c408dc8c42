import ArgumentParser
import ReelCore

struct VerifyCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "verify",
    abstract: "Check sealed archives: structure and checksums, and with the key every frame.")

  func run() throws {
    throw ReelError(.usage, "reel verify is not built yet")
  }
}
