import ArgumentParser
import Foundation
import ReelMount

/// Started by `reel mount` (never by hand): detaches the mount if `reel mount` dies
/// without unmounting (ReelMount's MountWatcher).
struct MountWatchCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: MountWatcher.commandName, abstract: "Internal: unmounts a killed `reel mount`.",
    shouldDisplay: false)

  @Option(help: "The mount's ID in /proc/self/mountinfo.") var mountID: Int
  @Argument(help: "The folder it is mounted on.") var mountPoint: String

  func run() throws {
    if let done = try MountWatcher.watch(mountPoint: mountPoint, mountID: mountID) {
      FileHandle.standardError.write(Data("reel mount: \(done)\n".utf8))
    }
  }
}
