import Foundation
import GRDB
import ReelCodec
import ReelCore
import ReelIO
import ReelJournal

package struct IngestReport: Sendable, Equatable {
  package var volume: String
  /// Seqs `firstSeq...lastSeq` were ingested by this run (empty when firstSeq > lastSeq).
  package var firstSeq: Seq
  package var lastSeq: Seq
  package var records: UInt64 = 0
  package var bytesWritten: UInt64 = 0
  package var chunksStored: UInt64 = 0
  package var chunksReused: UInt64 = 0
  package var storedBytes: UInt64 = 0
  /// Damaged chunks met while ingesting (see `reel store repair`); ingest went on without them.
  package var damage: [String] = []
  /// The run gave way (its `yield` said so) before the end of the journal.
  package var yielded = false
}

extension LiveStore {
  /// Most payload one batch goes through before it is committed; bounds the work a crash
  /// makes ingest redo. Payloads are not kept, so memory does not grow with it; each
  /// commit drains the encoder and waits for an fsync, so fewer, larger batches keep
  /// the workers busy.
  static let batchPayloadLimit = 256 << 20
  static let batchRecordLimit = 20_000
  /// How often a yielding run asks whether to stop: about 25 MiB of random 4-64 KiB writes.
  static let yieldCheckRecords: UInt64 = 1024

  /// Brings the store up to date with the volume's journal (up to `limit`, if given).
  /// Idempotent and crash-safe: each batch's chunks are made durable before the one
  /// catalog transaction that references them and advances the ingested seq; a batch cut
  /// short by a crash is redone and finds its chunks already there. `yield`, asked every
  /// `yieldCheckRecords` records, stops the run early (what was read is committed), so a
  /// background pass can give way to clients; the report then ends before the journal does.
  @discardableResult
  package func ingest(
    volume name: String, upTo limit: Seq? = nil, yield: (() -> Bool)? = nil
  ) throws -> IngestReport {
    let descriptor = try store.layout.descriptor(of: name)
    return try withStoreLock {
      let volumeID = descriptor.id.description
      let state = try catalog.database.read { db in
        try Row.fetchOne(
          db, sql: "SELECT ingested_seq, base_ingested FROM ingest_state WHERE volume_id = ?", arguments: [volumeID])
      }
      let ingested = Seq(state?["ingested_seq"] as Int64? ?? 0)
      var report = IngestReport(volume: name, firstSeq: ingested + 1, lastSeq: ingested)
      try recoverPacks()
      let packs = PackAppender(live: self)
      let encoder = ChunkEncoder(workers: workers)
      defer { encoder.shutdown() }
      var batch = IngestBatch(live: self, descriptor: descriptor, packs: packs, encoder: encoder)
      if descriptor.hasBase && (state?["base_ingested"] as Int64? ?? 0) == 0 {
        try batch.addBase(path: store.layout.baseImagePath(name))
        try commit(&batch, report: &report)
      }
      let journal = try JournalReader(
        directory: store.layout.journalDirectory(name), volume: descriptor.id, fromSeq: ingested + 1)
      let records = RecordPrefetcher(reader: journal, fromSeq: ingested + 1, bufferBytes: 32 << 20)
      defer { records.cancel() }
      while let record = try records.next() {
        if let limit, record.seq > limit { break }
        // A rollback reads block states as of its target from the catalog: everything
        // before it must be committed there first.
        if record.kind == .rollback { try commit(&batch, report: &report) }
        try batch.add(record)
        report.records += 1
        if record.kind == .write { report.bytesWritten += record.length }
        if let yield, report.records % Self.yieldCheckRecords == 0, yield() {
          report.yielded = true
          break
        }
        if batch.payloadBytes >= Self.batchPayloadLimit || batch.records.count >= Self.batchRecordLimit {
          try commit(&batch, report: &report)
        }
      }
      try commit(&batch, report: &report)
      try batch.settle()
      return report
    }
  }

