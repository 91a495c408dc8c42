import Foundation
import GRDB
import ReelCodec
import ReelCore
import ReelIO
import ReelJournal

/// One window of a volume's history arriving from outside the journal (a sealed archive):
/// chunk records go to packs as they come, rows are held until `LiveStore.importHistory`
/// commits them all in one transaction, so a crash leaves the window either absent or whole.
package final class HistoryImport {
  let live: LiveStore
  let packs: PackAppender
  package let descriptor: VolumeDescriptor
  package let fromSeq: Seq
  package let throughSeq: Seq
  var versions: [BlockVersion] = []
  var records: [HistoryRecord] = []
  var bookmarks: [Bookmark] = []
  var rollbacks: [RollbackEvent] = []
  /// The clone link of a clone's first window, recorded with it.
  var origin: VolumeOrigin?
  var newChunks: [String: (location: ChunkLocation, size: Int)] = [:]
  var present: Set<String> = []
  var absent: Set<String> = []
  package private(set) var chunksAdded = 0
  package private(set) var chunksAlreadyStored = 0

  /// `expectedChunkBytes`: about how much chunk content the window brings; a large window
  /// is written into new packs, whole, with direct I/O.
  init(live: LiveStore, descriptor: VolumeDescriptor, fromSeq: Seq, throughSeq: Seq, expectedChunkBytes: UInt64) {
    self.live = live
    self.packs = PackAppender(live: live, wholePacks: expectedChunkBytes >= LiveStore.wholePackImportThreshold)
    self.descriptor = descriptor
    self.fromSeq = fromSeq
    self.throughSeq = throughSeq
  }

  /// Learns in a few queries which of `keys` the store already holds, so adding their
  /// records later needs no query each.
  package func preload(_ keys: [String]) throws {
    let found = Set(try live.catalog.database.read { db in try Catalog.chunkLocations(db, keys) }.keys)
    present.formUnion(found)
    absent.formUnion(Set(keys).subtracting(found))
  }

  /// Adds one stored chunk record (docs/store-format.md); a chunk the store already holds
  /// is skipped. The record's checksum and name are checked first unless the caller
  /// already verified it.
  package func addChunkRecord(_ record: [UInt8], key: String, verified: Bool = false) throws {
    guard newChunks[key] == nil, !(try isStored(key)) else { return }
    let size = verified ? ChunkCodec.plaintextLength(record) : try ChunkRecordFormat.check(record, key: key)
    // Whatever the caller checked: a delta's base would be looked up in this store.
    if record.count > 4 && record[4] == ChunkRecordHeader.encodingDelta {
      throw ReelError(
        .corrupt, "chunk \(key): an imported record is a delta record (encoding 2); archives carry whole records")
    }
    newChunks[key] = (try packs.append(record), size)
    chunksAdded += 1
  }

  /// Adds one compression group as it is: `frame` is a zstd frame of `contentLength`
  /// bytes of `recordCount` raw chunk records (a version 2 archive's pack frame
  /// plaintext), `members` where each wanted record starts in that content, its plaintext
  /// length and name, all already
  /// checked by the caller. Chunks the store holds are left where they are; the group is
  /// not stored when it brings none.
  package func addGroup(
    frame: UnsafeRawBufferPointer, contentLength: Int, recordCount: Int,
    members: [(key: String, recordOffset: Int, size: Int)]
  ) throws {
    var new: [(key: String, recordOffset: Int, size: Int)] = []
    for member in members where newChunks[member.key] == nil {
      if try isStored(member.key) { continue }
      new.append(member)
    }
    guard !new.isEmpty else { return }
    let location = try packs.append(
      ChunkGroupFormat.container(frame: frame, contentLength: contentLength, recordCount: recordCount))
    for member in new {
      var place = location
      place.recordOffset = member.recordOffset
      newChunks[member.key] = (place, member.size)
      chunksAdded += 1
    }
  }

  /// Whether the store already holds the chunk `key` (counted as such when it does).
  private func isStored(_ key: String) throws -> Bool {
    if present.contains(key) {
      chunksAlreadyStored += 1
      return true
    }
    guard !absent.contains(key) else { return false }
    let exists = try live.catalog.database.read { db in
      try Bool.fetchOne(
        db, sql: "SELECT 1 FROM chunk WHERE digest = reel_digest(?) AND pack_number IS NOT NULL", arguments: [key])
        ?? false
    }
    if exists {
      present.insert(key)
      chunksAlreadyStored += 1
    }
    return exists
  }

  package func add(_ versions: [HistoryVersion]) { self.versions += versions.map(\.blockVersion) }
  package func add(_ records: [HistoryRecord]) { self.records += records }
  package func add(_ bookmarks: [Bookmark]) { self.bookmarks += bookmarks }
  package func add(_ rollbacks: [RollbackEvent]) { self.rollbacks += rollbacks }

  /// New chunks only partial versions use: stored unnamed, as ingest stores them
  /// (docs/store-format.md). Each archive window carries every chunk its versions use, so
  /// no later import needs to find them by name.
  var partialOnlyChunks: Set<String> {
    var partial: Set<String> = []
    var full: Set<String> = []
    for version in versions {
      guard let chunk = version.chunk, newChunks[chunk] != nil else { continue }
      if version.full { full.insert(chunk) } else { partial.insert(chunk) }
    }
    return partial.subtracting(full)
  }

  /// Makes the volume a clone of `origin` (its first window, which holds only the clone's
  /// own versions); the link commits with the window.
  package func link(to origin: VolumeOrigin) { self.origin = origin }
}

