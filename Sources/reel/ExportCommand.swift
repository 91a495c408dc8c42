import ArgumentParser
import ReelCore

struct ExportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "export",
    abstract: "Copy sealed archives to media, verified by reading them back.")

  func run() throws {
    throw ReelError(.usage, "reel export is not built yet")
  }
}
