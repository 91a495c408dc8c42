import Foundation
import GRDB
import ReelCodec
import ReelCore
import ReelIO
import ReelJournal

/// A chunk whose stored record cannot be trusted, and why.
package struct DamagedChunk: Sendable, Equatable {
  /// The chunk's catalog row.
  package var row: Int64
  /// Its SHA-256 name; nil for an unnamed chunk (docs/store-format.md), whose name only
  /// its record held.
  package var name: String?
  package var reason: String
  /// What it affects, as `reel store check` words it.
  package var affects: [String]

  /// The chunk as reports name it.
  package var chunk: String { Catalog.chunkKey(row: row, hash: name).description }
}

package struct StoreRepairReport: Sendable {
  package var chunksChecked = 0
  /// Damaged chunks found, before repair.
  package var damaged: [DamagedChunk] = []
  /// Chunks rebuilt from journal records (and base images) and stored again.
  package var fromJournal: [String] = []
  /// Chunks taken again from sealed archives.
  package var fromArchives: [String] = []
  /// Damaged chunks nothing could give back: the points that need them stay unreadable.
  package var unrepaired: [DamagedChunk] = []
  /// The archives read for chunks the journals could not give.
  package var archivesRead: [String] = []
  package var isComplete: Bool { unrepaired.isEmpty }
}

/// One block version's place in a volume's history.
package struct VersionPlace: Hashable, Sendable {
  package var block: UInt64
  package var seq: Seq

  package init(block: UInt64, seq: Seq) {
    self.block = block
    self.seq = seq
  }
}

/// What repair asks sealed archives for.
package struct WantedChunks: Sendable {
  /// Chunks by name.
  package var names: Set<String> = []
  /// Chunks the store keeps no name for (unnamed), each by the block versions that use
  /// it, per volume id: an archive's index names the chunk of every version it holds.
  package var versions: [String: Set<VersionPlace>] = [:]
}

/// Supplies stored chunk records (docs/store-format.md) from outside the store (sealed
/// archives): calls `named` with the name an archive's index gives a wanted version's
/// chunk, before `found` with records of those names; `found` for each wanted chunk it
/// has. Returns where it looked.
package typealias ChunkRecordSupply = (
  _ wanted: WantedChunks, _ named: @escaping (_ volumeID: String, _ place: VersionPlace, _ name: String) -> Void,
  _ found: @escaping (String, [UInt8]) throws -> Void
) throws -> [String]

