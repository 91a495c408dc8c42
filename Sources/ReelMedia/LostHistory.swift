import Foundation
import ReelArchive
import ReelCore
import ReelStore

/// History of a volume that a damaged archive could not give back: the seqs from the first
/// one whose state needs a lost chunk to the archive's end (docs/rehydrate.md, "Beyond
/// repair"). Every frame that authenticated was used; what was whole before is imported.
package struct LostHistory: Sendable, Equatable {
  package var archive: String
  package var archiveID: String
  package var location: String
  /// Lost, inclusive: no point in `fromSeq ... untilSeq` can be restored from these media.
  package var fromSeq: Seq
  package var untilSeq: Seq
  package var fromTime: String?
  package var untilTime: String?
  /// Where the damage is, one phrase per range ("archive bytes 1048576–2097151").
  package var damage: [String]
  /// Why, when nothing of the archive authenticates (its manifest or index is damaged).
  package var reason: String?
  /// The archive's history was imported up to this seq (nil: nothing of it).
  package var importedThrough: Seq?

  /// "seq 41–80 (TIME–TIME) lost: archive X (LOCATION), archive bytes N–M beyond repair".
  package var sentence: String {
    let times = "\(fromTime ?? "?")–\(untilTime ?? "?")"
    let seqs = fromSeq == untilSeq ? "seq \(fromSeq)" : "seq \(fromSeq)–\(untilSeq)"
    let why = reason.map { ": \($0)" } ?? (damage.isEmpty ? "" : ", \(damage.joined(separator: ", ")) beyond repair")
    let kept = importedThrough.map { "; its history up to seq \($0) was imported" } ?? "; nothing of it was imported"
    return "\(seqs) (\(times)) lost: archive \(archive) (\(location))\(why)\(kept)"
  }
}

extension LostHistory {
  /// What an archive assessed as damaged lost, located by its parity's unrepaired ranges
  /// (archive bytes) or, without parity, by the frames that held lost chunks.
  init(_ offer: ArchiveOffer, salvage: ArchiveSalvage, parityLost: [(offset: UInt64, length: UInt64)]) {
    let first = salvage.firstLostSeq ?? salvage.manifest.range.untilSeq
    self.init(
      archive: offer.fileName, archiveID: offer.archiveID, location: offer.location, fromSeq: first,
      untilSeq: salvage.manifest.range.untilSeq, fromTime: salvage.firstLostTime?.rfc3339,
      untilTime: salvage.manifest.range.untilTime,
      damage: parityLost.isEmpty
        ? salvage.lostFrames.map { "\($0.member) bytes \(Self.span($0.offset, $0.length))" }
        : parityLost.map { "archive bytes \(Self.span($0.offset, $0.length))" },
      reason: nil, importedThrough: salvage.importable ? salvage.wholeThrough : nil)
  }

  /// The whole window of an archive nothing of which authenticates (the seqs and times as
  /// the media's catalog gives them: the manifest that would prove them is lost).
  init(_ offer: ArchiveOffer, reason: String) {
    self.init(
      archive: offer.fileName, archiveID: offer.archiveID, location: offer.location,
      fromSeq: offer.chainIndex == 0 ? offer.fromSeq : offer.fromSeq + 1, untilSeq: offer.untilSeq,
      fromTime: offer.fromTime, untilTime: offer.untilTime, damage: [], reason: reason, importedThrough: nil)
  }

  static func span(_ offset: UInt64, _ length: UInt64) -> String { "\(offset)–\(offset + max(length, 1) - 1)" }
}
