import Foundation
import GRDB
import ReelCodec
import ReelCore
import ReelJournal

package struct PruneReport: Sendable, Equatable {
  package var volume: String
  /// History is kept from this seq on (plus kept bookmarks); 0 when nothing was pruned.
  package var retainedFromSeq: Seq
  package var versionsDeleted = 0
  package var bookmarksKept = 0
  package var chunksDeleted = 0
  package var bytesFreed: UInt64 = 0
  /// Journal segments stay until they are sealed into an archive.
  package var journalSegmentsKept = 0
  /// Set when the volume's lazy live image reads this seq from the store, which held the
  /// cut back to it.
  package var keptForLiveImage: Seq?
  /// Points older than the cut kept because a clone reads the volume there.
  package var keptForClones: [KeptClonePoint] = []
}

/// A point of a volume that prune keeps because a clone was made there.
package struct KeptClonePoint: Sendable, Equatable, Codable {
  package var seq: Seq
  package var clone: String

  package init(seq: Seq, clone: String) {
    self.seq = seq
    self.clone = clone
  }
}

extension LiveStore {
  /// Drops the volume's history older than `keepWithin` (keeping bookmarks with
  /// `keepBookmarks`) and frees chunks nothing references any more. Chunk files that no
  /// catalog row names are deleted only once older than `safetyMargin`.
  package func prune(
    volume name: String, keepWithin: Duration, keepBookmarks: Bool, safetyMargin: Duration = .seconds(3600),
    now: Timestamp = .now()
  ) throws -> PruneReport {
    let descriptor = try store.layout.descriptor(of: name)
    let volumeID = descriptor.id.description
    try ingest(volume: name)
    return try withStoreLock {
      try sweepAbandonedVolumes()
      // Read under the lock: clone creation takes it too, so no clone point is missed.
      let dependants = try clones(of: descriptor)
      var report = PruneReport(volume: name, retainedFromSeq: 0)
      let cutoff = now.nanoseconds - keepWithin.nanoseconds
      let liveImageSeq = LiveImageBacking.seq(of: name, layout: store.layout)
      try catalog.database.write { db in
        guard
          var cut = try Catalog.lastRecord(db, volume: volumeID, atOrBefore: cutoff)?.seq
        else { return }
        let retained =
          try Int64.fetchOne(
            db, sql: "SELECT retained_from_seq FROM ingest_state WHERE volume_id = ?", arguments: [volumeID]) ?? 0
        if let liveImageSeq, Int64(liveImageSeq) < cut {
          cut = Int64(liveImageSeq)
          report.keptForLiveImage = liveImageSeq
        }
        guard cut > retained else {
          report.retainedFromSeq = Seq(retained)
          return
        }
        var keptPoints = [Seq(cut)]
        if keepBookmarks {
          let kept = try Int64.fetchAll(
            db, sql: "SELECT seq FROM bookmark WHERE volume_id = ? AND seq < ?", arguments: [volumeID, cut])
          keptPoints += kept.map { Seq($0) }
          report.bookmarksKept = kept.count
        }
        // A clone reads this volume as of its clone point for every block it has not
        // written: those chains stay whatever the cut.
        for (clone, origin) in dependants where origin.originSeq < Seq(cut) {
          keptPoints.append(origin.originSeq)
          report.keptForClones.append(KeptClonePoint(seq: origin.originSeq, clone: clone.name))
        }
        let lineage = try Catalog.lineage(db, of: volumeID)
        let blocks = try Int64.fetchAll(
          db, sql: "SELECT DISTINCT block FROM block_version WHERE volume = \(Catalog.volumeNumber) AND seq < ?",
          arguments: [volumeID, cut])
        for block in blocks {
          var needed = Set<Int64>()
          for point in keptPoints {
            for version in try Catalog.versionChain(db, lineage: lineage, block: UInt64(block), atOrBefore: point) {
              needed.insert(Int64(version.seq))
            }
          }
          let old = try Int64.fetchAll(
            db, sql: "SELECT seq FROM block_version WHERE volume = \(Catalog.volumeNumber) AND block = ? AND seq < ?",
            arguments: [volumeID, block, cut])
          for seq in old where !needed.contains(seq) {
            try db.execute(
              sql: "DELETE FROM block_version WHERE volume = \(Catalog.volumeNumber) AND block = ? AND seq = ?",
              arguments: [volumeID, block, seq])
            report.versionsDeleted += 1
          }
        }
        let keptBookmarkSeqs = keepBookmarks ? "(SELECT seq FROM bookmark WHERE volume_id = ?1)" : "(SELECT -1)"
        // A clone point keeps its time too: a clone's archives and messages name it.
        try db.execute(
          sql: """
            DELETE FROM record_time
            WHERE volume = (SELECT number FROM volume_number WHERE volume_id = ?1) AND seq < ?2
              AND seq NOT IN \(keptBookmarkSeqs)
              AND seq NOT IN (SELECT origin_seq FROM volume_origin WHERE origin_volume_id = ?1)
            """,
          arguments: [volumeID, cut])
        if !keepBookmarks {
          try db.execute(sql: "DELETE FROM bookmark WHERE volume_id = ? AND seq < ?", arguments: [volumeID, cut])
        }
        try db.execute(
          sql: "UPDATE ingest_state SET retained_from_seq = ? WHERE volume_id = ?", arguments: [cut, volumeID])
        report.retainedFromSeq = Seq(cut)
      }
      let swept = try sweepChunks(safetyMargin: safetyMargin, now: now)
      report.chunksDeleted = swept.count
      report.bytesFreed = swept.bytes
      report.journalSegmentsKept =
        (try? JournalReader(directory: store.layout.journalDirectory(name), volume: descriptor.id).segments.count) ?? 0
      return report
    }
  }