extension LiveStore {
  /// Imports the window `fromSeq <.. throughSeq` of a volume. `startsChain`: the window
  /// carries the volume's whole state as of `fromSeq` (history before it is not kept);
  /// otherwise the store must already hold history up to `fromSeq`. `expectedChunkBytes`:
  /// about how much chunk content the window brings (it chooses how packs are written).
  /// Importing a window the store already holds changes nothing and returns false.
  @discardableResult
  package func importHistory(
    _ descriptor: VolumeDescriptor, fromSeq: Seq, throughSeq: Seq, startsChain: Bool, expectedChunkBytes: UInt64 = 0,
    _ fill: (HistoryImport) throws -> Void
  ) throws -> Bool {
    try adopt(descriptor)
    defer { _ = try? continueJournal(of: descriptor) }
    return try withStoreLock {
      let bounds = try historyBounds(of: descriptor)
      let hasState = try catalog.database.read { db in
        try Bool.fetchOne(
          db, sql: "SELECT 1 FROM ingest_state WHERE volume_id = ?", arguments: [descriptor.id.description]) ?? false
      }
      if hasState && bounds.ingested >= throughSeq && bounds.retainedFrom <= fromSeq { return false }
      if !startsChain || hasState {
        guard hasState, bounds.ingested == fromSeq else {
          throw ReelError(
            .notFound,
            "volume \(descriptor.name): this window starts after seq \(fromSeq) but the store holds history up to seq \(bounds.ingested)",
            remedy: "import the archives of the chain in order, starting with the first (its parent)")
        }
      }
      try recoverPacks()
      let window = HistoryImport(
        live: self, descriptor: descriptor, fromSeq: fromSeq, throughSeq: throughSeq,
        expectedChunkBytes: expectedChunkBytes)
      try fill(window)
      let packSizes = try window.packs.makeDurable()
      let volumeID = descriptor.id.description
      try catalog.database.write { db in
        try Catalog.insertHistory(
          db, volume: volumeID, versions: window.versions, records: window.records, bookmarks: window.bookmarks,
          newChunks: window.newChunks, unnamed: window.partialOnlyChunks, packSizes: packSizes)
        try Catalog.insertRollbacks(db, volume: volumeID, window.rollbacks)
        if let origin = window.origin {
          try db.execute(
            sql: """
              INSERT OR IGNORE INTO volume_origin (volume_id, origin_volume_id, origin_seq, created_ns)
              VALUES (?, ?, ?, ?)
              """,
            arguments: [volumeID, origin.originVolumeID, Int64(origin.originSeq), origin.created.nanoseconds])
        }
        try db.execute(
          sql: """
            INSERT INTO ingest_state (volume_id, ingested_seq, base_ingested, retained_from_seq) VALUES (?, ?, 1, ?)
            ON CONFLICT(volume_id) DO UPDATE SET ingested_seq = excluded.ingested_seq
            """,
          arguments: [volumeID, Int64(throughSeq), Int64(fromSeq)])
      }
      return true
    }
  }

  /// Makes the volume's journal continue after the history the store holds when that
  /// history came from elsewhere and the journal has no record (a rehydrated volume), so
  /// serving it starts from the newest imported state and new writes get the next seqs.
  /// Returns whether the journal changed.
  @discardableResult
  package func continueJournal(of descriptor: VolumeDescriptor) throws -> Bool {
    let volumeID = descriptor.id.description
    let last = try catalog.database.read { db -> (seq: Int64, time: Int64)? in
      guard
        let seq = try Int64.fetchOne(
          db, sql: "SELECT ingested_seq FROM ingest_state WHERE volume_id = ?", arguments: [volumeID]), seq > 0
      else { return nil }
      let time = try Int64.fetchOne(
        db, sql: "SELECT time_ns FROM record_time WHERE volume = \(Catalog.volumeNumber) ORDER BY seq DESC LIMIT 1",
        arguments: [volumeID])
      return (seq, time ?? descriptor.created.nanoseconds)
    }
    guard let last else { return false }
    return try JournalWriter.continueAfter(
      directory: store.layout.journalDirectory(descriptor.name), volume: descriptor.id, seq: Seq(last.seq),
      time: Timestamp(nanoseconds: last.time))
  }

