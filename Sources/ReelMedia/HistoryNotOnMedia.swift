import Foundation
import ReelArchive
import ReelCore
import ReelStore

/// The points of a volume's history that no archive on media can restore: what deleting
/// the volume (its store history and journal) would lose for good. A point counts as
/// exported when an archive chain of the volume holds it from its first archive on, every
/// archive of it up to that point with a verified copy on media (`archive_copy` rows are
/// recorded only after a copy was read back and checked with the key).
package struct HistoryNotOnMedia: Sendable, Equatable {
  /// One stretch of points no exported chain holds, with the times of its ends.
  package struct Window: Sendable, Equatable {
    package var seqs: ClosedRange<Seq>
    package var fromTime: Timestamp?
    package var untilTime: Timestamp?

    package var description: String {
      let seqText = seqs.count == 1 ? "seq \(seqs.lowerBound)" : "seq \(seqs.lowerBound)…\(seqs.upperBound)"
      let times = [fromTime, untilTime].compactMap { $0?.rfc3339 }
      guard let first = times.first else { return seqText }
      return seqText + " (" + (times.count == 2 && times[0] != times[1] ? "\(first) – \(times[1])" : first) + ")"
    }
  }

  package var volume: String
  package var windows: [Window]

  package var isEmpty: Bool { windows.isEmpty }

  /// "seq 41…97 (… – …), seq 120…131 (…)" or "nothing".
  package var description: String {
    windows.isEmpty ? "nothing" : windows.map(\.description).joined(separator: ", ")
  }
}

extension LiveStore {
  /// What of the volume's history has no verified archive with a verified copy on media.
  /// `newestSeq`: the newest seq its journal holds, when that is past what the store has
  /// ingested (records still only in the journal are lost with it too).
  ///
  /// The history a volume owns runs from its retained start to its newest record; the state
  /// it starts from counts as its own unless it is all zeros (a blank volume at seq 0) or
  /// a clone's origin at the clone point (that is the origin's history, kept by the origin).
  package func historyNotOnMedia(of descriptor: VolumeDescriptor, newestSeq: Seq? = nil) throws -> HistoryNotOnMedia {
    let bounds = try historyBounds(of: descriptor)
    let newest = max(newestSeq ?? bounds.ingested, bounds.ingested)
    let clonePoint = try origin(of: descriptor)?.originSeq
    let startIsOwn =
      clonePoint.map { bounds.retainedFrom > $0 } ?? (bounds.retainedFrom > 0 || descriptor.hasBase)
    let first = startIsOwn ? bounds.retainedFrom : bounds.retainedFrom + 1
    guard newest >= first else { return HistoryNotOnMedia(volume: descriptor.name, windows: []) }
    let exported = try exportedStretches(of: descriptor)
    var windows: [ClosedRange<Seq>] = []
    var next = first
    for stretch in exported.sorted(by: { $0.lowerBound < $1.lowerBound }) {
      guard next <= newest else { break }
      if stretch.upperBound < next { continue }
      if stretch.lowerBound > next { windows.append(next...min(stretch.lowerBound - 1, newest)) }
      if stretch.upperBound >= newest {
        next = newest + 1
        break
      }
      next = max(next, stretch.upperBound + 1)
    }
    if next <= newest { windows.append(next...newest) }
    return HistoryNotOnMedia(
      volume: descriptor.name,
      windows: windows.map { seqs in
        HistoryNotOnMedia.Window(
          seqs: seqs, fromTime: try? time(of: seqs.lowerBound, in: descriptor),
          untilTime: try? time(of: seqs.upperBound, in: descriptor))
      })
  }

  /// Per chain of the volume's archives: the points from its first archive's start up to
  /// the end of its longest run of archives (from number 0, without a gap) that each have a
  /// verified copy on media.
  func exportedStretches(of descriptor: VolumeDescriptor) throws -> [ClosedRange<Seq>] {
    let archives = try sealedArchives(of: descriptor)
    var stretches: [ClosedRange<Seq>] = []
    for (_, chain) in Dictionary(grouping: archives, by: \.chainID) {
      var stretch: ClosedRange<Seq>?
      var expected = 0
      for archive in chain.sorted(by: { $0.chainIndex < $1.chainIndex }) {
        guard archive.chainIndex == expected, try store.catalog.verifiedCopyCount(archiveID: archive.id) > 0 else {
          break
        }
        stretch = (stretch?.lowerBound ?? archive.fromSeq)...archive.untilSeq
        expected += 1
      }
      if let stretch { stretches.append(stretch) }
    }
    return stretches
  }
}
