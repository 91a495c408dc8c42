import ReelArchive
import ReelCore

/// `reel seal --json`: one volume's report alone, else `{"volumes": [...]}`.
struct SealDocument: Encodable {
  var volumes: [SealVolumeReport]

  private enum CodingKeys: String, CodingKey { case volumes }

  func encode(to encoder: any Encoder) throws {
    if volumes.count == 1 {
      try volumes[0].encode(to: encoder)
    } else {
      var container = encoder.container(keyedBy: CodingKeys.self)
      try container.encode(volumes, forKey: .volumes)
    }
  }
}

enum SealVolumeReport: Encodable {
  case nothingSealed(NothingSealed)
  case sealed(Sealed)

  struct NothingSealed: Encodable {
    var volume: String
    var sealed = false
    var sealedSeq: Seq
    var reason: String

    private enum CodingKeys: String, CodingKey {
      case volume, sealed, reason
      case sealedSeq = "sealed_seq"
    }
  }

  struct Sealed: Encodable {
    var volume: String
    var sealed = true
    var archive: String
    var archiveID: ArchiveID
    var chainID: ArchiveID
    var chainIndex: Int
    @NullIfAbsent var parentID: ArchiveID?
    var fromSeq: Seq
    var untilSeq: Seq
    var fromTime: String
    var untilTime: String
    var size: UInt64
    var sha256: String
    var bookmarks: [String]
    var chunks: Int
    var frames: Int
    var verified = true

    init(volume: String, archive: SealedArchive) {
      let manifest = archive.manifest
      self.volume = volume
      self.archive = archive.path
      archiveID = manifest.archiveID
      chainID = manifest.chainID
      chainIndex = manifest.chainIndex
      parentID = manifest.parentID
      fromSeq = manifest.range.fromSeq
      untilSeq = manifest.range.untilSeq
      fromTime = manifest.range.fromTime
      untilTime = manifest.range.untilTime
      size = archive.size
      sha256 = archive.sha256
      bookmarks = manifest.bookmarks.map(\.label)
      chunks = manifest.contents.chunks
      frames = manifest.contents.frames
    }

    private enum CodingKeys: String, CodingKey {
      case volume, sealed, archive, size, sha256, bookmarks, chunks, frames, verified
      case archiveID = "archive_id"
      case chainID = "chain_id"
      case chainIndex = "chain_index"
      case parentID = "parent_id"
      case fromSeq = "from_seq"
      case untilSeq = "until_seq"
      case fromTime = "from_time"
      case untilTime = "until_time"
    }
  }

  func encode(to encoder: any Encoder) throws {
    switch self {
    case .nothingSealed(let report): try report.encode(to: encoder)
    case .sealed(let report): try report.encode(to: encoder)
    }
  }
}

/// `reel verify --json`: each archive's result, then the chain's problems when a key was given.
struct VerifyDocument: Encodable {
  var archives: [VerifyEntry]
  var ok: Bool
}

enum VerifyEntry: Encodable {
  case archive(ArchiveCheck)
  case chain(problems: [String])

  /// What was learned of one archive; the counts are absent when it could not be read.
  struct ArchiveCheck: Encodable {
    var archive: String
    var archiveID: ArchiveID?
    var keyChecked: Bool?
    var frames: Int?
    var chunks: Int?
    var sha256: String?
    var problems: [String] = []
    var ok = true
    /// Version 4 archives: what their parity found.
    var parity: ParityReportDocument?

    private enum CodingKeys: String, CodingKey {
      case archive, frames, chunks, sha256, problems, ok, parity
      case archiveID = "archive_id"
      case keyChecked = "key_checked"
    }
  }

  private enum CodingKeys: String, CodingKey {
    case chainProblems = "chain_problems"
  }

  func encode(to encoder: any Encoder) throws {
    switch self {
    case .archive(let check):
      try check.encode(to: encoder)
    case .chain(let problems):
      var container = encoder.container(keyedBy: CodingKeys.self)
      try container.encode(problems, forKey: .chainProblems)
    }
  }
}