  /// Makes a volume known from its descriptor alone (no base image, an empty journal), or
  /// checks that the volume of that name is the same one.
  func adopt(_ descriptor: VolumeDescriptor) throws {
    let layout = store.layout
    if FileManager.default.fileExists(atPath: layout.descriptorPath(descriptor.name)) {
      let existing = try layout.descriptor(of: descriptor.name)
      guard existing.id == descriptor.id else {
        throw ReelError(
          .alreadyExists,
          "the store already has a different volume named \(descriptor.name) (id \(existing.id), the archive's is \(descriptor.id))",
          remedy: "import into another store folder")
      }
      guard existing.storeBlockSize == descriptor.storeBlockSize else {
        throw ReelError(
          .incompatible,
          "volume \(descriptor.name) uses \(existing.storeBlockSize)-byte store blocks here but \(descriptor.storeBlockSize)-byte blocks in the history being imported",
          remedy: "import into another store folder")
      }
      // A run killed between the rename and the catalog row finishes the job here.
      if !(try catalog.volumeNames().contains(descriptor.name)) { try catalog.register(existing) }
      return
    }
    var adopted = descriptor
    adopted.hasBase = false
    let staging = layout.volumesDirectory + "/.\(descriptor.name).adopting-\(getpid())"
    try? FileManager.default.removeItem(atPath: staging)
    try Durable.makeDirectory(staging + "/journal")
    try StoreLayout.writeDescriptor(adopted, inFolder: staging)
    try Durable.syncDirectory(staging)
    try Durable.rename(staging, to: layout.volumeDirectory(descriptor.name))
    if !(try catalog.volumeNames().contains(descriptor.name)) { try catalog.register(adopted) }
  }
}

extension Catalog {
  /// The rows one batch of history adds, ingested from a journal or imported from an
  /// archive: versions, record times, bookmarks, new chunks and the packs' committed sizes.
  static func insertHistory(
    _ db: Database, volume volumeID: String, versions: [BlockVersion], records: [HistoryRecord],
    bookmarks: [Bookmark], newChunks: [String: (location: ChunkLocation, size: Int)], unnamed: Set<String> = [],
    deltaBases: [String: String] = [:], packSizes: [(String, UInt64)]
  ) throws {
    try numberVolume(db, volumeID)
    // Chunks first: a version refers to its chunk's row.
    var packNumbers: [String: Int64] = [:]
    for pack in Set(newChunks.values.map(\.location.pack)) { packNumbers[pack] = try packNumber(db, pack) }
    var chunkIDs: [String: Int64] = [:]
    for (hash, chunk) in newChunks {
      guard let digest = digestBlob(hash) else {
        throw ReelError(.corrupt, "\(hash) is not a chunk name (64 hexadecimal digits)")
      }
      let place: StatementArguments = [
        packNumbers[chunk.location.pack], Int64(chunk.location.offset), chunk.location.length, chunk.size,
        chunk.location.recordOffset.map { Int64($0) },
      ]
      if unnamed.contains(hash) {
        chunkIDs[hash] = try Int64.fetchOne(
          db.cachedStatement(
            sql: """
              INSERT INTO chunk (digest, pack_number, offset, length, size, record_offset)
              VALUES (NULL, ?, ?, ?, ?, ?) RETURNING id
              """),
          arguments: place)
        continue
      }
      // A lost chunk's row (no pack) takes the new record's place; a present one is kept.
      let id = try Int64.fetchOne(
        db.cachedStatement(
          sql: """
            INSERT INTO chunk (digest, pack_number, offset, length, size, record_offset)
            VALUES (?, ?, ?, ?, ?, ?)
            ON CONFLICT (digest) WHERE digest IS NOT NULL DO UPDATE SET pack_number = excluded.pack_number,
              offset = excluded.offset, length = excluded.length, size = excluded.size, base_id = NULL,
              record_offset = excluded.record_offset
            WHERE pack_number IS NULL
            RETURNING id
            """),
        arguments: [digest] + place)
      if let id { chunkIDs[hash] = id }
    }
    // Bases after all the batch's chunks have rows: a base may be new in the same batch.
    for (hash, base) in deltaBases {
      guard let id = chunkIDs[hash] else { continue }
      let baseID = try chunkIDs[base] ?? chunkID(db, hash: base)
      try db.cachedStatement(sql: "UPDATE chunk SET base_id = ? WHERE id = ?").execute(arguments: [baseID, id])
    }
    for version in versions { try insert(version, volume: volumeID, knownChunkIDs: chunkIDs, db) }
    for record in records {
      try db.cachedStatement(
        sql: "INSERT OR REPLACE INTO record_time (volume, seq, time_ns, kind) VALUES (\(volumeNumber), ?, ?, ?)"
      ).execute(arguments: [volumeID, Int64(record.seq), record.time.nanoseconds, Int64(record.kind)])
    }
    for bookmark in bookmarks {
      try db.execute(
        sql: "INSERT OR REPLACE INTO bookmark (volume_id, seq, label, time_ns) VALUES (?, ?, ?, ?)",
        arguments: [volumeID, Int64(bookmark.seq), bookmark.label, bookmark.time.nanoseconds])
    }
    for (pack, size) in packSizes {
      try db.execute(sql: "UPDATE pack SET committed_size = ? WHERE id = ?", arguments: [Int64(size), pack])
    }
  }
}
