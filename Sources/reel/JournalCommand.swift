import ArgumentParser
import Foundation
import ReelCore
import ReelIO
import ReelJournal

struct JournalCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "journal",
    abstract: "Look inside a volume's journal.",
    subcommands: [Dump.self, Verify.self])

  struct Dump: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Print a volume's journal records, one per line.",
      discussion: "With --json each line is one JSON object (JSON Lines).")

    @OptionGroup var options: StoreOption
    @Argument(help: "Volume name.") var volume: String
    @Option(help: "First seq to print.") var from: UInt64 = 1
    @Flag(help: "JSON Lines output for scripts.") var json = false

    func run() throws {
      let reader = try StoreLayout.resolve(options.store).journalReader(of: volume)
      try reader.forEachRecord(fromSeq: from) { record in
        say(json ? jsonText(JournalRecordJSON(record)) : Self.line(record))
        return true
      }
    }

    static func line(_ record: JournalRecord) -> String {
      var text = "\(record.seq)\t\(record.time.rfc3339)\t\(record.kind)"
      switch record.kind {
      case .write, .trim, .writeZeroes:
        text += "\toffset=\(record.offset)\tlength=\(record.length)"
        if record.flags.contains(.forceUnitAccess) { text += "\tfua" }
      case .bookmark:
        text += "\t\(record.label ?? "")"
      case .flush:
        break
      case .rollback:
        if let rollback = record.rollback {
          text += "\tto=\(rollback.targetSeq)\textents=\(rollback.extents.count)\tbytes=\(rollback.coveredBytes)"
        }
      }
      return text
    }
  }

  struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Check every record checksum, seq and time of a volume's journal.")

    @OptionGroup var options: StoreOption
    @Argument(help: "Volume name.") var volume: String
    @Flag(help: "JSON output.") var json = false

    func run() throws {
      let reader = try StoreLayout.resolve(options.store).journalReader(of: volume)
      let summary = try reader.summarize()
      if json {
        say(jsonText(JournalVerifyJSON(volume: volume, summary: summary)))
      } else {
        say(
          "journal of \(volume): OK — \(summary.recordCount) records in \(summary.segmentCount) segments, seq \(summary.firstSeq ?? 0)…\(summary.lastSeq ?? 0)"
        )
      }
    }
  }
}
