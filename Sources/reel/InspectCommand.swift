import ArgumentParser
import ReelCore

struct InspectCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "inspect",
    abstract: "Show what a sealed archive holds, without the key.")

  func run() throws {
    throw ReelError(.usage, "reel inspect is not built yet")
  }
}
