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

  /// How reads find and check the chunk; nil: zeros.
  var key: ChunkKey? { chunk.map { .named($0) } ?? chunkRow.map { .unnamed(row: $0) } }

  /// This version pointing at a stored chunk (or at zeros for nil).
  func storing(_ stored: (key: String, location: ChunkLocation)?) -> BlockVersion {
    var version = self
    version.chunk = stored?.key
    version.location = stored?.location
    version.chunkRow = nil
    return version
  }
}

/// Fixed parameters of the live store (docs/store-format.md). The store block size is
/// per volume: `VolumeDescriptor.storeBlockSize`.
package enum LiveStoreFormat {
  /// At most this many partial versions follow a full one; the next partial write to the
  /// block writes a full version instead, so reading any block at any point touches at
  /// most `maxPartials + 1` versions however long the history is.
  package static let maxPartials = 16
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
        SELECT v.seq, v.full, nullif(lower(hex(c.digest)), ''), v.start, v.length, p.id, c.offset, c.length AS stored, v.chunk_id, c.id
        FROM block_version v LEFT JOIN chunk c ON c.id = v.chunk_id LEFT JOIN pack p ON p.number = c.pack_number
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
      let version = BlockVersion(
        block: block, seq: Seq(row[0] as Int64), full: row[1] as Int64 != 0, chunk: row[2],
        start: Int(row[3] as Int64), length: Int(row[4] as Int64),
        location: (row[5] as String?).map {
          ChunkLocation(pack: $0, offset: UInt64(row[6] as Int64), length: Int(row[7] as Int64))
        }, chunkRow: row[8])
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