extension LiveStore {
  /// Finds every chunk whose record is missing, out of range, overlapping another or fails
  /// its checksum or SHA-256, and stores it again from what can still give its bytes: the
  /// journal records (and base image) its block versions were made from, then `archives`.
  /// A rebuilt chunk with a name is accepted only when its hash matches, so every block
  /// version using it reads right again; an unnamed one (docs/store-format.md) is the
  /// checksummed journal record's bytes, of the length the catalog gives, or the record an
  /// archive's index names for one of its versions. Rows of chunks nothing could give back
  /// lose their place (lost): a later ingest of the same content stores it afresh instead
  /// of reusing the damaged record. Runs under the store lock.
  package func repair(archives: ChunkRecordSupply? = nil) throws -> StoreRepairReport {
    try withStoreLock {
      try recoverPacks()
      var report = StoreRepairReport()
      let damage = try findDamagedChunks()
      report.chunksChecked = damage.checked
      report.damaged = damage.damaged
      guard !report.damaged.isEmpty else { return report }
      let wanted = Dictionary(report.damaged.map { ($0.row, $0) }, uniquingKeysWith: { first, _ in first })

      var records: [Int64: [UInt8]] = [:]
      let codec = ChunkCodec()
      for (row, plaintext) in try rebuildFromJournals(Array(wanted.keys)) {
        records[row] = codec.encode(plaintext, hash: SHA256Digest.hash(plaintext))
        report.fromJournal.append(wanted[row]!.chunk)
      }
      let remaining = wanted.filter { records[$0.key] == nil }
      if let archives, !remaining.isEmpty {
        var rowsByName: [String: [Int64]] = [:]
        for (row, chunk) in remaining { if let name = chunk.name { rowsByName[name, default: []].append(row) } }
        let uses = try versionsUsing(remaining.filter { $0.value.name == nil }.map(\.key))
        var rowsByPlace: [String: [VersionPlace: Int64]] = [:]
        for use in uses {
          rowsByPlace[use.volumeID, default: [:]][VersionPlace(block: use.version.block, seq: use.version.seq)] =
            use.version.chunkRow
        }
        let request = WantedChunks(names: Set(rowsByName.keys), versions: rowsByPlace.mapValues { Set($0.keys) })
        let named = { (volumeID: String, place: VersionPlace, name: String) in
          if let row = rowsByPlace[volumeID]?[place], !(rowsByName[name]?.contains(row) ?? false) {
            rowsByName[name, default: []].append(row)
          }
        }
        report.archivesRead = try archives(request, named) { name, record in
          guard let rows = rowsByName[name], rows.contains(where: { records[$0] == nil }) else { return }
          // The archive's word is not taken: the record must decode to content of that name.
          guard (try? ChunkCodec.decode(record, key: .named(name), verify: true)) != nil else { return }
          for row in rows where records[row] == nil {
            records[row] = record
            report.fromArchives.append(wanted[row]!.chunk)
          }
        }
      }

      let appender = PackAppender(live: self, reuseNewest: false)
      var locations: [(Int64, ChunkLocation, Int)] = []
      for (row, record) in records.sorted(by: { $0.key < $1.key }) {
        locations.append((row, try appender.append(record), ChunkCodec.plaintextLength(record)))
      }
      let sizes = try appender.makeDurable()
      try catalog.database.write { db in
        for row in wanted.keys where records[row] == nil {
          try db.execute(
            sql:
              "UPDATE chunk SET pack_number = NULL, offset = 0, length = 0, base_id = NULL, record_offset = NULL WHERE id = ?",
            arguments: [row])
        }
        for (row, location, size) in locations {
          try db.execute(
            sql:
              "UPDATE chunk SET pack_number = ?, offset = ?, length = ?, size = ?, base_id = NULL, record_offset = NULL WHERE id = ?",
            arguments: [try Catalog.packNumber(db, location.pack), Int64(location.offset), location.length, size, row])
        }
        for (pack, size) in sizes {
          try db.execute(sql: "UPDATE pack SET committed_size = ? WHERE id = ?", arguments: [Int64(size), pack])
        }
      }
      report.fromJournal.sort()
      report.fromArchives.sort()
      report.unrepaired = report.damaged.filter { records[$0.row] == nil }
      return report
    }
  }

  /// Every chunk row read and checked; the damaged ones, with their names where kept.
  func findDamagedChunks() throws -> (checked: Int, damaged: [DamagedChunk]) {
    let check = try check(readData: true, markVerified: false)
    var damaged: [Int64: DamagedChunk] = [:]
    for problem in check.problems {
      guard let row = problem.chunkRow, damaged[row] == nil else { continue }
      let name = try catalog.database.read { db in
        try String.fetchOne(db, sql: "SELECT hash FROM chunk_named WHERE id = ?", arguments: [row])
      }
      damaged[row] = DamagedChunk(row: row, name: name, reason: problem.message, affects: problem.affects)
    }
    return (check.chunksChecked, damaged.values.sorted { ($0.name ?? "", $0.row) < ($1.name ?? "", $1.row) })
  }

  /// The block versions that use the chunks in `rows`, with the chunk's name where kept
  /// and its plaintext length; one pass over the versions for every 500 rows (the catalog
  /// keeps no index by chunk).
  func versionsUsing(_ rows: [Int64]) throws -> [(volumeID: String, version: BlockVersion, size: Int)] {
    try catalog.database.read { db in
      try Catalog.fetchAll(db, in: rows) {
        """
        SELECT n.volume_id, v.block, v.seq, v.full, nullif(lower(hex(c.digest)), '') AS hash, v.chunk_id,
          v.start, v.length, c.size
        FROM block_version v JOIN volume_number n ON n.number = v.volume JOIN chunk c ON c.id = v.chunk_id
        WHERE v.chunk_id IN (\($0))
        """
      }.map { row in
        (
          row["volume_id"],
          BlockVersion(
            block: UInt64(row["block"] as Int64), seq: Seq(row["seq"] as Int64), full: row["full"] as Int64 != 0,
            chunk: row["hash"], start: Int(row["start"] as Int64), length: Int(row["length"] as Int64),
            chunkRow: row["chunk_id"]),
          Int(row["size"] as Int64)
        )
      }
    }
  }

