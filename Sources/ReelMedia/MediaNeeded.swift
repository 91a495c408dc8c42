import Foundation
import ReelCore
import ReelStore

/// Which archives, and so which cartridges, a restore of a volume to a point needs: the
/// archive whose range holds the point and every earlier archive of its chain.
package struct RestorePlan: Sendable {
  package struct NeededArchive: Sendable {
    package var archiveID: String
    package var chainIndex: Int
    package var fromTime: Timestamp
    package var untilTime: Timestamp
    package var copies: [ArchiveCopy]
  }

  /// One media set's cartridges that together hold every needed archive.
  package struct SetPlan: Sendable {
    package var mediaSet: String
    /// Cartridge label and the tape files to read from it, in chain order.
    package var cartridges: [(label: String, files: [Int])]
    /// Archives this set has no verified copy of; empty when the set alone suffices.
    package var missing: [String]
  }

  package var volume: String
  package var point: Point
  package var chainID: String
  package var archives: [NeededArchive]
  package var sets: [SetPlan]

  /// Plans from the store's verified copies; throws when no archive holds the point or
  /// the chain up to it is not all on media.
  package init(volume: String, point: Point, copies allCopies: [ArchiveCopy]) throws {
    self.volume = volume
    self.point = point
    let copies = allCopies.filter { $0.volumeName == volume }
    let byArchive = Dictionary(grouping: copies, by: \.archiveID)
    let archives = byArchive.values.map { $0[0] }
    guard !archives.isEmpty else {
      throw ReelError(
        .notFound, "no archive of volume \"\(volume)\" has a verified copy on media",
        remedy: "seal and export it first (reel export ARCHIVE --to MEDIA), or rebuild the records from the "
          + "media with `reel media catalog MEDIA --scan`")
    }
    guard let target = Self.archive(holding: point, among: archives) else {
      let ranges = archives.sorted { $0.fromSeq < $1.fromSeq }.map {
        "\($0.fromTime.rfc3339) – \($0.untilTime.rfc3339)"
      }
      throw ReelError(
        .notFound, "no archive on media holds \(point) of volume \"\(volume)\"",
        remedy: "archived ranges: " + ranges.joined(separator: ", "))
    }
    chainID = target.chainID
    let chain = archives.filter { $0.chainID == target.chainID && $0.chainIndex <= target.chainIndex }
      .sorted { $0.chainIndex < $1.chainIndex }
    let missing = Set(0...target.chainIndex).subtracting(chain.map(\.chainIndex)).sorted()
    guard missing.isEmpty else {
      throw ReelError(
        .notFound,
        "archive(s) \(missing.map(String.init).joined(separator: ", ")) of chain \(target.chainID) "
          + "(volume \"\(volume)\") have no verified copy on media, so \(point) cannot be restored from media",
        remedy: "export those archives, or choose a later point of a newer chain")
    }
    self.archives = chain.map {
      NeededArchive(
        archiveID: $0.archiveID, chainIndex: $0.chainIndex, fromTime: $0.fromTime, untilTime: $0.untilTime,
        copies: byArchive[$0.archiveID] ?? [])
    }
    sets = Set(copies.map(\.mediaSet)).sorted().map { name in
      var cartridges: [(label: String, files: [Int])] = []
      var missing: [String] = []
      for archive in chain {
        guard let copy = byArchive[archive.archiveID]?.first(where: { $0.mediaSet == name }) else {
          missing.append(archive.archiveID)
          continue
        }
        if let index = cartridges.firstIndex(where: { $0.label == copy.cartridgeLabel }) {
          cartridges[index].files.append(copy.tapeFile)
        } else {
          cartridges.append((copy.cartridgeLabel, [copy.tapeFile]))
        }
      }
      return SetPlan(mediaSet: name, cartridges: cartridges, missing: missing)
    }
  }

  /// The archive whose range holds the point; of several chains, the shortest restore.
  static func archive(holding point: Point, among archives: [ArchiveCopy]) -> ArchiveCopy? {
    let holding: [ArchiveCopy]
    switch point {
    case .latest, .time(Timestamp.now()...):
      // A time still to come can only mean the newest state there is.
      return archives.max { ($0.untilSeq, $0.chainIndex) < ($1.untilSeq, $1.chainIndex) }
    case .seq(let seq):
      holding = archives.filter { contains($0, seq: seq) }
    case .time(let time):
      holding = archives.filter { $0.fromTime <= time && time <= $0.untilTime }
    case .bookmark(let label):
      guard let mark = archives.flatMap(\.bookmarks).filter({ $0.label == label }).max(by: { $0.seq < $1.seq })
      else { return nil }
      holding = archives.filter { contains($0, seq: mark.seq) }
    }
    return holding.min { $0.chainIndex < $1.chainIndex }
  }

  /// Records `fromSeq < seq <= untilSeq`; the first archive of a chain also holds its base at `fromSeq`.
  private static func contains(_ archive: ArchiveCopy, seq: UInt64) -> Bool {
    (archive.fromSeq < seq && seq <= archive.untilSeq) || (archive.chainIndex == 0 && seq == archive.fromSeq)
  }
}
