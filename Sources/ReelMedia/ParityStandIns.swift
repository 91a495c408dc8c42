import Foundation
import ReelCore
import ReelIO

/// The media a parity group has at hand, sorted out: its parity cartridges (with their
/// maps) and its data cartridges by cartridge ID.
struct ParityGroups {
  var parity: [(cartridge: TapeCartridge, label: MediaLabel, map: ParityMap?, problem: String?)] = []
  var data: [String: GroupMember] = [:]

  init(_ volumes: [any MediaVolume]) throws {
    for volume in volumes {
      guard let cartridge = volume as? TapeCartridge, case .labeled(let label) = try? cartridge.readLabel() else {
        continue
      }
      if label.parity != nil {
        guard label.parity?.group != nil else { continue }
        do {
          parity.append((cartridge, label, try ParityCartridge.readMap(cartridge, label: label), nil))
        } catch {
          parity.append((cartridge, label, nil, "\(error)"))
        }
      } else if label.sequence > 0, let catalog = try? cartridge.readCatalog() {
        data[label.cartridgeID] = GroupMember(cartridge: cartridge, label: label, catalog: catalog)
      }
    }
  }

  /// The other members of `map`'s group that are at hand, by index; refuses a group with a
  /// member other than `missing` gone too, naming both.
  func others(of missing: ParityMap.Member, in map: ParityMap) throws -> [Int: GroupMember] {
    let gone = map.members.filter { $0.index != missing.index && data[$0.cartridgeID] == nil }
    guard gone.isEmpty else {
      throw ReelError(
        .notFound,
        "cartridges \(([missing] + gone).map(\.label).joined(separator: " and ")) of parity group \(map.group) "
          + "(media set \(map.mediaSet.name)) are both missing; parity cartridge \(map.parityLabel) "
          + "can rebuild only one of them",
        remedy: "find one of them; with it at hand the other is rebuilt")
    }
    var others: [Int: GroupMember] = [:]
    for member in map.members where member.index != missing.index {
      let present = data[member.cartridgeID]!
      guard present.label.mediaSet == map.mediaSet.name, present.label.mediaSetID == map.mediaSet.id else {
        throw ReelError(.corrupt, "\(present.label.name) is not of media set \(map.mediaSet.name)")
      }
      others[member.index] = present
    }
    return others
  }
}

/// Data cartridges a rehydration needs but cannot find, rebuilt from their group's parity
/// into temporary vtape files that stand in for them; removed with this value.
final class ParityStandIns {
  private(set) var volumes: [any MediaVolume] = []
  /// What happened, one sentence each: rebuilt, or why not.
  private(set) var notes: [String] = []
  private var folder: String?

  init(among present: [any MediaVolume]) throws {
    let groups = try ParityGroups(present)
    for (parity, label, map, problem) in groups.parity {
      guard let map else {
        notes.append("parity cartridge \(label.name) cannot be used: \(problem ?? "")")
        continue
      }
      let missing = map.members.filter { groups.data[$0.cartridgeID] == nil }
      guard let lost = missing.first else { continue }
      do {
        let others = try groups.others(of: lost, in: map)
        let path = try temporaryFolder() + "/\(lost.label).vtape"
        let capacity = lost.length + lost.length / 64 + (8 << 20)
        try VirtualTapeDrive.create(path: path, capacity: capacity)
        let target = TapeCartridge(drive: try VirtualTapeDrive(path: path))
        try ParityCartridge.rebuild(lost, map: map, others: others, parity: parity, to: target)
        volumes.append(target)
        notes.append(
          "cartridge \(lost.label) of media set \(map.mediaSet.name) is missing or unreadable: rebuilt from "
            + "parity cartridge "
            + "\(label.name) and \(others.values.map(\.label.name).sorted().joined(separator: ", "))")
      } catch let error as ReelError where error.kind != .interrupted {
        notes.append("cartridge \(lost.label) is missing and was not rebuilt: \(error.message)")
      }
    }
  }

  deinit {
    if let folder { try? FileManager.default.removeItem(atPath: folder) }
  }

  private func temporaryFolder() throws -> String {
    if let folder { return folder }
    let path = NSTemporaryDirectory() + "/reel-rebuilt-" + UUID().uuidString.lowercased()
    try FileManager.default.createDirectory(
      atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    folder = path
    return path
  }
}
