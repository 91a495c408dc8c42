import Foundation
import ReelCore
import ReelMedia

extension StageKind {
  package static let listCartridges = StageKind(rawValue: "list-cartridges")
}

/// Lists the cartridges of a media set that hold recent archives (to send offsite).
struct ListCartridgesStage: PipelineStage {
  static let kind = StageKind.listCartridges
  static let parameters = [
    ParameterSpec("media-set", .string, "media set (default: the file's media-set)"),
    ParameterSpec("since", .duration, "cartridges holding archives of this window (default 7d)"),
  ]
  static let needsMediaSet = true

  let mediaSet: String?
  let window: Duration

  init(_ definition: StageDefinition) {
    mediaSet = definition.string("media-set")
    window = definition.duration("since") ?? .seconds(7 * 86_400)
  }

  func run(_ context: PipelineContext) throws -> StageOutcome {
    var outcome = StageOutcome()
    let set = context.mediaSet(named: mediaSet)
    let cutoff = Timestamp(nanoseconds: Timestamp.now().nanoseconds - window.nanoseconds)
    let copies = try context.catalog.archiveCopies(mediaSet: set).filter { $0.untilTime >= cutoff }
    let cartridges = try context.catalog.cartridges().filter { $0.mediaSet == set }
    for cartridge in cartridges {
      let held = copies.filter { $0.cartridgeID == cartridge.cartridgeID }
      guard !held.isEmpty else { continue }
      let volumes = Set(held.map(\.volumeName)).sorted()
      let bytes = held.reduce(UInt64(0)) { $0 + $1.size }
      outcome.items += 1
      outcome.bytes += bytes
      outcome.lines.append(
        "SEND OFFSITE: \(cartridge.label) (media set \(set), cartridge \(cartridge.sequence), \(cartridge.address)): \(held.count) archive(s), \(ByteSize.describe(bytes)), volumes \(volumes.joined(separator: ", "))\(cartridge.closed ? ", full" : "")"
      )
    }
    outcome.message = "\(outcome.items) cartridge(s) to send offsite"
    return outcome
  }
}
