import ArgumentParser
import Foundation
import ReelArchive
import ReelClones
import ReelCore
import ReelIO
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
    for warning in report.warnings { warn(warning) }
    for partial in report.removedPartials {
      FileHandle.standardError.write(Data("reel: removed \(partial), left by a restore that was killed\n".utf8))
    }
    if json {
      say(jsonText(RestoreJSON(report)))
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
    do {
      let ingest = try live.ingest(volume: volume)
      for damage in ingest.damage { warn("damaged store: \(damage); run `reel store repair`") }
    } catch let error as ReelError {
      // The history the store already holds is still worth showing.
      warn("the journal could not be taken into the store: \(error.message); showing what the store holds")
    }
    let catalog = try live.catalogTimeline(of: descriptor)
    let relations = try Clones.relations(live: live, of: descriptor)
    // The journal holds the newest history; the store may hold older history the journal
    // no longer has (pruned once sealed, or imported from archives on rehydration).
    let fromJournal = summary.recordCount > 0
    let journalFirst = fromJournal ? summary.firstSeq ?? 0 : Seq.max
    let storeHasOlder = catalog.records > 0 && catalog.retainedFrom + 1 < journalFirst
    let firstTime = storeHasOlder ? catalog.firstTime : summary.firstTime
    let lastTime = fromJournal ? summary.lastTime : catalog.lastTime
    let firstSeq =
      storeHasOlder ? catalog.retainedFrom + 1 : fromJournal ? journalFirst : catalog.retainedFrom
    let lastSeq = max(fromJournal ? summary.lastSeq ?? 0 : 0, catalog.ingested)
    let bookmarks = try live.bookmarks(of: descriptor, journal: summary)
    let olderRecords = storeHasOlder ? catalog.records - Int(summary.recordCount) : 0
    let rollbacks = try live.rollbacks(of: descriptor)
    let targetTimes = rollbacks.map { try? live.time(of: $0.targetSeq, in: descriptor) }
    let losses = try live.losses(of: descriptor)
    if json {
      var document = TimelineJSON(
        volume: volume, created: descriptor.created.rfc3339, size: descriptor.size, firstSeq: firstSeq,
        lastSeq: lastSeq, firstTime: firstTime?.rfc3339, lastTime: lastTime?.rfc3339,
        records: Int(summary.recordCount) + max(0, olderRecords), bytesWritten: summary.bytesWritten,
        segments: summary.segmentCount, bookmarks: bookmarks.map(BookmarkJSON.init),
        retainedFromSeq: catalog.retainedFrom, sealedSeq: catalog.sealedSeq,
        archives: catalog.archives.map(TimelineJSON.Archive.init), origin: relations.origin.map(CloneLinkJSON.init),
        clones: relations.clones.map(CloneLinkJSON.init))
      document.rollbacks = zip(rollbacks, targetTimes).map(TimelineJSON.Rollback.init)
      document.lost = losses.map(TimelineJSON.Lost.init)
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
    }
    if storeHasOlder {
      say(
        "History before seq \(journalFirst == Seq.max ? lastSeq + 1 : journalFirst) is in the store only (\(fromJournal ? "pruned from the journal once sealed, or " : "")imported from sealed archives)"
      )
    }
    if let origin = relations.originText {
      say("Origin: \(origin) (\(relations.origin!.created.rfc3339)); earlier points are \(relations.origin!.volume)'s")
    }
    if let clones = relations.clonesText { say("Clones: \(clones)") }
    if catalog.retainedFrom > (relations.origin?.seq ?? 0) {
      say("Points kept from seq \(catalog.retainedFrom) on (older history pruned)")
    }
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
    for loss in losses {
      say(
        "Lost: seq \(loss.fromSeq)–\(loss.untilSeq), lost to damage when rehydrated (points there are refused): \(loss.description)"
      )
    }
    if !rollbacks.isEmpty {
      say("Rollbacks:")
      for (rollback, targetTime) in zip(rollbacks, targetTimes) {
        say(
          "  \(rollback.time.rfc3339)  seq \(rollback.seq)  back to seq \(rollback.targetSeq)\(targetTime.map { " (\($0.rfc3339))" } ?? "")"
        )
      }
    }
  }
}
