import Foundation
import ReelCore
import ReelStore

/// A parity cartridge an export wrote: the group and the data cartridges it covers.
package struct ParityWritten: Sendable, Equatable {
  package var group: Int
  package var parityLabel: String
  package var address: String
  package var members: [String]
}

extension CartridgeRecord {
  /// The parity map the store keeps for a parity cartridge (in place of a catalog).
  package var parityMap: ParityMap? {
    guard let json = catalogJSON, json.contains(ParityMap.formatName) else { return nil }
    return try? ParityMap.decode(Array(json.utf8), describing: "the store's record of \(label)")
  }
}

extension Exporter {
  /// After the archives: the parity of every group written to, or whose parity cartridge
  /// is behind its data cartridges, recomputed from the group's data cartridges (all at
  /// hand among the targets). Recomputing rather than updating the old parity in place
  /// keeps one code path and reads nothing from the old parity, whose own damage would
  /// otherwise carry into the new one; the cost is reading the group's cartridges again.
  func writeParity(_ state: inout SetState, report: inout ExportReport) throws {
    let sizes = Set(state.parity.compactMap(\.label.parity?.of)).union(state.knownParityOf)
    guard let of = sizes.first else { return }
    guard sizes.count == 1 else {
      throw ReelError(
        .usage,
        "the parity cartridges of media set \"\(mediaSet)\" have different group sizes (\(sizes.sorted())); "
          + "the archives are exported, the parity is not written",
        remedy: "relabel the odd ones with --force and the set's --parity-group")
    }
    let members = Dictionary(state.members.map { ($0.label.sequence, $0) }) { first, _ in first }
    var groups = Set(state.touched.map { ParityRole.group(ofSequence: $0, of: of) })
    for (sequence, slot) in members where !groups.contains(ParityRole.group(ofSequence: sequence, of: of)) {
      let group = ParityRole.group(ofSequence: sequence, of: of)
      if try parityIsBehind(group: group, member: slot, state: state) { groups.insert(group) }
    }
    for group in groups.sorted() {
      do {
        try writeParity(group: group, of: of, members: members, state: &state, report: &report)
      } catch let error as ReelError where error.kind != .interrupted {
        report.parityWarnings.append("group \(group): \(error.message)" + (error.remedy.map { " (\($0))" } ?? ""))
      }
    }
  }

  private func writeParity(
    group: Int, of: Int, members: [Int: Slot], state: inout SetState, report: inout ExportReport
  ) throws {
    let range = ParityRole.sequences(group: group, of: of)
    let sequences = range.filter { $0 < state.nextSequence }
    let absent = sequences.filter { members[$0] == nil }
    guard absent.isEmpty else {
      let names = absent.map { sequence in
        state.catalogs[sequence].map { "\($0.cartridge.label) (#\(sequence))" } ?? "#\(sequence)"
      }
      throw ReelError(
        .notFound,
        "parity not written: its data cartridge(s) \(names.joined(separator: ", ")) are not among the targets",
        remedy: "export again with every data cartridge of the group and its parity cartridge among the targets")
    }
    guard
      var slot = state.parity.first(where: { $0.label.parity?.group == group })
        ?? state.parity.first(where: { $0.label.parity?.group == nil })
    else {
      throw ReelError(
        .notFound,
        "no parity cartridge for it among the targets, so cartridges #\(range.lowerBound)–#\(range.upperBound) "
          + "are not protected",
        remedy: "label one: reel media label MEDIA --name NAME --media-set \(mediaSet) --parity-group \(of); "
          + "then run the same export again")
    }
    guard try !slot.volume.isWriteProtected, let parity = slot.volume as? TapeCartridge else {
      throw ReelError(
        .io, "parity cartridge \(slot.label.name) (\(slot.volume.address)) is write-protected or not a tape",
        remedy: "clear its write protection and run the same export again")
    }
    var atHand: [Int: GroupMember] = [:]
    for sequence in sequences {
      let member = members[sequence]!
      guard let cartridge = member.volume as? TapeCartridge else {
        throw ReelError(
          .usage, "\(member.volume.address) is a folder; parity cartridges cover tape cartridges only",
          remedy: "keep a media set with parity on vtape: or tape: media")
      }
      atHand[sequence - range.lowerBound] = GroupMember(
        cartridge: cartridge, label: member.label, catalog: try cartridge.readCatalog())
    }
    slot.label.parity?.group = group
    slot.label.mediaSet = mediaSet
    slot.label.mediaSetID = state.setID
    progress("writing the parity of group \(group) to \(slot.volume.address) (\(slot.label.name))")
    let map = try ParityCartridge.write(
      group: group, members: atHand, parity: parity, label: slot.label,
      mediaSet: CartridgeCatalog.MediaSet(name: mediaSet, id: state.setID))
    state.parity.removeAll { $0.label.cartridgeID == slot.label.cartridgeID }
    state.parity.append(slot)
    try store?.recordCartridge(
      CartridgeRecord(
        cartridgeID: slot.label.cartridgeID, label: slot.label.name, mediaSet: mediaSet, mediaSetID: state.setID,
        sequence: 0, address: slot.volume.address, closed: false,
        catalogJSON: String(decoding: try map.json(), as: UTF8.self), updated: .now()))
    report.parity.append(
      ParityWritten(
        group: group, parityLabel: slot.label.name, address: slot.volume.address, members: map.memberLabels))
  }

  /// True when the group's parity cartridge among the targets is unwritten, unreadable,
  /// or was written before `member` got its newest files.
  private func parityIsBehind(group: Int, member: Slot, state: SetState) throws -> Bool {
    guard let slot = state.parity.first(where: { $0.label.parity?.group == group }),
      let parity = slot.volume as? TapeCartridge
    else {
      // No parity cartridge of its own at hand: worth writing when a blank one is, unless
      // the group has one elsewhere (kept offsite), which a blank one must not replace.
      return !state.knownParityGroups.contains(group) && state.parity.contains { $0.label.parity?.group == nil }
    }
    guard let map = try? ParityCartridge.readMap(parity, label: slot.label),
      let entry = map.members.first(where: { $0.cartridgeID == member.label.cartridgeID })
    else { return true }
    return state.catalogs[member.label.sequence].map { $0.files.count != entry.files.count } ?? true
  }
}