  /// Hands the batch to a thread of its own to be made durable and written to the
  /// catalog, then starts the next batch, which reads the catalog only after that write
  /// (`IngestBatch.settle`). The batch before must have landed first, so batches land in
  /// order and one at a time. Before this the encoders sat idle through every batch's
  /// fdatasync and catalog transaction (25-30 ms per 256 MiB batch of large writes). The
  /// last batch's transaction still runs alone: `ingest` returns after it.
  private func commit(_ batch: inout IngestBatch, report: inout IngestReport) throws {
    try batch.resolveAll()
    guard batch.hasWork else { return }
    let packs = try batch.packs.detachDurability()
    let rows = batch.rows(after: report.lastSeq)
    try batch.settle()
    let catalog = self.catalog
    let committing = BackgroundTask(name: "reel-ingest-commit") {
      let packSizes = try packs.run()
      try catalog.database.write { db in try rows.insert(db, packSizes: packSizes) }
    }
    report.lastSeq = rows.lastSeq
    report.chunksStored += batch.chunksStored
    report.chunksReused += batch.chunksReused
    report.storedBytes += batch.storedBytes
    report.damage += batch.damage
    batch = IngestBatch(
      live: self, descriptor: batch.descriptor, packs: batch.packs, encoder: batch.encoder, carryingHeads: batch.heads,
      committing: committing)
  }
}

/// What one batch adds to the catalog, taken from the batch for the thread that writes it.
struct IngestBatchRows: Sendable {
  let volumeID: String
  let versions: [BlockVersion]
  let records: [HistoryRecord]
  let bookmarks: [Bookmark]
  let rollbacks: [RollbackEvent]
  let newChunks: [String: (location: ChunkLocation, size: Int)]
  let unnamedChunks: Set<String>
  let deltaBases: [String: String]
  let lastSeq: Seq
  let baseIngested: Bool

  func insert(_ db: Database, packSizes: [(String, UInt64)]) throws {
    try Catalog.insertHistory(
      db, volume: volumeID, versions: versions, records: records, bookmarks: bookmarks, newChunks: newChunks,
      unnamed: unnamedChunks, deltaBases: deltaBases, packSizes: packSizes)
    try Catalog.insertRollbacks(db, volume: volumeID, rollbacks)
    try db.execute(
      sql: """
        INSERT INTO ingest_state (volume_id, ingested_seq, base_ingested) VALUES (?, ?, ?)
        ON CONFLICT(volume_id) DO UPDATE SET ingested_seq = excluded.ingested_seq,
          base_ingested = MAX(base_ingested, excluded.base_ingested)
        """,
      arguments: [volumeID, Int64(lastSeq), baseIngested ? 1 : 0])
  }
}

/// One batch of ingest work, not yet committed: new block versions, the chains they
/// extend, and the chunks written for them. Contents go to the encoder as versions are
/// planned; each version gets its chunk when the encoder's result comes back, in order.
struct IngestBatch {
  let live: LiveStore
  let descriptor: VolumeDescriptor
  let packs: PackAppender
  let encoder: ChunkEncoder
  var versions: [BlockVersion] = []
  /// Seq, time and kind of each record; payloads are not kept past `add`.
  var records: [(seq: Seq, time: Timestamp, kind: JournalRecord.Kind)] = []
  var bookmarks: [Bookmark] = []
  var rollbacks: [RollbackEvent] = []
  var newChunks: [String: (location: ChunkLocation, size: Int)] = [:]
  /// New chunks stored as deltas, with the chunk each is a delta of.
  var deltaBases: [String: String] = [:]
  /// New chunks of partial versions, which the catalog keeps without their names
  /// (docs/store-format.md, "Unnamed chunks"): no later batch finds them by name.
  var unnamedChunks: Set<String> = []
  var knownChunks: [String: ChunkLocation] = [:]
  /// The chain at the head of each touched block, including this batch's versions.
  var heads: [UInt64: [BlockVersion]]
  /// Indexes into `versions` whose content is with the encoder, oldest first.
  private var awaiting: [Int] = []
  private var awaitingHead = 0
  var payloadBytes = 0
  /// Blocks whose chain could not be consolidated because a chunk of it is damaged.
  var damage: [String] = []
  var baseAdded = false
  var chunksStored: UInt64 = 0
  var chunksReused: UInt64 = 0
  var storedBytes: UInt64 = 0
  /// Content handed to the encoder and not yet taken back stays under this.
  static let encoderBytesLimit = 32 << 20
  /// The batch before, still being written to the catalog.
  private var committing: BackgroundTask<Void>?

  init(
    live: LiveStore, descriptor: VolumeDescriptor, packs: PackAppender, encoder: ChunkEncoder,
    carryingHeads heads: [UInt64: [BlockVersion]] = [:], committing: BackgroundTask<Void>? = nil
  ) {
    self.live = live
    self.descriptor = descriptor
    self.packs = packs
    self.encoder = encoder
    self.committing = committing
    // Heads stay valid across batches of one run: nothing else writes this volume's
    // versions while the store lock is held. Bounded so memory stays flat.
    self.heads = heads.count > 100_000 ? [:] : heads
  }

