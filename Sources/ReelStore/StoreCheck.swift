import Foundation
import GRDB
import ReelCore
import ReelJournal

package struct StoreProblem: Sendable, Equatable {
  package var message: String
  /// What the damage affects, as "volume NAME bytes A..<B, seq X…Y (TIME…TIME)".
  package var affects: [String]
  /// The catalog row of the chunk whose record is missing or cannot be trusted, when the
  /// problem is one.
  package var chunkRow: Int64? = nil
}

package struct StoreCheckReport: Sendable {
  package var chunksChecked = 0
  package var chunksRead = 0
  package var versionsChecked = 0
  /// Pack bytes no catalog row accounts for: left by an ingest or prune that was killed
  /// before its commit; harmless, and cut off by the next ingest or prune.
  package var orphanBytes: UInt64 = 0
  package var problems: [StoreProblem] = []
  package var isClean: Bool { problems.isEmpty }
  /// Archives imported without re-hashing their chunks, marked verified by this check.
  package var archivesVerified = 0
  /// Clones and deletes killed between their catalog and folder steps: harmless, settled
  /// by the next clone, delete or prune (the volume never existed, or is gone).
  package var interruptedVolumes: [String] = []
}

extension LiveStore {
  /// Checks that the catalog and the chunks agree; with `readData`, also decodes every
  /// chunk and checks its SHA-256 against its name. Damage is reported with the
  /// volume ranges and history spans it affects.
  package func check(readData: Bool) throws -> StoreCheckReport {
    try check(readData: readData, markVerified: true)
  }