  /// The content of each chunk in `rows` that a block version made from a journal record
  /// (or a base image) still kept can give again, checked against its name, or for an
  /// unnamed chunk against its length.
  func rebuildFromJournals(_ rows: [Int64]) throws -> [Int64: [UInt8]] {
    var found: [Int64: [UInt8]] = [:]
    let uses = try versionsUsing(rows)
    let sizes = uses.reduce(into: [Int64: Int]()) { $0[$1.version.chunkRow!] = $1.size }
    let names = try catalog.database.read { db in
      try Row.fetchAll(db, sql: "SELECT id, name FROM volume").reduce(into: [String: String]()) {
        $0[$1["id"]] = $1["name"]
      }
    }
    for (volumeID, versions) in Dictionary(grouping: uses, by: \.volumeID) {
      guard let name = names[volumeID], let descriptor = try? store.layout.descriptor(of: name) else { continue }
      let ordered = versions.map(\.version).sorted { ($0.seq, $0.block) < ($1.seq, $1.block) }
      try rebuild(ordered, of: descriptor, sizes: sizes, into: &found)
    }
    return found
  }

  private func rebuild(
    _ versions: [BlockVersion], of descriptor: VolumeDescriptor, sizes: [Int64: Int], into found: inout [Int64: [UInt8]]
  ) throws {
    let blockSize = UInt64(descriptor.storeBlockSize)
    let volumeID = descriptor.id.description
    func blockLength(_ block: UInt64) -> Int { Int(min(blockSize, descriptor.size - block * blockSize)) }
    func accept(_ version: BlockVersion, _ content: [UInt8]) {
      guard let row = version.chunkRow, found[row] == nil else { return }
      // A lost row v8's migration made for a name v7 had deleted has no size to compare.
      if let hash = version.chunk {
        guard SHA256Digest.hash(content).hex == hash else { return }
      } else {
        guard content.count == sizes[row] else { return }
      }
      found[row] = content
    }
    /// The block as of `seq`, from the store, with chunks rebuilt so far taking the place
    /// of damaged ones; nil when a chunk it needs is still damaged.
    func block(_ block: UInt64, asOf seq: Seq) throws -> [UInt8]? {
      let chain = try catalog.database.read { db in
        try Catalog.versionChain(db, lineage: try Catalog.lineage(db, of: volumeID), block: block, atOrBefore: seq)
      }
      return try? assemble(chain, length: blockLength(block), preloaded: found)
    }

    let atBase = versions.filter { $0.seq == 0 }
    if !atBase.isEmpty, descriptor.hasBase,
      let base = try? PosixFile.openForReading(store.layout.baseImagePath(descriptor.name))
    {
      for version in atBase {
        var bytes = try base.read(at: version.block * blockSize, count: blockLength(version.block))
        if bytes.count < blockLength(version.block) {
          bytes += [UInt8](repeating: 0, count: blockLength(version.block) - bytes.count)
        }
        accept(version, bytes)
      }
    }
    let bySeq = Dictionary(grouping: versions.filter { $0.seq > 0 }, by: \.seq)
    guard let first = bySeq.keys.min(), let last = bySeq.keys.max(),
      let journal = try? JournalReader(directory: store.layout.journalDirectory(descriptor.name), volume: descriptor.id)
    else { return }
    let records = RecordPrefetcher(reader: journal, fromSeq: first, bufferBytes: 32 << 20)
    defer { records.cancel() }
    while let record = try? records.next(), record.seq <= last {
      for version in bySeq[record.seq] ?? [] where found[version.chunkRow!] == nil {
        let blockStart = version.block * blockSize
        let length = blockLength(version.block)
        // The record's bytes over this block, in block coordinates.
        let low = max(record.offset, blockStart)
        let high = min(record.offset + record.length, blockStart + UInt64(length))
        guard [.write, .trim, .writeZeroes].contains(record.kind), low < high else { continue }
        // Trims and zeroings store a chunk only when they ended a chain (consolidation).
        let piece =
          record.kind == .write
          ? record.payload[Int(low - record.offset)..<Int(high - record.offset)]
          : ArraySlice(repeating: 0, count: Int(high - low))
        if !version.full {
          guard Int(low - blockStart) == version.start, piece.count == version.length else { continue }
          accept(version, Array(piece))
        } else if low == blockStart && Int(high - low) == length {
          accept(version, Array(piece))
        } else if var whole = try block(version.block, asOf: record.seq - 1) {
          // A consolidated version: the block before the write, with the write on top.
          whole.replaceSubrange(Int(low - blockStart)..<Int(high - blockStart), with: piece)
          accept(version, whole)
        }
      }
    }
  }
}
