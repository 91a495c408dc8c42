import GRDB
import ReelCore
import ReelJournal

/// One rollback in a volume's history: the record at `seq` made the volume's contents
/// those at `targetSeq` (catalog table `volume_rollback`).
package struct RollbackEvent: Sendable, Equatable {
  package var seq: Seq
  package var targetSeq: Seq
  package var time: Timestamp

  package init(seq: Seq, targetSeq: Seq, time: Timestamp) {
    self.seq = seq
    self.targetSeq = targetSeq
    self.time = time
  }
}

extension IngestBatch {
  /// A rollback record becomes one full version per touched block at the record's seq,
  /// equal to the block's state at the target seq (docs/journal-format.md, kind 6). A
  /// state that is one full version reuses its chunk; any other is assembled and stored.
  /// The ingest loop commits everything before the record first, so the catalog has the
  /// target's state.
  mutating func addRollback(_ record: JournalRecord) throws {
    guard let payload = record.rollback else {
      throw ReelError(
        .corrupt, "volume \(descriptor.name): journal record seq \(record.seq) is a rollback that does not decode")
    }
    do throws(RollbackPayloadError) {
      try payload.check(
        volumeSize: descriptor.size, storeBlockSize: UInt64(descriptor.storeBlockSize), recordSeq: record.seq)
    } catch {
      throw ReelError(
        .corrupt, "volume \(descriptor.name): journal record seq \(record.seq): \(error.reason)",
        remedy: "check the journal with `reel journal verify`; the volume descriptor may not belong to it")
    }
    let blockSize = UInt64(descriptor.storeBlockSize)
    for extent in payload.extents {
      let blocks = (extent.offset / blockSize)..<((extent.end + blockSize - 1) / blockSize)
      // A bounded run of blocks per catalog read keeps memory flat for large extents.
      var start = blocks.lowerBound
      while start < blocks.upperBound {
        let run = start..<min(blocks.upperBound, start + 256)
        let chains = try live.blockStates(of: descriptor, blocks: run, at: payload.targetSeq)
        for (block, chain) in zip(run, chains) {
          try addState(block: block, chain: chain, seq: record.seq)
        }
        start = run.upperBound
      }
    }
    rollbacks.append(RollbackEvent(seq: record.seq, targetSeq: payload.targetSeq, time: record.time))
  }

  private mutating func addState(block: UInt64, chain: [BlockVersion], seq: Seq) throws {
    let blockLength = Int(
      min(UInt64(descriptor.storeBlockSize), descriptor.size - block * UInt64(descriptor.storeBlockSize)))
    payloadBytes += blockLength
    if chain.isEmpty || chain.allSatisfy({ $0.key == nil && $0.full }) {
      return try add(
        BlockVersion(block: block, seq: seq, full: true, chunk: nil, start: 0, length: blockLength), content: nil)
    }
    if chain.count == 1, chain[0].full, chain[0].location != nil {
      var reused = chain[0]
      reused.seq = seq
      chunksReused += 1
      return try add(reused, content: nil)
    }
    let whole: [UInt8]
    do {
      whole = try live.assemble(chain, length: blockLength)
    } catch let error as ReelError {
      throw ReelError(
        error.kind,
        "volume \(descriptor.name): the rollback at seq \(seq) needs block \(block) as of its target: \(error.message)",
        remedy: error.remedy ?? "run `reel store check` and `reel store repair`, then ingest again")
    }
    try add(
      BlockVersion(block: block, seq: seq, full: true, chunk: nil, start: 0, length: blockLength), content: whole[...])
  }
}

extension LiveStore {
  /// The version chains of `blocks` as of `seq` (see `Catalog.versionChain`; a clone's
  /// fall through to its origin), in one read.
  func blockStates(of descriptor: VolumeDescriptor, blocks: Range<UInt64>, at seq: Seq) throws -> [[BlockVersion]] {
    try catalog.database.read { db in
      let lineage = try Catalog.lineage(db, of: descriptor.id.description)
      return try blocks.map { try Catalog.versionChain(db, lineage: lineage, block: $0, atOrBefore: seq) }
    }
  }

  /// The rollbacks in a volume's ingested history, oldest first.
  package func rollbacks(of descriptor: VolumeDescriptor) throws -> [RollbackEvent] {
    try catalog.database.read { db in
      try Row.fetchAll(
        db, sql: "SELECT seq, target_seq, time_ns FROM volume_rollback WHERE volume_id = ? ORDER BY seq",
        arguments: [descriptor.id.description]
      ).map {
        RollbackEvent(
          seq: Seq($0["seq"] as Int64), targetSeq: Seq($0["target_seq"] as Int64),
          time: Timestamp(nanoseconds: $0["time_ns"]))
      }
    }
  }
}

extension Catalog {
  static func insertRollbacks(_ db: Database, volume: String, _ rollbacks: [RollbackEvent]) throws {
    for rollback in rollbacks {
      try db.execute(
        sql: "INSERT OR REPLACE INTO volume_rollback (volume_id, seq, target_seq, time_ns) VALUES (?, ?, ?, ?)",
        arguments: [volume, Int64(rollback.seq), Int64(rollback.targetSeq), rollback.time.nanoseconds])
    }
  }
}

extension LiveStore {
  /// The store blocks of the volume that have a version in `after <.. through`, in block
  /// order: every block whose contents may differ between the two points. Reads only the
  /// volume's own versions in that window, so its cost follows what changed.
  package func changedBlocks(of descriptor: VolumeDescriptor, after: Seq, through: Seq) throws -> [UInt64] {
    guard after < through else { return [] }
    return try catalog.database.read { db in
      try Int64.fetchAll(
        db,
        sql: """
          SELECT DISTINCT block FROM block_version
          WHERE volume = \(Catalog.volumeNumber) AND seq > ? AND seq <= ? ORDER BY block
          """,
        arguments: [descriptor.id.description, Int64(after), Int64(through)]
      ).map { UInt64($0) }
    }
  }
}