  /// Mark and sweep: chunk rows nothing references are deleted in one transaction;
  /// then packs holding no live chunk are deleted, and packs less than half live are
  /// repacked (live chunks copied to the newest pack, rows moved, old pack deleted).
  /// Pack files the catalog does not know are deleted once older than the margin. Runs
  /// under the store lock, so no ingest can pick up a chunk between mark and sweep.
  package func sweepChunks(safetyMargin: Duration, now: Timestamp) throws -> (count: Int, bytes: UInt64) {
    try recoverPacks()
    let deleted = try catalog.database.write { db -> Int in
      // A chunk lives while a version uses it or a living delta is made from it; deleting
      // a delta can free its base, so the sweep repeats until nothing more goes.
      var deleted = 0
      repeat {
        try db.execute(
          sql: """
            DELETE FROM chunk
            WHERE id NOT IN (SELECT chunk_id FROM block_version WHERE chunk_id IS NOT NULL)
              AND id NOT IN (SELECT base_id FROM chunk WHERE base_id IS NOT NULL)
            """)
        deleted += db.changesCount
      } while db.changesCount > 0
      return deleted
    }
    var freed: UInt64 = 0
    // By scans, not per pack: the catalog keeps no index of chunks by pack (schema v9).
    let packs = try catalog.database.read { db in
      let packRows = try Row.fetchAll(db, sql: "SELECT number, id, committed_size FROM pack")
      let ids = packRows.reduce(into: [Int64: String]()) { $0[$1["number"]] = $1["id"] }
      var live = try Row.fetchAll(
        db,
        sql: """
          SELECT pack_number, SUM(length) AS live FROM chunk WHERE pack_number IS NOT NULL AND record_offset IS NULL
          GROUP BY pack_number
          """
      ).reduce(into: [Int64: UInt64]()) { $0[$1["pack_number"]] = UInt64($1["live"] as Int64) }
      // A compression group counts for the share of its content still used.
      for row in try Row.fetchAll(
        db,
        sql: """
          SELECT pack_number, offset, MAX(length) AS length, SUM(\(ChunkRecordHeader.size) + size) AS content FROM chunk
          WHERE pack_number IS NOT NULL AND record_offset IS NOT NULL GROUP BY pack_number, offset
          """)
      {
        let number: Int64 = row["pack_number"]
        let length = UInt64(row["length"] as Int64)
        var share = length
        if let pack = ids[number],
          let content = try? groupHeader(
            ChunkLocation(pack: pack, offset: UInt64(row["offset"] as Int64), length: Int(length))
          ).contentLength,
          content > 0
        {
          share = length * min(UInt64(row["content"] as Int64), UInt64(content)) / UInt64(content)
        }
        live[number, default: 0] += share
      }
      return packRows.map {
        (
          number: $0["number"] as Int64, id: $0["id"] as String, committed: UInt64($0["committed_size"] as Int64),
          live: live[$0["number"]] ?? 0
        )
      }
    }
    let swept = packs.filter { $0.live == 0 || $0.live < $0.committed / 2 }
    let moving = try liveChunks(inPacks: swept.filter { $0.live > 0 }.map(\.number))
    let appender = PackAppender(live: self, reuseNewest: false)
    for (number, pack, committed, _) in swept {
      var written: UInt64 = 0
      if let chunks = moving[number] {
        var moved: [(Int64, ChunkLocation)] = []
        var groupsMoved: [UInt64: ChunkLocation] = [:]
        var liveInGroup: [UInt64: Int] = [:]
        var codec: ChunkCodec?
        for row in chunks where row["record_offset"] as Int64? != nil {
          liveInGroup[UInt64(row["offset"] as Int64), default: 0] += ChunkRecordHeader.size + (row["size"] as Int)
        }
        for row in chunks {
          let location = ChunkLocation(row)
          let key = Catalog.chunkKey(row: row["id"], hash: row["hash"])
          if let recordOffset = location.recordOffset {
            moved.append(
              (
                row["id"],
                try moveGroupMember(
                  key, at: location, recordOffset: recordOffset, liveContent: liveInGroup[location.offset] ?? 0,
                  to: appender, moved: &groupsMoved, codec: &codec)
              ))
            continue
          }
          let record = try backend.read(pack, offset: location.offset, length: location.length)
          // A delta record is checked (header, checksum, name) but not decoded: its base
          // may be one of the chunks this repack moves.
          if try record.withUnsafeBytes({ try ChunkCodec.deltaBase($0, key: key) }) == nil {
            _ = try ChunkCodec.decode(record, key: key, verify: false)
          }
          moved.append((row["id"], try appender.append(record)))
        }
        let sizes = try appender.makeDurable()
        // A group's chunks share the place it was copied to.
        written = Set(moved.map { ChunkLocation(pack: $0.1.pack, offset: $0.1.offset, length: $0.1.length) })
          .reduce(0) { $0 + UInt64($1.length) }
        try catalog.database.write { db in
          for (id, location) in moved {
            try db.execute(
              sql: "UPDATE chunk SET pack_number = ?, offset = ?, length = ?, record_offset = ? WHERE id = ?",
              arguments: [
                try Catalog.packNumber(db, location.pack), Int64(location.offset), location.length,
                location.recordOffset.map { Int64($0) }, id,
              ])
          }
          for (id, size) in sizes {
            try db.execute(sql: "UPDATE pack SET committed_size = ? WHERE id = ?", arguments: [Int64(size), id])
          }
        }
      }
      try catalog.database.write { db in
        try db.execute(sql: "DELETE FROM pack WHERE id = ?", arguments: [pack])
      }
      try backend.delete(pack)
      freed += committed - min(committed, written)
    }
    let known = try catalog.database.read { db in try String.fetchSet(db, sql: "SELECT id FROM pack") }
    let oldest = now.nanoseconds - safetyMargin.nanoseconds
    for file in try backend.list() where !known.contains(file.pack) && file.modified.nanoseconds < oldest {
      try backend.delete(file.pack)
      freed += file.size
    }
    return (deleted, freed)
  }

