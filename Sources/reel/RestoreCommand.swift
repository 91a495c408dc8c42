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
      2026-11-27T07:22:02.5Z or 2026-11-27T08:22:02+01:00), a relative time (-90s, -10m,
      -2h, -1d, -2w, or "10 minutes ago", "1 day ago"), a bookmark label, `seq:N`, or
      `latest`. A time in the future means the latest state (with a warning).
      """)

  @OptionGroup var options: StoreOption
  @Argument(help: "Volume name.") var volume: String
  @Option(
    parsing: .unconditional,
    help: "RFC 3339 time, relative time (-10m, \"2 hours ago\"), bookmark label, seq:N, or latest.")
  var at: String
  @Option(help: "Image file to write.") var output: String
  @Flag(help: "Replace --output if it exists.") var force = false
  @Flag(help: "JSON output.") var json = false

  func run() throws {
    let store = try Store.open(StoreLayout.resolve(options.store))
    let point = try Point.parse(at)
    Interrupt.install()
    let report = try Restore.run(store: store, volume: volume, at: point.point, output: output, overwrite: force)
    if let warning = report.resolved.warning { warn(warning) }
    for partial in report.removedPartials {
      FileHandle.standardError.write(Data("reel: removed \(partial), left by a restore that was killed\n".utf8))
    }
    if json {
      say(
        jsonText([
          "volume": report.volume, "output": report.output, "seq": report.resolved.seq,
          "time": report.resolved.time.rfc3339, "point": report.resolved.point.description,
          "bytes_written": report.bytesWritten, "size": report.size, "removed_partials": report.removedPartials,
        ]))
    } else {
      say(
        "Restored \(report.volume) as of \(point) (seq \(report.resolved.seq), \(report.resolved.time.rfc3339)) to \(report.output): \(ByteSize.describe(report.size)) (\(ByteSize.describe(report.bytesWritten)) of data)"
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
    let store = try Store.open(StoreLayout.resolve(options.store))
    let descriptor = try store.layout.descriptor(of: volume)
    let summary = try store.layout.journalReader(of: volume).summarize()
    let live = LiveStore(store: store)
    try live.ingest(volume: volume)
    let catalog = try live.catalogTimeline(of: descriptor)
    // A rehydrated volume has no journal: its history is the catalog's.
    let fromJournal = summary.segmentCount > 0
    let firstTime = fromJournal ? summary.firstTime : catalog.firstTime
    let lastTime = fromJournal ? summary.lastTime : catalog.lastTime
    let firstSeq = fromJournal ? summary.firstSeq ?? 0 : catalog.retainedFrom + (catalog.records > 0 ? 1 : 0)
    let lastSeq = fromJournal ? summary.lastSeq ?? 0 : catalog.ingested
    let bookmarks = try live.bookmarks(of: descriptor, journal: summary)
    if json {
      var document: [String: Any] = [
        "volume": volume, "created": descriptor.created.rfc3339, "size": descriptor.size,
        "first_seq": firstSeq, "last_seq": lastSeq,
      ]
      document["first_time"] = firstTime?.rfc3339 ?? NSNull()
      document["last_time"] = lastTime?.rfc3339 ?? NSNull()
      document["records"] = fromJournal ? Int(summary.recordCount) : catalog.records
      document["bytes_written"] = summary.bytesWritten
      document["segments"] = summary.segmentCount
      document["bookmarks"] = bookmarks.map { ["label": $0.label, "seq": $0.seq, "time": $0.time.rfc3339] }
      document["retained_from_seq"] = catalog.retainedFrom
      document["sealed_seq"] = catalog.sealedSeq
      document["archives"] = catalog.archives.map {
        [
          "id": $0.id, "from_seq": $0.fromSeq, "until_seq": $0.untilSeq, "file": $0.fileName,
          "verified": $0.verified != nil,
        ] as [String: Any]
      }
      say(jsonText(document))
      return
    }
    say("Volume \(volume): \(ByteSize.describe(descriptor.size)), created \(descriptor.created.rfc3339)")
    if let firstTime, let lastTime {
      say("History: \(firstTime.rfc3339) → \(lastTime.rfc3339), seq \(firstSeq)…\(lastSeq)")
    } else {
      say("History: no writes yet")
    }
    if fromJournal {
      say(
        "Records: \(summary.recordCount) in \(summary.segmentCount) segments; \(ByteSize.describe(summary.bytesWritten)) written"
      )
    } else {
      say("Records: \(catalog.records) in the store (no journal here: history came from sealed archives)")
    }
    if catalog.retainedFrom > 0 { say("Points kept from seq \(catalog.retainedFrom) on (older history pruned)") }
    say(
      "Sealed: \(catalog.sealedSeq == 0 ? "nothing yet" : "up to seq \(catalog.sealedSeq)") in \(catalog.archives.count) archive(s)"
    )
    if bookmarks.isEmpty {
      say("Bookmarks: none")
    } else {
      say("Bookmarks:")
      for bookmark in bookmarks {
        say("  \(bookmark.time.rfc3339)  seq \(bookmark.seq)  \(bookmark.label)")
      }
    }
  }
}
