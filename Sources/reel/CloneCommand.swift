import ArgumentParser
import ReelClones
import ReelCore
import ReelIO
import ReelStore

struct CloneCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "clone",
    abstract: "Make a new volume that starts as another volume at a point in time.",
    discussion: """
      Nothing is copied: the clone reads the origin as it was at POINT for every block it
      has not written itself, and its writes go to its own journal. It is a full volume:
      serve it, bookmark it, restore it at its own points, seal it. The origin keeps
      whatever the clone still reads (prune reports it). `reel volume promote NEW` makes the
      clone independent. POINT is as for `reel restore` (time, relative time, bookmark
      label, seq:N or latest). See docs/clones.md.
      """)

  @OptionGroup var options: StoreOption
  @Argument(help: "The volume to clone (the origin).") var volume: String
  @Option(
    parsing: .unconditional,
    help: "RFC 3339 time, relative time (-10m, \"2 hours ago\"), bookmark label, seq:N, or latest.")
  var at: String
  @Option(name: .customLong("as"), help: "Name of the new volume.") var name: String
  @Flag(help: "JSON output.") var json = false

  func run() throws {
    let store = try Store.open(StoreLayout.resolve(options.store))
    let point = try Point.parse(at)
    let report = try Clones.create(live: LiveStore(store: store), origin: volume, at: point.point, as: name)
    if let warning = report.warning { warn(warning) }
    if json {
      say(jsonText(CloneJSON(report)))
    } else {
      say(
        "Cloned \(report.origin) at seq \(report.originSeq) (\(report.originTime.rfc3339)) as \(report.volume); serve it with `reel serve \(report.volume)`"
      )
    }
  }
}

struct CloneJSON: Encodable {
  var volume: String
  var volumeID: String
  var origin: String
  var originID: String
  var originSeq: Seq
  var originTime: String
  var created: String

  init(_ report: CloneReport) {
    volume = report.volume
    volumeID = report.volumeID
    origin = report.origin
    originID = report.originID
    originSeq = report.originSeq
    originTime = report.originTime.rfc3339
    created = report.created.rfc3339
  }

  private enum CodingKeys: String, CodingKey {
    case volume, origin, created
    case volumeID = "id"
    case originID = "origin_id"
    case originSeq = "origin_seq"
    case originTime = "origin_time"
  }
}
