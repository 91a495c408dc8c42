import ArgumentParser
import ReelCapture
import ReelCore
import ReelIO
import ReelJournal
import ReelStore

struct BookmarkCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "bookmark",
    abstract: "Mark the volume's current state with a label you can restore to, or list the marks.",
    discussion: """
      `reel bookmark NAME LABEL` adds a bookmark; `reel bookmark list NAME` lists them.
      """,
    subcommands: [Create.self, List.self], defaultSubcommand: Create.self)

  struct Create: ParsableCommand {
    static let configuration = CommandConfiguration(
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
        say(jsonText(BookmarkCreatedJSON(result)))
      } else {
        say("Bookmark \(result.label) at seq \(result.seq), \(result.time.rfc3339)")
      }
    }
  }

  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "List a volume's bookmarks: seq, time and label, oldest first.",
      discussion: """
        From the store's catalog and the part of the journal not yet ingested; nothing is
        ingested or changed, so it is safe while the volume is served.
        """)

    @OptionGroup var options: StoreOption
    @Argument(help: "Volume name.") var volume: String
    @Flag(help: "JSON output (an array of {label, seq, time}).") var json = false

    func run() throws {
      let store = try Store.open(StoreLayout.resolve(options.store))
      let descriptor = try store.layout.descriptor(of: volume)
      let summary = try store.layout.journalReader(of: volume).summarize()
      let bookmarks = try LiveStore(store: store).bookmarks(of: descriptor, journal: summary)
      if json {
        say(jsonText(bookmarks.map(BookmarkJSON.init)))
      } else if bookmarks.isEmpty {
        say("Volume \(volume) has no bookmarks")
      } else {
        for bookmark in bookmarks {
          say("\(bookmark.time.rfc3339)  seq \(bookmark.seq)  \(bookmark.label)")
        }
      }
    }
  }
}
