import Foundation
import GRDB
import ReelCore

/// What promoting a clone wrote.
package struct ClonePromotion: Sendable, Equatable {
  /// The link that was removed.
  package var origin: VolumeOrigin
  /// Blocks the clone still read from its origin and now holds itself (at the clone point).
  package var blocks = 0
  /// Of those, blocks whose origin state was one stored chunk, now shared.
  package var chunksShared = 0
  /// Blocks rebuilt from a chain of versions and stored as new chunks.
  package var chunksStored = 0
  package var storedBytes: UInt64 = 0
}

extension LiveStore {
  /// Makes a clone independent of its origin: every block whose state the clone still
  /// reads from its origin gets a full version of its own at the clone point — the
  /// origin's chunk when that state is one full version, else the block rebuilt and stored
  /// as a new chunk — and the clone link is deleted, all in one catalog transaction after
  /// the packs are synced. Killed before the commit, nothing changed (the next writer cuts
  /// the packs back). Catch the clone's ingest up first.
  package func promote(_ descriptor: VolumeDescriptor) throws -> ClonePromotion {
    let volumeID = descriptor.id.description
    return try withStoreLock {
      guard let origin = try self.origin(of: descriptor) else {
        throw ReelError(
          .usage, "volume \(descriptor.name) is not a clone: it reads nothing from another volume",
          remedy: "`reel volume list` shows which volumes are clones")
      }
      var result = ClonePromotion(origin: origin)
      try recoverPacks()
      let blockSize = UInt64(descriptor.storeBlockSize)
      let blockCount = (descriptor.size + blockSize - 1) / blockSize
      // A block reads its origin at every retained point before its first own full
      // version; only blocks fully rewritten at or before the oldest retained point never do.
      let selfContained = try catalog.database.read { db in
        let retained =
          try Int64.fetchOne(
            db, sql: "SELECT retained_from_seq FROM ingest_state WHERE volume_id = ?", arguments: [volumeID]) ?? 0
        return try Set(
          Int64.fetchAll(
            db,
            sql:
              "SELECT DISTINCT block FROM block_version WHERE volume = \(Catalog.volumeNumber) AND full = 1 AND seq <= ?",
            arguments: [volumeID, retained]
          ).map { UInt64($0) })
      }
      var originLineage = try catalog.database.read { db in try Catalog.lineage(db, of: volumeID) }
      originLineage.levels.removeFirst()
      let packs = PackAppender(live: self)
      let encoder = ChunkEncoder(workers: workers)
      defer { encoder.shutdown() }
      var versions: [BlockVersion] = []
      var newChunks: [String: (location: ChunkLocation, size: Int)] = [:]
      // Rebuilt blocks wait for the encoder in submission order, a bounded number at a time.
      var rebuilt: [UInt64] = []
      func takeRebuilt(all: Bool) throws {
        while !rebuilt.isEmpty && (all || encoder.bytesInFlight > 32 << 20) {
          for encoded in encoder.takeReady(limit: rebuilt.count) {
            let block = rebuilt.removeFirst()
            let length = Int(min(blockSize, descriptor.size - block * blockSize))
            var version = BlockVersion(
              block: block, seq: origin.originSeq, full: true, chunk: nil, start: 0, length: length)
            switch encoded {
            case .zeros: continue
            case .known(let key, let location): version = version.storing((key, location))
            // Promotion submits no delta candidates: its records are all whole.
            case .new(let key, let record, let size, _):
              let location =
                try catalog.database.read { db in try Catalog.chunkLocations(db, [key])[key] }
                ?? newChunks[key]?.location
              if let location {
                version = version.storing((key, location))
              } else {
                let stored = try packs.append(record)
                newChunks[key] = (stored, size)
                encoder.remember(key, at: stored)
                version = version.storing((key, stored))
                result.chunksStored += 1
                result.storedBytes += UInt64(record.count)
              }
            }
            versions.append(version)
            result.blocks += 1
          }
        }
      }
      let step: UInt64 = 256
      var first: UInt64 = 0
      while first < blockCount {
        let range = first..<min(first + step, blockCount)
        first = range.upperBound
        let chains = try catalog.database.read { db in
          try range.filter { !selfContained.contains($0) }.map {
            ($0, try Catalog.versionChain(db, lineage: originLineage, block: $0, atOrBefore: origin.originSeq))
          }
        }
        for (block, chain) in chains where chain.contains(where: { $0.key != nil }) {
          let length = Int(min(blockSize, descriptor.size - block * blockSize))
          if chain.count == 1, chain[0].full, chain[0].key != nil {
            versions.append(
              BlockVersion(
                block: block, seq: origin.originSeq, full: true, chunk: chain[0].chunk, start: 0, length: length,
                chunkRow: chain[0].chunkRow))
            result.blocks += 1
            result.chunksShared += 1
            continue
          }
          encoder.submit(try assemble(chain, length: length)[...])
          rebuilt.append(block)
          try takeRebuilt(all: false)
        }
      }
      try takeRebuilt(all: true)
      let packSizes = try packs.makeDurable()
      try catalog.database.write { db in
        try Catalog.insertHistory(
          db, volume: volumeID, versions: versions, records: [], bookmarks: [], newChunks: newChunks,
          packSizes: packSizes)
        try db.execute(sql: "DELETE FROM volume_origin WHERE volume_id = ?", arguments: [volumeID])
      }
      return result
    }
  }
}