  var hasWork: Bool { !versions.isEmpty || !records.isEmpty || baseAdded }

  /// Waits until the batch before is in the catalog (rethrowing what stopped it): every
  /// catalog read of this batch's comes after it.
  mutating func settle() throws {
    defer { committing = nil }
    try committing?.value()
  }

  func rows(after lastSeq: Seq) -> IngestBatchRows {
    IngestBatchRows(
      volumeID: descriptor.id.description, versions: versions,
      records: records.map { HistoryRecord(seq: $0.seq, time: $0.time, kind: $0.kind.rawValue) },
      bookmarks: bookmarks, rollbacks: rollbacks, newChunks: newChunks, unnamedChunks: unnamedChunks,
      deltaBases: deltaBases, lastSeq: records.last?.seq ?? lastSeq, baseIngested: baseAdded || !descriptor.hasBase)
  }

  /// The volume's starting image becomes full versions at seq 0.
  mutating func addBase(path: String) throws {
    let file = try PosixFile.openForReading(path)
    let blockSize = UInt64(descriptor.storeBlockSize)
    var block: UInt64 = 0
    while block * blockSize < descriptor.size {
      let length = Int(min(blockSize, descriptor.size - block * blockSize))
      var bytes = try file.read(at: block * blockSize, count: length)
      if bytes.count < length { bytes += [UInt8](repeating: 0, count: length - bytes.count) }
      try add(BlockVersion(block: block, seq: 0, full: true, chunk: nil, start: 0, length: length), content: bytes[...])
      block += 1
    }
    baseAdded = true
  }

  mutating func add(_ record: JournalRecord) throws {
    records.append((record.seq, record.time, record.kind))
    switch record.kind {
    case .flush:
      return
    case .bookmark:
      bookmarks.append(Bookmark(seq: record.seq, label: record.label ?? "", time: record.time))
      return
    case .rollback:
      try settle()
      return try addRollback(record)
    case .write, .trim, .writeZeroes:
      break
    }
    guard record.offset <= descriptor.size, record.length <= descriptor.size - record.offset else {
      throw ReelError(
        .corrupt,
        "volume \(descriptor.name): journal record seq \(record.seq) reaches past the end of the volume (offset \(record.offset), length \(record.length))"
      )
    }
    payloadBytes += record.payload.count
    let blockSize = UInt64(descriptor.storeBlockSize)
    let end = record.offset + record.length
    var block = record.offset / blockSize
    while block * blockSize < end {
      let blockStart = block * blockSize
      let blockLength = Int(min(blockSize, descriptor.size - blockStart))
      let low = max(record.offset, blockStart)
      let high = min(end, blockStart + UInt64(blockLength))
      let piece =
        record.kind == .write ? record.payload[Int(low - record.offset)..<Int(high - record.offset)] : nil
      try place(
        block: block, seq: record.seq, blockLength: blockLength, start: Int(low - blockStart),
        length: Int(high - low), content: piece)
      block += 1
    }
  }

  /// Adds the version a change to one block becomes; `content` nil means zeros.
  private mutating func place(
    block: UInt64, seq: Seq, blockLength: Int, start: Int, length: Int, content: ArraySlice<UInt8>?
  ) throws {
    if start == 0 && length == blockLength {
      return try add(
        BlockVersion(block: block, seq: seq, full: true, chunk: nil, start: 0, length: length), content: content)
    }
    let chain = try head(block)
    let partials = chain.first?.full == true ? chain.count - 1 : chain.count
    guard partials >= LiveStoreFormat.maxPartials else {
      return try add(
        BlockVersion(block: block, seq: seq, full: false, chunk: nil, start: start, length: length), content: content)
    }
    // Consolidating reads the chain's chunks, so those still with the encoder land first.
    try resolveAll()
    try settle()
    var whole: [UInt8]
    var deltas: [(base: DeltaBase, limit: Int)] = []
    do {
      // Scoped to this block: a copy of the batch's locations kept alive past here would
      // make the next change to them copy the whole dictionary.
      let known = knownChunks
      let locate: ChunkLocator = { known[$0] }
      let current = try head(block)
      whole = try live.assemble(current, length: blockLength, locate: locate)
      if let previous = current.first, previous.full, let name = previous.chunk, let location = previous.location {
        deltas = LiveStoreFormat.deltaCandidates(
          lineage: try live.deltaLineage(of: name, at: location, locate: locate), blockLength: blockLength)
      }
    } catch let error as ReelError where error.kind == .corrupt {
      // A damaged chunk in the chain must not stop ingest (and with it every later point
      // of every block): the write is kept as one more partial version, which costs only
      // the points that need the damaged bytes anyway.
      damage.append("block \(block) at seq \(seq) kept unconsolidated: \(error.message)")
      return try add(
        BlockVersion(block: block, seq: seq, full: false, chunk: nil, start: start, length: length), content: content)
    }
    if let content {
      whole.replaceSubrange(start..<(start + length), with: content)
    } else {
      whole.replaceSubrange(start..<(start + length), with: repeatElement(0, count: length))
    }
    try add(
      BlockVersion(block: block, seq: seq, full: true, chunk: nil, start: 0, length: blockLength), content: whole[...],
      deltas: deltas)
  }

