import Foundation
import GRDB
import ReelCore
import ReelJournal

public struct PruneReport: Sendable, Equatable {
  public var volume: String
  /// History is kept from this seq on (plus kept bookmarks); 0 when nothing was pruned.
  public var retainedFromSeq: Seq
  public var versionsDeleted = 0
  public var bookmarksKept = 0
  public var chunksDeleted = 0
  public var bytesFreed: UInt64 = 0
  /// Journal segments stay until they are sealed into an archive.
  public var journalSegmentsKept = 0
}

extension LiveStore {
  /// Drops the volume's history older than `keepWithin` (keeping bookmarks with
  /// `keepBookmarks`) and frees chunks nothing references any more. Chunk files that no
  /// catalog row names are deleted only once older than `safetyMargin`.
  public func prune(
    volume name: String, keepWithin: Duration, keepBookmarks: Bool, safetyMargin: Duration = .seconds(3600),
    now: Timestamp = .now()
  ) throws -> PruneReport {
    let descriptor = try store.layout.descriptor(of: name)
    let volumeID = descriptor.id.description
    try ingest(volume: name)
    return try withStoreLock {
      var report = PruneReport(volume: name, retainedFromSeq: 0)
      let cutoff = now.nanoseconds - Self.nanoseconds(keepWithin)
      try catalog.database.write { db in
        guard
          let cut = try Int64.fetchOne(
            db,
            sql: "SELECT seq FROM record_time WHERE volume_id = ? AND time_ns <= ? ORDER BY time_ns DESC LIMIT 1",
            arguments: [volumeID, cutoff])
        else { return }
        let retained =
          try Int64.fetchOne(
            db, sql: "SELECT retained_from_seq FROM ingest_state WHERE volume_id = ?", arguments: [volumeID]) ?? 0
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
        let blocks = try Int64.fetchAll(
          db, sql: "SELECT DISTINCT block FROM block_version WHERE volume_id = ? AND seq < ?",
          arguments: [volumeID, cut])
        for block in blocks {
          var needed = Set<Int64>()
          for point in keptPoints {
            for version in try Catalog.versionChain(db, volume: volumeID, block: UInt64(block), atOrBefore: point) {
              needed.insert(Int64(version.seq))
            }
          }
          let old = try Int64.fetchAll(
            db, sql: "SELECT seq FROM block_version WHERE volume_id = ? AND block = ? AND seq < ?",
            arguments: [volumeID, block, cut])
          for seq in old where !needed.contains(seq) {
            try db.execute(
              sql: "DELETE FROM block_version WHERE volume_id = ? AND block = ? AND seq = ?",
              arguments: [volumeID, block, seq])
            report.versionsDeleted += 1
          }
        }
        let keptBookmarkSeqs = keepBookmarks ? "(SELECT seq FROM bookmark WHERE volume_id = ?1)" : "(SELECT -1)"
        try db.execute(
          sql: "DELETE FROM record_time WHERE volume_id = ?1 AND seq < ?2 AND seq NOT IN \(keptBookmarkSeqs)",
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

  /// Mark and sweep: catalog rows of unreferenced chunks go in one transaction, then
  /// their files; files without a row go once older than the margin. Runs under the
  /// store lock, so no ingest can pick up a chunk between mark and sweep.
  func sweepChunks(safetyMargin: Duration, now: Timestamp) throws -> (count: Int, bytes: UInt64) {
    let unreferenced = try catalog.database.write { db -> [(String, Int64)] in
      let rows = try Row.fetchAll(
        db,
        sql: """
          SELECT hash, stored_size FROM chunk
          WHERE NOT EXISTS (SELECT 1 FROM block_version WHERE block_version.chunk = chunk.hash)
          """
      ).map { ($0["hash"] as String, $0["stored_size"] as Int64) }
      for (hash, _) in rows { try db.execute(sql: "DELETE FROM chunk WHERE hash = ?", arguments: [hash]) }
      return rows
    }
    var count = 0
    var bytes: UInt64 = 0
    for (hash, size) in unreferenced {
      try backend.delete(hash)
      count += 1
      bytes += UInt64(size)
    }
    let known = try catalog.database.read { db in try String.fetchSet(db, sql: "SELECT hash FROM chunk") }
    let oldest = now.nanoseconds - Self.nanoseconds(safetyMargin)
    for (key, modified) in try backend.list() where !known.contains(key) && modified.nanoseconds < oldest {
      try backend.delete(key)
      count += 1
    }
    return (count, bytes)
  }

  static func nanoseconds(_ duration: Duration) -> Int64 {
    let parts = duration.components
    return parts.seconds * 1_000_000_000 + parts.attoseconds / 1_000_000_000
  }
}