  /// `markVerified`: a clean read of every chunk marks imported archives verified.
  func check(readData: Bool, markVerified: Bool) throws -> StoreCheckReport {
    var report = StoreCheckReport()
    let volumes = try catalog.database.read { db in
      try Row.fetchAll(db, sql: "SELECT id, name FROM volume").reduce(into: [String: String]()) {
        $0[$1["id"]] = $1["name"]
      }
    }
    let storeBlockSizes = volumes.reduce(into: [String: UInt64]()) { sizes, volume in
      sizes[volume.key] = (try? store.layout.descriptor(of: volume.value)).map { UInt64($0.storeBlockSize) }
    }
    let chunks = try catalog.database.read { db in
      try Row.fetchAll(
        db,
        sql: """
          SELECT c.id, nullif(lower(hex(c.digest)), '') AS hash, p.id AS pack, c.offset, c.length, c.record_offset
          FROM chunk c JOIN pack p ON p.number = c.pack_number
          """
      )
      .reduce(into: [Int64: (key: ChunkKey, location: ChunkLocation)]()) {
        $0[$1["id"]] = (
          Catalog.chunkKey(row: $1["id"], hash: $1["hash"]),
          ChunkLocation($1)
        )
      }
    }
    let lost = try catalog.database.read { db in
      try Row.fetchAll(
        db,
        sql: """
          SELECT id, hash FROM chunk_named WHERE pack IS NULL AND id IN (SELECT chunk_id FROM block_version)
          ORDER BY hash, id
          """
      ).map { (row: $0["id"] as Int64, key: Catalog.chunkKey(row: $0["id"], hash: $0["hash"])) }
    }
    report.versionsChecked = try catalog.database.read { db in
      try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM block_version") ?? 0
    }
    let committed = try catalog.database.read { db in
      try Row.fetchAll(db, sql: "SELECT id, committed_size FROM pack").reduce(into: [String: UInt64]()) {
        $0[$1["id"]] = UInt64($1["committed_size"] as Int64)
      }
    }
    var packSizes: [String: UInt64] = [:]
    for file in try backend.list() {
      packSizes[file.pack] = file.size
      if let size = committed[file.pack] {
        if file.size > size { report.orphanBytes += file.size - size }
      } else {
        report.orphanBytes += file.size
      }
    }
    report.chunksChecked = chunks.count

    func affected(_ chunk: Int64) throws -> [String] {
      try catalog.database.read { db in
        try Row.fetchAll(
          db,
          sql: """
            SELECT n.volume_id, v.block, MIN(v.seq) AS first, MAX(v.seq) AS last
            FROM block_version v JOIN volume_number n ON n.number = v.volume
            WHERE v.chunk_id = ?
            GROUP BY n.volume_id, v.block ORDER BY n.volume_id, v.block
            """, arguments: [chunk]
        ).map { row in
          let block = UInt64(row["block"] as Int64)
          let blockSize = storeBlockSizes[row["volume_id"] as String] ?? UInt64(VolumeDescriptor.legacyStoreBlockSize)
          let start = block * blockSize
          let volume = volumes[row["volume_id"] as String] ?? (row["volume_id"] as String)
          let first = Seq(row["first"] as Int64)
          let times = try Row.fetchOne(
            db,
            sql: """
              SELECT time_ns AS a FROM record_time
              WHERE volume = \(Catalog.volumeNumber) AND seq >= ? ORDER BY seq LIMIT 1
              """,
            arguments: [row["volume_id"] as String, Int64(first)])
          let from = (times?["a"] as Int64?).map { Timestamp(nanoseconds: $0).rfc3339 } ?? "creation"
          return
            "volume \(volume) bytes \(start)..<\(start + blockSize) from seq \(first) (\(from)) on; the newest version using it is seq \(row["last"] as Int64)"
        }
      }
    }

    for (row, key) in lost {
      report.problems.append(
        StoreProblem(message: "chunk \(key) has no stored record", affects: try affected(row), chunkRow: row))
    }
    let dangling = try catalog.database.read { db in
      try Row.fetchAll(
        db,
        sql: """
          SELECT n.volume_id, v.block, v.seq, v.chunk_id FROM block_version v JOIN volume_number n ON n.number = v.volume
          WHERE v.chunk_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM chunk c WHERE c.id = v.chunk_id)
          LIMIT 100
          """)
    }
    for row in dangling {
      let volume = volumes[row["volume_id"] as String] ?? (row["volume_id"] as String)
      report.problems.append(
        StoreProblem(
          message:
            "volume \(volume) block \(row["block"] as Int64) seq \(row["seq"] as Int64) refers to chunk id \(row["chunk_id"] as Int64), which the catalog does not have",
          affects: ["volume \(volume) store block \(row["block"] as Int64) from seq \(row["seq"] as Int64)"]))
    }
    // A delta whose base row is gone cannot be read: its record names the base, and the
    // catalog no longer knows where that is.
    let baseless = try catalog.database.read { db in
      try Row.fetchAll(
        db,
        sql: """
          SELECT c.id, nullif(lower(hex(c.digest)), '') AS hash, c.base_id FROM chunk c
          WHERE c.base_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM chunk b WHERE b.id = c.base_id)
          LIMIT 100
          """)
    }
    for row in baseless {
      let chunk = row["id"] as Int64
      report.problems.append(
        StoreProblem(
          message:
            "chunk \(Catalog.chunkKey(row: chunk, hash: row["hash"])) is stored as a delta of chunk id \(row["base_id"] as Int64), which the catalog does not have",
          affects: try affected(chunk), chunkRow: chunk))
    }
    // Rows in pack order: two writers that each trusted a stale end of the same pack
    // leave records that overlap, or rows past what was committed.
    var previous: (chunk: Int64, key: ChunkKey, location: ChunkLocation)?
    for (chunk, (key, location)) in chunks.sorted(by: {
      ($0.value.location.pack, $0.value.location.offset) < ($1.value.location.pack, $1.value.location.offset)
    }) {
      defer { previous = (chunk, key, location) }
      let end = location.offset + UInt64(location.length)
      guard let fileSize = packSizes[location.pack] else {
        report.problems.append(
          StoreProblem(
            message: "chunk \(key): its pack \(location.pack) is missing", affects: try affected(chunk),
            chunkRow: chunk))
        continue
      }
      let committedSize = committed[location.pack] ?? 0
      guard end <= committedSize else {
        report.problems.append(
          StoreProblem(
            message:
              "chunk \(key): its record at bytes \(location.offset)..<\(end) of pack \(location.pack) runs past the committed end of the pack (\(committedSize) bytes)",
            affects: try affected(chunk), chunkRow: chunk))
        continue
      }
      guard end <= fileSize else {
        report.problems.append(
          StoreProblem(
            message:
              "chunk \(key): its pack \(location.pack) is cut short (\(fileSize) bytes, the record ends at \(end))",
            affects: try affected(chunk), chunkRow: chunk))
        continue
      }
      // Reading the data tells which of two overlapping records is intact.
      // The chunks of one compression group share its place.
      if !readData, let previous, previous.location.pack == location.pack,
        previous.location.offset + UInt64(previous.location.length) > location.offset,
        previous.location.group == nil || previous.location.group != location.group
          || previous.location.length != location.length
      {
        report.problems.append(
          StoreProblem(
            message:
              "chunk \(key): its record at bytes \(location.offset)..<\(end) of pack \(location.pack) overlaps chunk \(previous.key) (bytes \(previous.location.offset)..<\(previous.location.offset + UInt64(previous.location.length)))",
            affects: try affected(chunk) + affected(previous.chunk)))
        continue
      }
      if readData {
        report.chunksRead += 1
        do {
          _ = try self.chunk(key, at: location, verify: true)
        } catch let error as ReelError {
          report.problems.append(StoreProblem(message: error.message, affects: try affected(chunk), chunkRow: chunk))
        }
      }
    }
    let pending = Dictionary(try pendingVolumes(), uniquingKeysWith: { first, _ in first })
    let present = store.volumesByID()
    for (volumeID, name) in volumes {
      if present[volumeID] == nil, let operation = pending[volumeID] {
        report.interruptedVolumes.append("\(operation) of volume \(name)")
        continue
      }
      guard let descriptor = try? store.layout.descriptor(of: name) else {
        report.problems.append(
          StoreProblem(message: "volume \(name) is in the catalog but its folder is missing", affects: []))
        continue
      }
      let ingested = try catalog.database.read { db in
        try Int64.fetchOne(db, sql: "SELECT ingested_seq FROM ingest_state WHERE volume_id = ?", arguments: [volumeID])
      }
      if let ingested, ingested > 0,
        let reader = try? JournalReader(directory: store.layout.journalDirectory(name), volume: descriptor.id),
        let lastSegment = reader.segments.last, let summary = lastSegment.summary, summary.lastSeq < Seq(ingested)
      {
        report.problems.append(
          StoreProblem(
            message:
              "volume \(name): the store holds history up to seq \(ingested) but the journal ends at seq \(summary.lastSeq)",
            affects: ["volume \(name) seq \(summary.lastSeq + 1)…\(ingested)"]))
      }
    }
    report.problems += try cloneLinkProblems(present: present, pending: Set(pending.keys))
    if readData && report.isClean && markVerified {
      // Every chunk re-hashed: history imported from archives without that check is now verified.
      report.archivesVerified = try catalog.database.write { db in
        try db.execute(
          sql: "UPDATE sealed_archive SET verified_ns = ? WHERE verified_ns IS NULL",
          arguments: [Timestamp.now().nanoseconds])
        return db.changesCount
      }
    }
    return report
  }