  mutating func add(
    _ version: BlockVersion, content: ArraySlice<UInt8>?, deltas: [(base: DeltaBase, limit: Int)] = []
  ) throws {
    if version.full {
      heads[version.block] = [version]
    } else {
      heads[version.block, default: []].append(version)
    }
    versions.append(version)
    guard let content else { return }
    awaiting.append(versions.count - 1)
    encoder.submit(content, deltas: deltas)
    while encoder.bytesInFlight > Self.encoderBytesLimit { try resolveReady() }
  }

  /// Gives every version still waiting on the encoder its chunk.
  mutating func resolveAll() throws {
    while awaitingHead < awaiting.count { try resolveReady() }
    awaiting.removeAll()
    awaitingHead = 0
  }

  /// Takes the encoder's oldest results (at least one): appends each new chunk once per
  /// name, unless the catalog has it (one query for the lot), and points its version, and
  /// the version's place in `heads`, at the stored chunk. A partial version's content is
  /// not looked for in the catalog: it is stored unnamed, and small random writes hardly
  /// ever repeat earlier content.
  private mutating func resolveReady() throws {
    let results = encoder.takeReady(limit: 256)
    var unknown: [String] = []
    for (offset, result) in results.enumerated() {
      guard case .new(let key, _, _, _) = result, knownChunks[key] == nil,
        versions[awaiting[awaitingHead + offset]].full
      else { continue }
      unknown.append(key)
    }
    if !unknown.isEmpty {
      try settle()
      let found = try live.catalog.database.read { db in try Catalog.chunkLocations(db, unknown) }
      for (key, location) in found {
        knownChunks[key] = location
        encoder.remember(key, at: location)
      }
    }
    for result in results {
      let index = awaiting[awaitingHead]
      awaitingHead += 1
      var stored: (key: String, location: ChunkLocation)?
      switch result {
      case .zeros:
        stored = nil
      case .known(let key, let location):
        stored = (key, knownChunks[key] ?? location)
        chunksReused += 1
      case .new(let key, let record, let size, let base):
        if let location = knownChunks[key] {
          stored = (key, location)
          chunksReused += 1
        } else {
          let location = try packs.append(record)
          knownChunks[key] = location
          newChunks[key] = (location, size)
          if let base { deltaBases[key] = base }
          if versions[index].full {
            encoder.remember(key, at: location)
          } else {
            unnamedChunks.insert(key)
          }
          chunksStored += 1
          storedBytes += UInt64(record.count)
          stored = (key, location)
        }
      }
      let version = versions[index].storing(stored)
      versions[index] = version
      if var chain = heads[version.block], let at = chain.lastIndex(where: { $0.seq == version.seq }) {
        chain[at] = version
        heads[version.block] = chain
      }
    }
  }

  private mutating func head(_ block: UInt64) throws -> [BlockVersion] {
    if let chain = heads[block] { return chain }
    try settle()
    let volumeID = descriptor.id.description
    let chain = try live.catalog.database.read { db in
      try Catalog.versionChain(
        db, lineage: try Catalog.lineage(db, of: volumeID), block: block, atOrBefore: Seq(Int64.max))
    }
    heads[block] = chain
    return chain
  }
}

/// Appends chunk records to the newest pack until it is full, then starts another.
/// A pack is registered in the catalog before its first byte is written, so every pack
/// file is accounted for; its committed size moves only with a batch's commit.
final class PackAppender {
  let live: LiveStore
  private var current: (id: String, size: UInt64)?
  private var touched: Set<String> = []

