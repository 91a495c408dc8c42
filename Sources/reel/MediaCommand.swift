import ArgumentParser
import ReelCore

struct MediaCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "media",
    abstract: "Label, list and catalog cold-storage folders and tape cartridges.")

  func run() throws {
    throw ReelError(.usage, "reel media is not built yet")
  }
}
