import ReelArchive
import ReelCapture
import ReelClones
import ReelCore
import ReelJournal
import ReelStore

/// One volume of `reel volume list --json`.
struct VolumeJSON: Encodable {
  var name: String
  var id: String
  var size: UInt64
  var blockSize: UInt32
  var storeBlockSize: UInt32
  var created: String
  var hasBase: Bool
  @NullIfAbsent var origin: CloneLinkJSON?
  var clones: [CloneLinkJSON]

  init(_ volume: VolumeDescriptor, _ relations: VolumeRelations) {
    origin = relations.origin.map(CloneLinkJSON.init)
    clones = relations.clones.map(CloneLinkJSON.init)
    name = volume.name
    id = volume.id.description
    size = volume.size
    blockSize = volume.blockSize
    storeBlockSize = volume.storeBlockSize
    created = volume.created.rfc3339
    hasBase = volume.hasBase
  }

  private enum CodingKeys: String, CodingKey {
    case name, id, size, created, origin, clones
    case blockSize = "block_size"
    case storeBlockSize = "store_block_size"
    case hasBase = "has_base"
  }
}

/// A bookmark as `bookmark list --json` and `timeline --json` show it.
struct BookmarkJSON: Encodable {
  var label: String
  var seq: Seq
  var time: String

  init(_ bookmark: Bookmark) {
    label = bookmark.label
    seq = bookmark.seq
    time = bookmark.time.rfc3339
  }
}

/// `reel bookmark create --json`.
struct BookmarkCreatedJSON: Encodable {
  var volume: String
  var label: String
  var seq: Seq
  var time: String
  var throughServer: Bool

  init(_ result: BookmarkResult) {
    volume = result.volume
    label = result.label
    seq = result.seq
    time = result.time.rfc3339
    throughServer = result.throughServer
  }

  private enum CodingKeys: String, CodingKey {
    case volume, label, seq, time
    case throughServer = "through_server"
  }
}

/// `reel restore --json`.
struct RestoreJSON: Encodable {
  var volume: String
  var output: String
  var seq: Seq
  var time: String
  var point: String
  var bytesWritten: UInt64
  var size: UInt64
  var removedPartials: [String]

  init(_ report: RestoreReport) {
    volume = report.volume
    output = report.output
    seq = report.resolved.seq
    time = report.resolved.time.rfc3339
    point = report.resolved.point.description
    bytesWritten = report.bytesWritten
    size = report.size
    removedPartials = report.removedPartials
  }

  private enum CodingKeys: String, CodingKey {
    case volume, output, seq, time, point, size
    case bytesWritten = "bytes_written"
    case removedPartials = "removed_partials"
  }
}

/// `reel timeline --json`.
struct TimelineJSON: Encodable {
  struct Archive: Encodable {
    var id: ArchiveID
    var fromSeq: Seq
    var untilSeq: Seq
    var file: String
    var verified: Bool

    init(_ archive: SealedArchiveRecord) {
      id = archive.id
      fromSeq = archive.fromSeq
      untilSeq = archive.untilSeq
      file = archive.fileName
      verified = archive.verified != nil
    }

    private enum CodingKeys: String, CodingKey {
      case id, file, verified
      case fromSeq = "from_seq"
      case untilSeq = "until_seq"
    }
  }

  var volume: String
  var created: String
  var size: UInt64
  var firstSeq: Seq
  var lastSeq: Seq
  @NullIfAbsent var firstTime: String?
  @NullIfAbsent var lastTime: String?
  var records: Int
  var bytesWritten: UInt64
  var segments: Int
  var bookmarks: [BookmarkJSON]
  var retainedFromSeq: Seq
  var sealedSeq: Seq
  var archives: [Archive]
  @NullIfAbsent var origin: CloneLinkJSON?
  var clones: [CloneLinkJSON]
  /// Rollback records: from `seq` on, the volume read as it did at `target_seq`.
  var rollbacks: [Rollback] = []
  /// History a rehydrated archive damaged beyond repair could not give back.
  var lost: [Lost] = []

  struct Lost: Encodable {
    var archiveID: String
    var fromSeq: Seq
    var untilSeq: Seq
    @NullIfAbsent var fromTime: String?
    var description: String

    init(_ loss: HistoryLoss) {
      archiveID = loss.archiveID
      fromSeq = loss.fromSeq
      untilSeq = loss.untilSeq
      fromTime = loss.fromTime?.rfc3339
      description = loss.description
    }

    private enum CodingKeys: String, CodingKey {
      case description
      case archiveID = "archive_id"
      case fromSeq = "from_seq"
      case untilSeq = "until_seq"
      case fromTime = "from_time"
    }
  }

  struct Rollback: Encodable {
    var seq: Seq
    var time: String
    var targetSeq: Seq
    @NullIfAbsent var targetTime: String?

    init(_ rollback: RollbackEvent, targetTime: Timestamp?) {
      seq = rollback.seq
      time = rollback.time.rfc3339
      targetSeq = rollback.targetSeq
      self.targetTime = targetTime?.rfc3339
    }

    private enum CodingKeys: String, CodingKey {
      case seq, time
      case targetSeq = "target_seq"
      case targetTime = "target_time"
    }
  }

  private enum CodingKeys: String, CodingKey {
    case volume, created, size, records, segments, bookmarks, archives, origin, clones, rollbacks, lost
    case firstSeq = "first_seq"
    case lastSeq = "last_seq"
    case firstTime = "first_time"
    case lastTime = "last_time"
    case bytesWritten = "bytes_written"
    case retainedFromSeq = "retained_from_seq"
    case sealedSeq = "sealed_seq"
  }
}

/// One line of `reel journal dump --json`; the fields after `kind` depend on it.
struct JournalRecordJSON: Encodable {
  var seq: Seq
  var time: String
  var timeNanoseconds: Int64
  var kind: String
  var offset: UInt64?
  var length: UInt64?
  var fua: Bool?
  var label: String?
  var targetSeq: Seq?
  var extents: [[UInt64]]?

  init(_ record: JournalRecord) {
    seq = record.seq
    time = record.time.rfc3339
    timeNanoseconds = record.time.nanoseconds
    kind = record.kind.description
    switch record.kind {
    case .write, .trim, .writeZeroes:
      offset = record.offset
      length = record.length
      fua = record.flags.contains(.forceUnitAccess)
    case .bookmark:
      label = record.label ?? ""
    case .flush:
      break
    case .rollback:
      targetSeq = record.rollback?.targetSeq
      extents = record.rollback?.extents.map { [$0.offset, $0.length] }
    }
  }

  private enum CodingKeys: String, CodingKey {
    case seq, time, kind, offset, length, fua, label, extents
    case targetSeq = "target_seq"
    case timeNanoseconds = "time_ns"
  }
}

/// `reel journal verify --json`.
struct JournalVerifyJSON: Encodable {
  var volume: String
  var ok = true
  var segments: Int
  var records: UInt64
  var firstSeq: Seq
  var lastSeq: Seq
  var bytesWritten: UInt64

  init(volume: String, summary: JournalSummary) {
    self.volume = volume
    segments = summary.segmentCount
    records = summary.recordCount
    firstSeq = summary.firstSeq ?? 0
    lastSeq = summary.lastSeq ?? 0
    bytesWritten = summary.bytesWritten
  }

  private enum CodingKeys: String, CodingKey {
    case volume, ok, segments, records
    case firstSeq = "first_seq"
    case lastSeq = "last_seq"
    case bytesWritten = "bytes_written"
  }
}