  /// The chunk rows in each of `packs` (by number), in pack order: one pass over the chunk
  /// table for every 500 packs.
  private func liveChunks(inPacks packs: [Int64]) throws -> [Int64: [Row]] {
    try catalog.database.read { db in
      try Catalog.fetchAll(db, in: packs) {
        """
        SELECT c.id, nullif(lower(hex(c.digest)), '') AS hash, c.pack_number, p.id AS pack, c.offset, c.length,
          c.record_offset, c.size
        FROM chunk c JOIN pack p ON p.number = c.pack_number
        WHERE c.pack_number IN (\($0)) ORDER BY c.pack_number, c.offset
        """
      }.reduce(into: [:]) { $0[$1["pack_number"], default: []].append($1) }
    }
  }

  /// Where a repack puts a chunk of a compression group: the whole group is copied once
  /// when at least half its content is still used, else the chunk is stored alone
  /// (compressed as ingest stores it) and the group's dead content is dropped.
  private func moveGroupMember(
    _ key: ChunkKey, at location: ChunkLocation, recordOffset: Int, liveContent: Int, to appender: PackAppender,
    moved: inout [UInt64: ChunkLocation], codec: inout ChunkCodec?
  ) throws -> ChunkLocation {
    if var copied = moved[location.offset] {
      copied.recordOffset = recordOffset
      return copied
    }
    let group = try group(at: location)
    if liveContent * 2 >= group.count && group.damage == nil {
      let container = try backend.read(location.pack, offset: location.offset, length: location.length)
      var copied = try appender.append(container)
      moved[location.offset] = copied
      copied.recordOffset = recordOffset
      return copied
    }
    let record = try group.record(at: recordOffset, key: key, what: location.group!.description)
    let plaintext = try ChunkCodec.decode(record, key: key, verify: false)
    let name = SHA256Digest(bytes: Array(ChunkRecordHeader.claimedHash(record)))
    codec = codec ?? ChunkCodec()
    return try appender.append(codec!.encode(plaintext, hash: name))
  }
}
