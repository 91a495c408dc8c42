import GRDB
import ReelCore

/// The live store's unit of history: the state of one store block from one seq on.
/// A full version replaces the whole block; a partial one overlays `start..<start+length`
/// on the version before it. A version with no chunk (`key == nil`) means zeros.
struct BlockVersion: Equatable {
  var block: UInt64
  var seq: Seq
  var full: Bool
  /// The chunk's SHA-256 name, when known: always for versions ingest makes, and for
  /// versions read from the catalog when it keeps the name (not for unnamed chunks).
  var chunk: String?
  var start: Int
  var length: Int
  /// Where the chunk is stored; filled in when read from the catalog.
  var location: ChunkLocation? = nil
  /// The chunk's catalog row, when read from the catalog.
  var chunkRow: Int64? = nil
  /// When the chunk is a delta record, the chunks it is made from, nearest first (up to
  /// two, as ingest writes them), when read from the catalog: read ahead with it.
  var deltaBases: [StoredChunk] = []

  /// How reads find and check the chunk; nil: zeros.
  var key: ChunkKey? { chunk.map { .named($0) } ?? chunkRow.map { .unnamed(row: $0) } }

  /// This version pointing at a stored chunk (or at zeros for nil).
  func storing(_ stored: (key: String, location: ChunkLocation)?) -> BlockVersion {
    var version = self
    version.chunk = stored?.key
    version.location = stored?.location
    version.chunkRow = nil
    version.deltaBases = []
    return version
  }
}

/// A named chunk and where its record is.
struct StoredChunk: Equatable, Sendable {
  var name: String
  var location: ChunkLocation
}

/// Fixed parameters of the live store (docs/store-format.md). The store block size is
/// per volume: `VolumeDescriptor.storeBlockSize`.
package enum LiveStoreFormat {
  /// At most this many partial versions follow a full one; the next partial write to the
  /// block writes a full version instead, so reading any block at any point touches at
  /// most `maxPartials + 1` versions however long the history is.
  package static let maxPartials = 16

  /// The chunks a consolidated block may be stored as a delta of, the preferred first,
  /// each with the most stored bytes its delta may take; `lineage` is the block's previous
  /// full chunk followed by the bases it is a delta of (docs/store-format.md,
  /// "Consolidations as deltas"). A delta of the previous full chunk while that one is a
  /// full record or a first-level delta, capped at 1/64 of the block; else a first-level
  /// delta of the full record at the root, capped at 1/8: chains stay at most two deltas
  /// deep, and a block whose changes outgrow both caps is stored whole again.
  static func deltaCandidates(lineage: [DeltaBase], blockLength: Int) -> [(base: DeltaBase, limit: Int)] {
    let depth = lineage.count - 1
    let near = blockLength / 64
    let far = blockLength / 8
    switch depth {
    case ..<0: return []
    case 0: return [(lineage[0], far)]
    default: return [(lineage[depth - 1], near), (lineage[depth], far)]
    }
  }
}

extension Catalog {
  /// The versions needed to rebuild `block` as of `seq`: the newest full version at or
  /// before it and the partial versions after that, oldest first. For a clone, when the
  /// clone's own versions hold no full one, the chain falls through to its origin as of
  /// the clone point (recursively), and the clone's partials go on top. Every read of a
  /// block's state in the store comes through here.
  static func versionChain(_ db: Database, lineage: VolumeLineage, block: UInt64, atOrBefore seq: Seq) throws
    -> [BlockVersion]
  {
    var chain: [BlockVersion] = []  // newest first
    var bound = seq
    for level in lineage.levels {
      let (versions, complete) = try ownVersions(
        db, volume: level.volumeID, block: block, atOrBefore: bound, alreadyHave: chain.count)
      chain += versions
      guard !complete, let originSeq = level.originSeq else { break }
      bound = min(bound, originSeq)
    }
    return chain.reversed()
  }