  /// Every clone's origin must exist and still hold the clone point.
  private func cloneLinkProblems(present: [String: VolumeDescriptor], pending: Set<String>) throws -> [StoreProblem] {
    var problems: [StoreProblem] = []
    let links = try catalog.database.read { db in
      try Row.fetchAll(db, sql: "SELECT volume_id, origin_volume_id, origin_seq FROM volume_origin")
    }
    for link in links {
      let cloneID: String = link["volume_id"]
      let originID: String = link["origin_volume_id"]
      let seq = Seq(link["origin_seq"] as Int64)
      guard let clone = present[cloneID] else { continue }  // pending clone: settled by the next sweep
      guard let origin = present[originID] else {
        problems.append(
          StoreProblem(
            message:
              "volume \(clone.name) is a clone of volume id \(originID) at seq \(seq), which is not in the store\(pending.contains(originID) ? " (its delete was interrupted)" : "")",
            affects: ["volume \(clone.name): every block it has not written since seq \(seq)"]))
        continue
      }
      let ingested = try historyBounds(of: origin).ingested
      if seq > ingested {
        problems.append(
          StoreProblem(
            message:
              "volume \(clone.name) is a clone of \(origin.name) at seq \(seq), but the store holds \(origin.name)'s history only up to seq \(ingested)",
            affects: ["volume \(clone.name): every block it has not written since seq \(seq)"]))
      }
    }
    return problems
  }
}
