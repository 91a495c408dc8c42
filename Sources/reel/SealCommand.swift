import ArgumentParser
import ReelCore

struct SealCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "seal",
    abstract: "Seal journaled history into encrypted, verified archives.")

  func run() throws {
    throw ReelError(.usage, "reel seal is not built yet")
  }
}
