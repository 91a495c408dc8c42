import ArgumentParser
import Foundation
import ReelArchive
import ReelCore

struct RepairCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "repair",
    abstract: "Repair a damaged sealed archive (format version 4) from its Reed–Solomon parity.",
    discussion: """
      Locates damage by the CRC of every parity shard, rebuilds what the parity's margin
      allows, checks the result against the SHA-256 the parity recorded, and only then
      writes the whole repaired archive to FILE (a new file; the damaged one is not
      touched). Bytes the drive could not read can be given as zeros. One sentence per
      damaged range; exit 65 when the damage is beyond the margin (nothing is written).
      """)

  @Argument(help: "The damaged archive file.") var archive: String
  @Option(help: "Where to write the repaired archive (must not exist).") var out: String
  @Flag(help: "JSON output.") var json = false

  func run() throws {
    Interrupt.install()
    let report = try ArchiveParity.repair(input: archive, output: out)
    if json {
      say(jsonText(ParityReportDocument(report, output: report.whole ? out : nil)))
    } else {
      for sentence in report.sentences { say(sentence) }
      if report.unverifiedShards > 0 {
        say(
          "\(archive): both copies of the shard table lost the CRCs of \(report.unverifiedShards) shard(s); each was checked against the parity of its stripe instead"
        )
      }
      if report.whole {
        say(
          report.damaged
            ? "\(archive): repaired into \(out) (\(report.margin))"
            : "\(archive): no damage found; wrote an identical copy to \(out)")
      } else {
        say(
          "\(archive): NOT repairable — \(report.lostStripes) stripe(s) lost more shards than their \(report.geometry.parityRows) parity shard(s); nothing was written"
        )
      }
    }
    if !report.whole { throw ExitCode(65) }
  }
}

/// `reel repair --json` and the parity part of `reel verify --json`.
struct ParityReportDocument: Encodable {
  struct Range: Encodable {
    var offset: UInt64
    var length: UInt64
    var region: String
    var repaired: Bool
    var sentence: String
  }
  var damaged: [Range]
  var whole: Bool
  var parityShardsPerStripe: Int
  var worstStripeLoss: Int
  var lostStripes: Int
  var damagedTableCopies: Int
  var unverifiedShards: Int
  var output: String?

  init(_ report: ParityRepairReport, output: String?) {
    damaged = zip(report.ranges, report.sentences).map {
      Range(offset: $0.offset, length: $0.length, region: $0.region.rawValue, repaired: $0.repaired, sentence: $1)
    }
    whole = report.whole
    parityShardsPerStripe = report.geometry.parityRows
    worstStripeLoss = report.worstStripeLoss
    lostStripes = report.lostStripes
    damagedTableCopies = report.damagedTableCopies
    unverifiedShards = report.unverifiedShards
    self.output = output
  }

  private enum CodingKeys: String, CodingKey {
    case damaged, whole, output
    case parityShardsPerStripe = "parity_shards_per_stripe"
    case worstStripeLoss = "worst_stripe_loss"
    case lostStripes = "lost_stripes"
    case damagedTableCopies = "damaged_table_copies"
    case unverifiedShards = "unverified_shards"
  }
}
