import ReelCore
import ReelStore

/// `reel ingest --json`: one entry per volume.
struct IngestJSON: Encodable {
  var volume: String
  var firstSeq: Seq
  var lastSeq: Seq
  var records: UInt64
  var bytesWritten: UInt64
  var chunksStored: UInt64
  var chunksReused: UInt64
  var storedBytes: UInt64

  init(volume: String, report: IngestReport) {
    self.volume = volume
    firstSeq = report.firstSeq
    lastSeq = report.lastSeq
    records = report.records
    bytesWritten = report.bytesWritten
    chunksStored = report.chunksStored
    chunksReused = report.chunksReused
    storedBytes = report.storedBytes
  }

  private enum CodingKeys: String, CodingKey {
    case volume, records
    case firstSeq = "first_seq"
    case lastSeq = "last_seq"
    case bytesWritten = "bytes_written"
    case chunksStored = "chunks_stored"
    case chunksReused = "chunks_reused"
    case storedBytes = "stored_bytes"
  }
}

/// `reel prune --json`.
struct PruneJSON: Encodable {
  var volume: String
  var report: PruneReport

  private enum CodingKeys: String, CodingKey {
    case volume
    case retainedFromSeq = "retained_from_seq"
    case versionsDeleted = "versions_deleted"
    case bookmarksKept = "bookmarks_kept"
    case chunksDeleted = "chunks_deleted"
    case bytesFreed = "bytes_freed"
    case journalSegmentsKept = "journal_segments_kept"
    case keptForLiveImage = "kept_for_live_image"
    case keptForClones = "kept_for_clones"
  }

  func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(volume, forKey: .volume)
    try container.encode(report.retainedFromSeq, forKey: .retainedFromSeq)
    try container.encode(report.versionsDeleted, forKey: .versionsDeleted)
    try container.encode(report.bookmarksKept, forKey: .bookmarksKept)
    try container.encode(report.chunksDeleted, forKey: .chunksDeleted)
    try container.encode(report.bytesFreed, forKey: .bytesFreed)
    try container.encode(report.journalSegmentsKept, forKey: .journalSegmentsKept)
    try container.encodeIfPresent(report.keptForLiveImage, forKey: .keptForLiveImage)
    try container.encode(report.keptForClones, forKey: .keptForClones)
  }
}

/// `reel store check --json`.
struct StoreCheckJSON: Encodable {
  struct Problem: Encodable {
    var message: String
    var affects: [String]
  }

  struct Permission: Encodable {
    var path: String
    var directory: Bool
    var mode: String
    var owner: UInt32
    var expectedOwner: UInt32
    var fixed: Bool
    var fixedMode: String?

    private enum CodingKeys: String, CodingKey {
      case path, directory, mode, owner, fixed
      case expectedOwner = "expected_owner"
      case fixedMode = "fixed_mode"
    }
  }

  var report: StoreCheckReport
  /// Every loose entry found, fixed or not.
  var permissions: [LoosePermission] = []

  private enum CodingKeys: String, CodingKey {
    case clean, chunks, versions, problems, permissions
    case chunksRead = "chunks_read"
    case orphanBytes = "orphan_bytes"
    case archivesVerified = "archives_verified"
    case interruptedVolumes = "interrupted_volumes"
  }

  func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(report.isClean && permissions.allSatisfy(\.fixed), forKey: .clean)
    try container.encode(report.chunksChecked, forKey: .chunks)
    try container.encode(report.chunksRead, forKey: .chunksRead)
    try container.encode(report.versionsChecked, forKey: .versions)
    try container.encode(report.orphanBytes, forKey: .orphanBytes)
    try container.encode(report.archivesVerified, forKey: .archivesVerified)
    try container.encode(report.interruptedVolumes, forKey: .interruptedVolumes)
    try container.encode(
      report.problems.map { Problem(message: $0.message, affects: $0.affects) }, forKey: .problems)
    try container.encode(
      permissions.map {
        Permission(
          path: $0.path, directory: $0.isDirectory, mode: LoosePermission.octal($0.mode), owner: $0.owner,
          expectedOwner: $0.expectedOwner, fixed: $0.fixed, fixedMode: $0.fixedMode.map(LoosePermission.octal))
      }, forKey: .permissions)
  }
}

/// `reel store repair --json`.
struct StoreRepairJSON: Encodable {
  struct Unrepaired: Encodable {
    var chunk: String
    var reason: String
    var affects: [String]
  }

  var report: StoreRepairReport

  private enum CodingKeys: String, CodingKey {
    case complete, chunks, damaged, unrepaired
    case fromJournal = "from_journal"
    case fromArchives = "from_archives"
    case archivesRead = "archives_read"
  }

  func encode(to encoder: any Encoder) throws {
    var container = encoder.container(keyedBy: CodingKeys.self)
    try container.encode(report.isComplete, forKey: .complete)
    try container.encode(report.chunksChecked, forKey: .chunks)
    try container.encode(report.damaged.count, forKey: .damaged)
    try container.encode(report.fromJournal, forKey: .fromJournal)
    try container.encode(report.fromArchives, forKey: .fromArchives)
    try container.encode(report.archivesRead, forKey: .archivesRead)
    try container.encode(
      report.unrepaired.map { Unrepaired(chunk: $0.chunk, reason: $0.reason, affects: $0.affects) },
      forKey: .unrepaired)
  }
}
