import ArgumentParser
import Foundation
import ReelCore

@main
struct Main {
  static func main() {
    do {
      var command = try Reel.parseAsRoot()
      try command.run()
    } catch let error as ReelError {
      FileHandle.standardError.write(Data("reel: \(error)\n".utf8))
      exit(error.exitCode)
    } catch {
      Reel.exit(withError: error)
    }
  }
}

struct Reel: ParsableCommand {
  static let version = ReelVersion.current

  static let configuration = CommandConfiguration(
    commandName: "reel",
    abstract: "Continuous data protection for block volumes.",
    discussion: """
      Reel journals every block write of a protected volume with its time, so any
      volume can be rebuilt as of any instant.
      Store: --store DIR, else $REEL_STORE, else ~/.local/share/reel.
      """,
    version: version,
    subcommands: [
      Init.self, VolumeCommand.self, ServeCommand.self, BookmarkCommand.self, TimelineCommand.self,
      RestoreCommand.self, IngestCommand.self, PruneCommand.self, StoreCommand.self, JournalCommand.self,
      KeyCommand.self, SealCommand.self, VerifyCommand.self, InspectCommand.self, ExportCommand.self,
      MediaCommand.self, RehydrateCommand.self, PipelineCommand.self, FilesCommand.self, MountCommand.self,
      MountWatchCommand.self,
      SQLCommand.self, PgCommand.self, BisectCommand.self, CloneCommand.self,
      RollbackCommand.self, RepairCommand.self,
    ]
  )
}

struct StoreOption: ParsableArguments {
  @Option(name: .long, help: "Store folder (default: $REEL_STORE, else ~/.local/share/reel).")
  var store: String?
}

/// Writes one line to standard error, marked as a warning.
func warn(_ line: String) {
  FileHandle.standardError.write(Data("reel: warning: \(line)\n".utf8))
}

/// Writes one line to standard output.
func say(_ line: String) {
  print(line)
}

/// One-line JSON for a report (JSON Lines and single reports alike).
func jsonText(_ report: some Encodable) -> String {
  // Reports are plain values: encoding them cannot fail.
  try! ReportJSON.text(report)
}
