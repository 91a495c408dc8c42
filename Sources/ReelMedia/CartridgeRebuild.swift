import Foundation
import ReelCore
import ReelStore

/// What `reel media rebuild` did.
package struct RebuildReport: Sendable {
  package var label: String
  package var address: String
  package var parityLabel: String
  package var group: Int
  package var from: [String]
  package var files: Int
  package var bytes: UInt64
}

/// `reel media rebuild`: a lost data cartridge of a parity group written again onto a new
/// cartridge, tape file for tape file, from its group's parity cartridge and the others.
package enum CartridgeRebuild {
  package static func rebuild(
    mediaSet: String, missing name: String, sources: [MediaAddress], to target: MediaAddress, capacity: UInt64?,
    store: Catalog?
  ) throws -> RebuildReport {
    let destination = try target.labelTarget(name: name)
    let volumes = try sources.flatMap { try $0.open() }.filter { volume in
      // The target may sit in the same library folder as the set's cartridges.
      guard let path = try? MediaAddress(parsing: volume.address) else { return true }
      return !path.sameMedium(as: destination)
    }
    let groups = try ParityGroups(volumes)
    // The set is its ID, not its name: a parity cartridge of another set of the same name
    // covers other cartridges, whatever its map says about labels.
    let setIDs = Set(groups.data.values.filter { $0.label.mediaSet == mediaSet }.compactMap(\.label.mediaSetID))
    let named = groups.parity.filter { $0.label.mediaSet == mediaSet }
    let candidates = named.filter { setIDs.isEmpty || $0.label.mediaSetID.map(setIDs.contains) == true }
    let strangers = named.filter { entry in !candidates.contains { $0.label.cartridgeID == entry.label.cartridgeID } }
    guard
      let (parity, parityLabel, map) = candidates.lazy.compactMap({ entry in
        entry.map.flatMap { map in map.members.contains { $0.label == name } ? (entry.cartridge, entry.label, map) : nil
        }
      }).first
    else {
      let unreadable = candidates.filter { $0.map == nil }.map { "\($0.label.name): \($0.problem ?? "")" }
      let others =
        strangers.map {
          "\($0.label.name) belongs to another media set named \(mediaSet) (set ID \($0.label.mediaSetID ?? "-"), "
            + "the cartridges at hand are of \(setIDs.sorted().joined(separator: ", ")))"
        }
        + groups.parity.filter { $0.label.mediaSet != mediaSet }.map {
          "\($0.label.name) is the parity cartridge of media set \"\($0.label.mediaSet ?? "-")\""
        }
      throw ReelError(
        .notFound,
        "no readable parity cartridge of media set \"\(mediaSet)\" covers a cartridge labeled \(name) among "
          + sources.map(\.description).joined(separator: ", ")
          + ((unreadable + others).isEmpty ? "" : " (" + (unreadable + others).joined(separator: "; ") + ")"),
        remedy: "name the media holding the set's parity cartridge and the group's other cartridges with --from")
    }
    let lost = map.members.first { $0.label == name }!
    if let present = groups.data[lost.cartridgeID] {
      throw ReelError(
        .alreadyExists, "cartridge \(name) is at hand (\(present.cartridge.address)): nothing to rebuild",
        remedy: "check it with reel media catalog \(present.cartridge.address) --scan")
    }
    let others = try groups.others(of: lost, in: map)
    try destination.createCartridgeIfMissing(capacity: capacity ?? max(16 << 30, lost.length * 2))
    guard let cartridge = try destination.openOne() as? TapeCartridge else {
      throw ReelError(.usage, "\(destination) is a folder; a cartridge is rebuilt onto vtape: or tape: media")
    }
    switch try cartridge.readLabel() {
    case .blank: break
    case .foreign(let reason):
      throw ReelError(
        .alreadyExists, "\(destination) holds data that is not a Reel label (\(reason)); nothing was written",
        remedy: "rebuild onto a blank cartridge")
    case .labeled(let label):
      guard label.parity == nil, label.sequence == 0, (try? cartridge.readCatalog().completeArchives.isEmpty) ?? false
      else {
        throw ReelError(
          .alreadyExists, "\(destination) is labeled \(label.name) and in use; nothing was written",
          remedy: "rebuild onto a blank or scratch cartridge")
      }
      // A scratch cartridge rebuilt over is gone under its old identity.
      try store?.forgetCartridge(id: label.cartridgeID)
    }
    guard try !cartridge.isWriteProtected else { throw cartridge.drive.writeProtectedError() }
    try ParityCartridge.rebuild(lost, map: map, others: others, parity: parity, to: cartridge)
    let catalog = try cartridge.readCatalog()
    try store?.recordCartridge(
      CartridgeRecord(
        cartridgeID: catalog.cartridge.id, label: catalog.cartridge.label, mediaSet: catalog.mediaSet?.name,
        mediaSetID: catalog.mediaSet?.id, sequence: catalog.cartridge.sequence, address: cartridge.address,
        closed: catalog.closed, catalogJSON: String(decoding: try catalog.json(), as: UTF8.self), updated: .now()))
    return RebuildReport(
      label: name, address: cartridge.address, parityLabel: parityLabel.name, group: map.group,
      from: others.values.map(\.label.name).sorted(), files: lost.files.count, bytes: lost.length)
  }
}
