import Foundation

/// The identity of a sealed archive: the lower-case UUID text its manifest, the store
/// catalog and media catalogs all carry. A chain is named by its first archive's ID.
package typealias ArchiveID = String

/// Where a sealed archive sits in its volume's history: its chain, the archive it
/// continues, and its journal window, records `fromSeq < seq <= untilSeq` between the
/// times of those two seqs. The first archive of a chain also holds the volume's state as
/// of `fromSeq`.
package struct ArchiveSpan: Sendable, Equatable {
  package var id: ArchiveID
  package var chainID: ArchiveID
  /// The archive whose history this one continues; nil for the first of a chain.
  package var parentID: ArchiveID?
  /// 0 for the first archive of a chain, then 1, 2, …
  package var chainIndex: Int
  package var fromSeq: Seq
  package var untilSeq: Seq
  package var fromTime: Timestamp
  package var untilTime: Timestamp

  package init(
    id: ArchiveID, chainID: ArchiveID, parentID: ArchiveID?, chainIndex: Int, fromSeq: Seq, untilSeq: Seq,
    fromTime: Timestamp, untilTime: Timestamp
  ) {
    self.id = id
    self.chainID = chainID
    self.parentID = parentID
    self.chainIndex = chainIndex
    self.fromSeq = fromSeq
    self.untilSeq = untilSeq
    self.fromTime = fromTime
    self.untilTime = untilTime
  }
}

/// A named point in a volume's history: the bookmark record's seq, its label and its time.
/// Coded as `label`, `seq`, `time` (in that order) where it is written to catalogs.
package struct Bookmark: Sendable, Equatable, Codable {
  package var label: String
  package var seq: Seq
  package var time: Timestamp

  package init(seq: Seq, label: String, time: Timestamp) {
    self.seq = seq
    self.label = label
    self.time = time
  }
}