  /// One volume's own versions of `block` at or before `seq`, newest first, down to the
  /// newest full one; `complete` says whether a full version ended it.
  private static func ownVersions(
    _ db: Database, volume: String, block: UInt64, atOrBefore seq: Seq, alreadyHave: Int
  ) throws -> (versions: [BlockVersion], complete: Bool) {
    // Cached: this runs once per block read, and parsing the SQL each time showed in profiles.
    let statement = try db.cachedStatement(
      sql: """
        SELECT v.seq, v.full, nullif(lower(hex(c.digest)), ''), v.start, v.length, p.id, c.offset, c.length AS stored, v.chunk_id, c.id,
          lower(hex(b1.digest)), p1.id, b1.offset, b1.length, lower(hex(b2.digest)), p2.id, b2.offset, b2.length,
          c.record_offset, b1.record_offset, b2.record_offset
        FROM block_version v LEFT JOIN chunk c ON c.id = v.chunk_id LEFT JOIN pack p ON p.number = c.pack_number
          LEFT JOIN chunk b1 ON b1.id = c.base_id LEFT JOIN pack p1 ON p1.number = b1.pack_number
          LEFT JOIN chunk b2 ON b2.id = b1.base_id LEFT JOIN pack p2 ON p2.number = b2.pack_number
        WHERE v.volume = \(volumeNumber) AND v.block = ? AND v.seq <= ? ORDER BY v.seq DESC LIMIT ?
        """)
    let limit = max(1, LiveStoreFormat.maxPartials + 1 - alreadyHave)
    var rows = try Row.fetchAll(statement, arguments: [volume, Int64(block), Int64(seq), limit])
    if rows.count == limit, !rows.contains(where: { $0[1] as Int64 != 0 }) {
      // Longer than the bound: ingest could not consolidate the block because a chunk of
      // its chain is damaged, and kept the new write as one more partial version (or a
      // clone's partials continue its origin's).
      rows = try Row.fetchAll(statement, arguments: [volume, Int64(block), Int64(seq), Int64.max])
    }
    var versions: [BlockVersion] = []
    for row in rows {
      // By column index: looking columns up by name lower-cased each name, every row.
      if row[9] as Int64? == nil, let chunkID = row[8] as Int64? {
        throw ReelError(
          .corrupt,
          "store block \(block) at seq \(row[0] as Int64) refers to chunk id \(chunkID), which the catalog does not have",
          remedy: "run `reel store check` to see what it affects")
      }
      var version = BlockVersion(
        block: block, seq: Seq(row[0] as Int64), full: row[1] as Int64 != 0, chunk: row[2],
        start: Int(row[3] as Int64), length: Int(row[4] as Int64),
        location: (row[5] as String?).map {
          ChunkLocation(
            pack: $0, offset: UInt64(row[6] as Int64), length: Int(row[7] as Int64),
            recordOffset: (row[18] as Int64?).map { Int($0) })
        }, chunkRow: row[8])
      for (column, recordOffsetColumn) in [(10, 19), (14, 20)] {
        guard let name = row[column] as String?, let pack = row[column + 1] as String? else { break }
        version.deltaBases.append(
          StoredChunk(
            name: name,
            location: ChunkLocation(
              pack: pack, offset: UInt64(row[column + 2] as Int64), length: Int(row[column + 3] as Int64),
              recordOffset: (row[recordOffsetColumn] as Int64?).map { Int($0) })))
      }
      versions.append(version)
      if version.full { return (versions, true) }
    }
    return (versions, false)
  }

  /// The volume must have its number (`numberVolume`) and the chunk its row;
  /// `knownChunkIDs` holds the rows of chunks the caller just inserted, which for unnamed
  /// ones is the only way to find them.
  static func insert(
    _ version: BlockVersion, volume: String, knownChunkIDs: [String: Int64] = [:], _ db: Database
  ) throws {
    let chunkRow =
      try version.chunkRow ?? version.chunk.map { try knownChunkIDs[$0] ?? Catalog.chunkID(db, hash: $0) }
    try db.cachedStatement(
      sql: """
        INSERT OR REPLACE INTO block_version (volume, block, seq, full, chunk_id, start, length)
        VALUES (\(volumeNumber), ?, ?, ?, ?, ?, ?)
        """
    ).execute(
      arguments: [
        volume, Int64(version.block), Int64(version.seq), version.full ? 1 : 0, chunkRow, version.start,
        version.length,
      ])
  }
}
