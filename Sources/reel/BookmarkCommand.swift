import ArgumentParser
import ReelCapture
import ReelJournal

struct BookmarkCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bookmark",
    abstract: "Mark the volume's current state with a label you can restore to.",
    discussion: """
      Everything written and acknowledged before the bookmark is inside it. Works while the
      volume is served (through the server's control socket) and while it is not.
      """)

  @OptionGroup var options: StoreOption
  @Argument(help: "Volume name.") var volume: String
  @Argument(help: "Label: 1 to 200 bytes on one line, unique within the volume.") var label: String
  @Flag(help: "JSON output.") var json = false

  func run() throws {
    let result = try Bookmarks.create(layout: StoreLayout.resolve(options.store), volume: volume, label: label)
    if json {
      say(
        jsonText([
          "volume": result.volume, "label": result.label, "seq": result.seq, "time": result.time.rfc3339,
          "through_server": result.throughServer,
        ]))
    } else {
      say("Bookmark \(result.label) at seq \(result.seq), \(result.time.rfc3339)")
    }
  }
}
