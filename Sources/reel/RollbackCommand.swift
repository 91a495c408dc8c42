import ArgumentParser
import Foundation
import ReelCapture
import ReelClones
import ReelCore
import ReelIO
import ReelStore

struct RollbackCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "rollback",
    abstract: "Make a volume's current contents what they were at a point, as one new event in its history.",
    discussion: """
      Every point before and after stays restorable, and the rollback can itself be rolled
      back (`--to seq:N` with N the seq before it, shown by `reel timeline`). The cost
      follows the blocks changed since POINT, not the volume's size. Works while the volume
      is served (through the server's control socket) and while it is not; a served
      volume with clients connected is refused unless --disconnect, which flushes the
      journal and closes their connections first. POINT is read as for `reel restore`.
      """)

  @OptionGroup var options: StoreOption
  @Argument(help: "Volume name.") var volume: String
  @Option(
    parsing: .unconditional,
    help: "RFC 3339 time, relative time (-10m, \"2 hours ago\"), bookmark label, seq:N, or latest.")
  var to: String
  @Flag(help: "Close the served volume's client connections first (they see a disconnect).") var disconnect = false
  @Flag(help: "JSON output.") var json = false

  func run() throws {
    let layout = StoreLayout.resolve(options.store)
    let store = try Store.open(layout)
    _ = try Point.parse(to)
    _ = try layout.descriptor(of: volume)
    let report: RollbackReport
    if let outcome = try RollbackRequest.throughServer(
      layout: layout, volume: volume, point: to, disconnect: disconnect)
    {
      let live = LiveStore(store: store)
      let descriptor = try layout.descriptor(of: volume)
      report = RollbackReport(
        volume: volume, seq: outcome.seq, time: outcome.time, targetSeq: outcome.targetSeq,
        targetTime: try live.time(of: outcome.targetSeq, in: descriptor), target: "seq:\(outcome.targetSeq)",
        extents: outcome.extents, bytes: outcome.bytes, throughServer: true, disconnected: outcome.disconnected)
    } else {
      report = try VolumeRollback.offline(store: store, volume: volume, to: to)
    }
    if json {
      say(jsonText(RollbackJSON(report)))
    } else {
      let cut = report.disconnected > 0 ? "; \(report.disconnected) client connection(s) were closed" : ""
      say(
        "Rolled back \(report.volume) to \(to) (seq \(report.targetSeq), \(report.targetTime.rfc3339)) at seq \(report.seq), \(report.time.rfc3339): \(ByteSize.describe(report.bytes)) in \(report.extents) extent(s)\(cut)"
      )
    }
  }
}

/// `reel rollback --json`.
struct RollbackJSON: Encodable {
  var volume: String
  var seq: Seq
  var time: String
  var targetSeq: Seq
  var targetTime: String
  var extents: Int
  var bytes: UInt64
  var throughServer: Bool
  var disconnected: Int

  init(_ report: RollbackReport) {
    volume = report.volume
    seq = report.seq
    time = report.time.rfc3339
    targetSeq = report.targetSeq
    targetTime = report.targetTime.rfc3339
    extents = report.extents
    bytes = report.bytes
    throughServer = report.throughServer
    disconnected = report.disconnected
  }

  private enum CodingKeys: String, CodingKey {
    case volume, seq, time, extents, bytes, disconnected
    case targetSeq = "target_seq"
    case targetTime = "target_time"
    case throughServer = "through_server"
  }
}
