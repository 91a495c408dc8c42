import ArgumentParser
import Foundation
import ReelCore
import ReelJournal
import ReelStore

struct RestoreCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "restore",
    abstract: "Rebuild a volume as it was at a point in time, into an image file.",
    discussion: """
      POINT is an RFC 3339 time (UTC or with an offset, fractions allowed, e.g.
      2026-11-27T07:22:02.5Z), a bookmark label, `seq:N`, or `latest`.
      """)

  @OptionGroup var options: StoreOption
  @Argument(help: "Volume name.") var volume: String
  @Option(help: "RFC 3339 time, bookmark label, seq:N, or latest.") var at: String
  @Option(help: "Image file to write.") var output: String
  @Flag(help: "Replace --output if it exists.") var force = false
  @Flag(help: "JSON output.") var json = false

  func run() throws {
    let store = try Store.open(StoreLayout.resolve(options.store))
    let report = try Restore.run(
      store: store, volume: volume, at: Point(parsing: at), output: output, overwrite: force)
    if json {
      say(
        jsonText([
          "volume": report.volume, "output": report.output, "seq": report.resolved.seq,
          "time": report.resolved.time.rfc3339, "point": report.resolved.point.description,
          "bytes_written": report.bytesWritten, "size": report.size,
        ]))
    } else {
      say(
        "Restored \(report.volume) as of \(report.resolved.point) (seq \(report.resolved.seq), \(report.resolved.time.rfc3339)) to \(report.output): \(ByteSize.describe(report.size)) (\(ByteSize.describe(report.bytesWritten)) of data)"
      )
    }
  }
}

struct TimelineCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "timeline",
    abstract: "Show a volume's history: time range, bytes written, segments, bookmarks.")

  @OptionGroup var options: StoreOption
  @Argument(help: "Volume name.") var volume: String
  @Flag(help: "JSON output.") var json = false

  func run() throws {
    let layout = StoreLayout.resolve(options.store)
    let descriptor = try layout.descriptor(of: volume)
    let summary = try layout.journalReader(of: volume).summarize()
    if json {
      say(
        jsonText([
          "volume": volume, "created": descriptor.created.rfc3339, "size": descriptor.size,
          "first_seq": summary.firstSeq ?? 0, "last_seq": summary.lastSeq ?? 0,
          "first_time": summary.firstTime?.rfc3339 ?? NSNull(), "last_time": summary.lastTime?.rfc3339 ?? NSNull(),
          "records": summary.recordCount, "bytes_written": summary.bytesWritten, "segments": summary.segmentCount,
          "bookmarks": summary.bookmarks.map { ["label": $0.label, "seq": $0.seq, "time": $0.time.rfc3339] },
        ]))
      return
    }
    say("Volume \(volume): \(ByteSize.describe(descriptor.size)), created \(descriptor.created.rfc3339)")
    if let first = summary.firstTime, let last = summary.lastTime {
      say("History: \(first.rfc3339) → \(last.rfc3339), seq \(summary.firstSeq ?? 0)…\(summary.lastSeq ?? 0)")
    } else {
      say("History: no writes yet")
    }
    say(
      "Records: \(summary.recordCount) in \(summary.segmentCount) segments; \(ByteSize.describe(summary.bytesWritten)) written"
    )
    if summary.bookmarks.isEmpty {
      say("Bookmarks: none")
    } else {
      say("Bookmarks:")
      for bookmark in summary.bookmarks {
        say("  \(bookmark.time.rfc3339)  seq \(bookmark.seq)  \(bookmark.label)")
      }
    }
  }
}
