import Foundation
import ReelArchive
import ReelCore
import ReelStore

/// Which volumes a rehydration imports, in which order and up to which points, once clones
/// are taken into account. A clone's chain starts over its origin's state at the clone
/// point, so the origin's history up to that seq must be in the store before the clone's
/// first archive is imported: origins come first, pulled in from the same media when only
/// the clone was asked for, and a clone whose origin history is neither in the store nor
/// on the media is not imported at all (nothing half-imported), with a note of what it needs.
struct RehydrationOrder {
  struct Step {
    var volume: String
    /// The points restores must reach; nil among them = everything offered.
    var points: [Point?]
    /// Prefer a chain whose first archive starts at or before this seq (an origin's clone point).
    var startBy: Seq?
    /// Clones this volume is imported for (empty when it was asked for itself).
    var neededBy: [String] = []
  }

  private(set) var steps: [Step] = []
  /// Volumes not imported because their origin's history cannot be had, and why.
  private(set) var blocked: [(volume: String, reason: String)] = []

  /// `offers`: every archive the media offer (all volumes); `named`: every archive their
  /// catalogs mention (for saying where a missing one is).
  init(
    wanted: [String], until: Point?, offers: [ArchiveOffer], named: [ArchiveSummary], live: LiveStore,
    whereabouts: [String: String]
  ) throws {
    var placing: Set<String> = []
    func place(_ name: String, point: Point?, startBy: Seq?, for clone: String?) throws -> Bool {
      if let index = steps.firstIndex(where: { $0.volume == name }) {
        steps[index].points.append(point)
        if let clone { steps[index].neededBy.append(clone) }
        if let startBy { steps[index].startBy = min(steps[index].startBy ?? startBy, startBy) }
        return true
      }
      guard placing.insert(name).inserted else { return false }
      defer { placing.remove(name) }
      let candidates = offers.filter { $0.volume == name }
      if let origin = try Self.originNeeded(volume: name, candidates: candidates, startBy: startBy, live: live) {
        if let problem = try Self.originProblem(
          origin, clone: name, offers: offers, named: named, live: live, whereabouts: whereabouts)
        {
          blocked.append((name, problem))
          return false
        }
        if !(try live.holdsHistory(ofVolumeID: origin.volumeID, at: origin.seq)) {
          let originName = offers.first { $0.volumeID == origin.volumeID }!.volume
          guard try place(originName, point: .seq(origin.seq), startBy: origin.seq, for: name) else {
            blocked.append(
              (
                name,
                "it was cloned from \(origin.description), whose own history cannot be imported (see \(originName))"
              ))
            return false
          }
        }
      }
      steps.append(Step(volume: name, points: [point], startBy: startBy, neededBy: clone.map { [$0] } ?? []))
      return true
    }
    for name in wanted { _ = try place(name, point: until, startBy: nil, for: nil) }
  }

  /// The origin the volume's chain to import starts over, when the store does not hold the
  /// volume yet (a volume the store holds was linked when its first archive came in).
  static func originNeeded(volume: String, candidates: [ArchiveOffer], startBy: Seq?, live: LiveStore) throws
    -> ArchiveManifest.Origin?
  {
    if let descriptor = try? live.store.layout.descriptor(of: volume),
      !(try live.sealedArchives(of: descriptor)).isEmpty
    {
      return nil
    }
    guard let chainID = Rehydrator.chainToRebuild(imported: [], candidates: candidates, startBy: startBy) else {
      return nil
    }
    return candidates.first { $0.chainID == chainID && $0.chainIndex == 0 }?.origin
  }

  /// Why the origin's history up to the clone point cannot be had, or nil when the store
  /// holds it or the media offer a chain of the origin that reaches it from its first archive.
  static func originProblem(
    _ origin: ArchiveManifest.Origin, clone: String, offers: [ArchiveOffer], named: [ArchiveSummary],
    live: LiveStore, whereabouts: [String: String]
  ) throws -> String? {
    if try live.holdsHistory(ofVolumeID: origin.volumeID, at: origin.seq) { return nil }
    let offered = offers.filter { $0.volumeID == origin.volumeID }
    if reaches(origin.seq, offered.map(\.archive)) { return nil }
    // Name what would be needed, as far as the media's catalogs know.
    let known = Dictionary(
      (offered.map(\.archive) + named.filter { $0.volumeID == origin.volumeID }).map { ($0.archiveID, $0) },
      uniquingKeysWith: { first, _ in first })
    let offeredIDs = Set(offered.map(\.archiveID))
    let needed = neededArchives(upTo: origin.seq, Array(known.values))
    var text =
      "volume \(clone) was cloned from \(origin.description); its history up to seq \(origin.seq) is not in the store, and the media given do not hold "
      + (offered.isEmpty ? "any archive of \(origin.volumeName)" : "all of \(origin.volumeName)'s archives up to it")
    if needed.isEmpty {
      text +=
        "; no catalog read names an archive of \(origin.volumeName) reaching seq \(origin.seq): load the media holding \(origin.volumeName)'s archives up to \(origin.time) (chain from its first archive), or rehydrate \(origin.volumeName) first"
    } else {
      let list = needed.filter { !offeredIDs.contains($0.archiveID) }.map { archive in
        "\(archive.fileName) (chain \(archive.chainID) number \(archive.chainIndex), seq \(archive.fromSeq)…\(archive.untilSeq)\(whereabouts[archive.archiveID].map { ", on \($0)" } ?? ""))"
      }
      text += "; needed: " + list.joined(separator: ", ")
    }
    return text + "; nothing of \(clone) was imported"
  }

  /// Whether some chain among `archives` holds `seq` from its first archive without a gap.
  static func reaches(_ seq: Seq, _ archives: [ArchiveSummary]) -> Bool {
    !neededArchives(upTo: seq, archives).isEmpty
  }

  /// The archives of the best chain for reaching `seq` (its first archive starting at or
  /// before it), from number 0 up to the one whose window ends at or after it; empty when
  /// no chain starts early enough or reaches that far among `archives` with no gap.
  static func neededArchives(upTo seq: Seq, _ archives: [ArchiveSummary]) -> [ArchiveSummary] {
    var best: [ArchiveSummary] = []
    for (_, chain) in Dictionary(grouping: archives, by: \.chainID) {
      let byIndex = Dictionary(chain.map { ($0.chainIndex, $0) }, uniquingKeysWith: { first, _ in first })
      guard let first = byIndex[0], first.fromSeq <= seq else { continue }
      var run: [ArchiveSummary] = []
      var index = 0
      while let archive = byIndex[index] {
        run.append(archive)
        if archive.untilSeq >= seq { break }
        index += 1
      }
      guard let last = run.last, last.untilSeq >= seq else { continue }
      if best.isEmpty || run.count < best.count { best = run }
    }
    return best
  }
}
