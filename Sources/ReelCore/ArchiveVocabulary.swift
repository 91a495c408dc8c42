import Foundation

/// The identity of a sealed archive: the lower-case UUID text its manifest, the store
/// catalog and media catalogs all carry. A chain is named by its first archive's ID.
public typealias ArchiveID = String

/// Where a sealed archive sits in its volume's history: its chain, the archive it
/// continues, and its journal window, records `fromSeq < seq <= untilSeq` between the
/// times of those two seqs. The first archive of a chain also holds the volume's state as
/// of `fromSeq`.
public struct ArchiveSpan: Sendable, Equatable {
  public var id: ArchiveID
  public var chainID: ArchiveID
  /// The archive whose history this one continues; nil for the first of a chain.
  public var parentID: ArchiveID?
  /// 0 for the first archive of a chain, then 1, 2, …
  public var chainIndex: Int
  public var fromSeq: Seq
  public var untilSeq: Seq
  public var fromTime: Timestamp
  public var untilTime: Timestamp

  public init(
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
public struct Bookmark: Sendable, Equatable, Codable {
  public var label: String
  public var seq: Seq
  public var time: Timestamp

  public init(seq: Seq, label: String, time: Timestamp) {
    self.seq = seq
    self.label = label
    self.time = time
  }
}
