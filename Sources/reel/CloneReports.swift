import ReelClones
import ReelCore

/// `origin` and `clones` of a volume in `volume list --json` and `timeline --json`.
struct CloneLinkJSON: Encodable {
  var volume: String
  var id: String
  var seq: Seq
  var created: String

  init(_ link: VolumeRelations.Link) {
    volume = link.volume
    id = link.volumeID
    seq = link.seq
    created = link.created.rfc3339
  }
}

extension VolumeRelations {
  /// "clone of NAME at seq P" / "cloned as A (seq P), B (seq Q)", for text output.
  var originText: String? { origin.map { "clone of \($0.volume) at seq \($0.seq)" } }
  var clonesText: String? {
    clones.isEmpty ? nil : "cloned as " + clones.map { "\($0.volume) (seq \($0.seq))" }.joined(separator: ", ")
  }
}

struct PromoteJSON: Encodable {
  var volume: String
  var origin: String
  var originSeq: Seq
  var blocks: Int
  var chunksShared: Int
  var chunksStored: Int
  var storedBytes: UInt64

  init(_ report: PromoteReport) {
    volume = report.volume
    origin = report.origin
    originSeq = report.originSeq
    blocks = report.promotion.blocks
    chunksShared = report.promotion.chunksShared
    chunksStored = report.promotion.chunksStored
    storedBytes = report.promotion.storedBytes
  }

  private enum CodingKeys: String, CodingKey {
    case volume, origin, blocks
    case originSeq = "origin_seq"
    case chunksShared = "chunks_shared"
    case chunksStored = "chunks_stored"
    case storedBytes = "stored_bytes"
  }
}

struct DeleteJSON: Encodable {
  var volume: String
  var id: String
  @NullIfAbsent var lostHistory: String?
  var chunksDeleted: Int
  var bytesFreed: UInt64

  init(_ report: DeleteReport) {
    volume = report.volume
    id = report.volumeID
    lostHistory = report.lostHistory
    chunksDeleted = report.chunksDeleted
    bytesFreed = report.bytesFreed
  }

  private enum CodingKeys: String, CodingKey {
    case volume, id
    case lostHistory = "lost_history"
    case chunksDeleted = "chunks_deleted"
    case bytesFreed = "bytes_freed"
  }
}