  private let reuseNewest: Bool
  /// With `wholePacks`: the pack being written, and those written whole since the last
  /// `makeDurable` with their sizes.
  private let wholePacks: Bool
  private var whole: (id: String, writer: any WholePackWriter)?
  private var finishedWhole: [(String, UInt64)] = []

  /// `reuseNewest: false` starts a fresh pack, as repacking must (the newest pack may be
  /// the one being emptied). `wholePacks`: every pack is new and written from start to
  /// end through `PackBackend.createWhole`, for large imports that read nothing back
  /// before they commit.
  init(live: LiveStore, reuseNewest: Bool = true, wholePacks: Bool = false) {
    self.live = live
    self.reuseNewest = reuseNewest && !wholePacks
    self.wholePacks = wholePacks
  }

  func append(_ record: [UInt8]) throws -> ChunkLocation {
    if wholePacks {
      if let whole, whole.writer.size >= LiveStore.packSizeLimit { try finishWhole() }
      if whole == nil {
        let id = try live.registerPack()
        whole = (id, try live.backend.createWhole(id))
      }
      let offset = try whole!.writer.append(record)
      return ChunkLocation(pack: whole!.id, offset: offset, length: record.count)
    }
    if current == nil && reuseNewest { current = try live.newestOpenPack() }
    if current == nil || current!.size >= LiveStore.packSizeLimit { current = (try live.registerPack(), 0) }
    let id = current!.id
    let offset = try live.backend.append(id, record)
    current!.size = offset + UInt64(record.count)
    touched.insert(id)
    return ChunkLocation(pack: id, offset: offset, length: record.count)
  }

  /// Syncs every pack written since the last call; returns their sizes to commit.
  func makeDurable() throws -> [(String, UInt64)] {
    try detachDurability().run()
  }

  /// The packs written since the last call, with their sizes now, to be synced by
  /// `PackDurability.run` on any thread while appends go on here.
  func detachDurability() throws -> PackDurability {
    try finishWhole()
    let written = try touched.map { ($0, try live.backend.size($0) ?? 0) }
    defer {
      finishedWhole.removeAll()
      touched.removeAll()
    }
    return PackDurability(backend: live.backend, finished: finishedWhole, written: written)
  }

  private func finishWhole() throws {
    guard let whole else { return }
    try whole.writer.finish()
    finishedWhole.append((whole.id, whole.writer.size))
    self.whole = nil
  }
}

/// Packs a batch wrote, to be made durable before its catalog rows are written.
struct PackDurability: Sendable {
  let backend: any PackBackend
  /// Packs written whole, already synced by their writers.
  let finished: [(String, UInt64)]
  /// Packs appended to, each with its size at the batch's end: bytes appended after that
  /// belong to the next batch, which commits them itself.
  let written: [(String, UInt64)]

  /// Syncs the appended packs; returns every pack's size to commit.
  func run() throws -> [(String, UInt64)] {
    for (pack, _) in written { try backend.makeDurable(pack) }
    return finished + written
  }
}

extension LiveStore {
  func registerPack() throws -> String {
    let id = (0..<16).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    try catalog.database.write { db in
      try db.execute(
        sql: "INSERT INTO pack (id, committed_size, created_ns) VALUES (?, 0, ?)",
        arguments: [id, Timestamp.now().nanoseconds])
    }
    return id
  }

  /// The most recent pack, if it still has room: frequent small ingests share packs.
  func newestOpenPack() throws -> (id: String, size: UInt64)? {
    let row = try catalog.database.read { db in
      try Row.fetchOne(db, sql: "SELECT id, committed_size FROM pack ORDER BY created_ns DESC LIMIT 1")
    }
    guard let row, UInt64(row["committed_size"] as Int64) < Self.packSizeLimit else { return nil }
    return (row["id"], UInt64(row["committed_size"] as Int64))
  }

  /// Cuts every pack back to its committed size: bytes after it were appended by a
  /// batch that never committed, and nothing references them. Called with the store
  /// lock held, before any append.
  func recoverPacks() throws {
    let packs = try catalog.database.read { db in
      try Row.fetchAll(db, sql: "SELECT id, committed_size FROM pack").map {
        ($0["id"] as String, UInt64($0["committed_size"] as Int64))
      }
    }
    for (pack, committed) in packs {
      if let size = try backend.size(pack), size > committed {
        try backend.truncate(pack, to: committed)
      }
    }
  }
}
