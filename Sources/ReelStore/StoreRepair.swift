import Foundation
import GRDB
import ReelCodec
import ReelCore
import ReelIO
import ReelJournal

/// A chunk whose stored record cannot be trusted, and why.
package struct DamagedChunk: Sendable, Equatable {
  package var hash: String
  package var reason: String
  /// What it affects, as `reel store check` words it.
  package var affects: [String]
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

/// Supplies stored chunk records (docs/store-format.md) for the wanted names from outside
/// the store (sealed archives): calls `found` for each it has, returns where it looked.
package typealias ChunkRecordSupply = (
  _ wanted: Set<String>, _ found: @escaping (String, [UInt8]) throws -> Void
) throws -> [String]

extension LiveStore {
  /// Finds every chunk whose record is missing, out of range, overlapping another or fails
  /// its checksum or SHA-256, and stores it again from what can still give its bytes: the
  /// journal records (and base image) its block versions were made from, then `archives`.
  /// Chunks are named by the SHA-256 of their content, so a rebuilt chunk is accepted only
  /// when its hash matches, and every block version naming it reads right again. Rows of
  /// chunks nothing could give back are removed, so a later ingest of the same content
  /// stores it afresh instead of reusing the damaged record. Runs under the store lock.
  package func repair(archives: ChunkRecordSupply? = nil) throws -> StoreRepairReport {
    try withStoreLock {
      try recoverPacks()
      var report = StoreRepairReport()
      let damage = try findDamagedChunks()
      report.chunksChecked = damage.checked
      report.damaged = damage.damaged
      guard !report.damaged.isEmpty else { return report }
      var wanted = Set(report.damaged.map(\.hash))

      var records: [String: [UInt8]] = [:]
      let codec = ChunkCodec()
      for (hash, plaintext) in try rebuildFromJournals(wanted) {
        // The name is the plaintext's SHA-256, checked when it was rebuilt.
        guard let digest = SHA256Digest(hex: hash) else { continue }
        records[hash] = codec.encode(plaintext, hash: digest)
        report.fromJournal.append(hash)
      }
      wanted.subtract(records.keys)
      if let archives, !wanted.isEmpty {
        report.archivesRead = try archives(wanted) { hash, record in
          guard wanted.contains(hash), records[hash] == nil else { return }
          // The archive's word is not taken: the record must decode to content of that name.
          guard (try? ChunkCodec.decode(record, key: hash, verify: true)) != nil else { return }
          records[hash] = record
          report.fromArchives.append(hash)
        }
      }
      wanted.subtract(records.keys)

      let appender = PackAppender(live: self, reuseNewest: false)
      var locations: [(String, ChunkLocation, Int)] = []
      for (hash, record) in records.sorted(by: { $0.key < $1.key }) {
        locations.append((hash, try appender.append(record), ChunkCodec.plaintextLength(record)))
      }
      let sizes = try appender.makeDurable()
      try catalog.database.write { db in
        for hash in wanted {
          try db.execute(
            sql: "UPDATE chunk SET pack_number = NULL, offset = 0, length = 0 WHERE digest = reel_digest(?)",
            arguments: [hash])
        }
        for (hash, location, size) in locations {
          try db.execute(
            sql: """
              INSERT INTO chunk (digest, pack_number, offset, length, size) VALUES (reel_digest(?), ?, ?, ?, ?)
              ON CONFLICT (digest) DO UPDATE SET pack_number = excluded.pack_number, offset = excluded.offset,
                length = excluded.length, size = excluded.size
              """,
            arguments: [hash, try Catalog.packNumber(db, location.pack), Int64(location.offset), location.length, size])
        }
        for (pack, size) in sizes {
          try db.execute(sql: "UPDATE pack SET committed_size = ? WHERE id = ?", arguments: [Int64(size), pack])
        }
      }
      report.fromJournal.sort()
      report.fromArchives.sort()
      report.unrepaired = report.damaged.filter { wanted.contains($0.hash) }
      return report
    }
  }

  /// Every chunk row read and checked, plus names versions use that have no row.
  func findDamagedChunks() throws -> (checked: Int, damaged: [DamagedChunk]) {
    let check = try check(readData: true, markVerified: false)
    var damaged: [String: DamagedChunk] = [:]
    for problem in check.problems {
      guard let hash = problem.chunk, damaged[hash] == nil else { continue }
      damaged[hash] = DamagedChunk(hash: hash, reason: problem.message, affects: problem.affects)
    }
    return (check.chunksChecked, damaged.values.sorted { $0.hash < $1.hash })
  }

  /// The content of each wanted chunk that a block version made from a journal record (or
  /// a base image) still kept can give again, checked against its name.
  func rebuildFromJournals(_ wanted: Set<String>) throws -> [String: [UInt8]] {
    var found: [String: [UInt8]] = [:]
    let uses = try catalog.database.read { db in
      var uses: [(volume: String, version: BlockVersion)] = []
      // One pass over the versions for every 500 names (the catalog keeps no index by chunk).
      let names = Array(wanted)
      for start in stride(from: 0, to: names.count, by: 500) {
        let slice = names[start..<min(start + 500, names.count)].compactMap(Catalog.digestBlob)
        for row in try Row.fetchAll(
          db,
          sql: """
            SELECT n.volume_id, v.block, v.seq, v.full, lower(hex(c.digest)) AS hash, v.start, v.length
            FROM block_version v JOIN volume_number n ON n.number = v.volume JOIN chunk c ON c.id = v.chunk_id
            WHERE v.chunk_id IN (SELECT id FROM chunk WHERE digest IN (\(slice.map { _ in "?" }.joined(separator: ","))))
            """,
          arguments: StatementArguments(slice))
        {
          uses.append(
            (
              row["volume_id"],
              BlockVersion(
                block: UInt64(row["block"] as Int64), seq: Seq(row["seq"] as Int64), full: row["full"] as Int64 != 0,
                chunk: row["hash"], start: Int(row["start"] as Int64), length: Int(row["length"] as Int64))
            ))
        }
      }
      return uses
    }
    let names = try catalog.database.read { db in
      try Row.fetchAll(db, sql: "SELECT id, name FROM volume").reduce(into: [String: String]()) {
        $0[$1["id"]] = $1["name"]
      }
    }
    for (volumeID, versions) in Dictionary(grouping: uses, by: \.volume) {
      guard let name = names[volumeID], let descriptor = try? store.layout.descriptor(of: name) else { continue }
      let ordered = versions.map(\.version).sorted { ($0.seq, $0.block) < ($1.seq, $1.block) }
      try rebuild(ordered, of: descriptor, into: &found)
    }
    return found
  }

  private func rebuild(_ versions: [BlockVersion], of descriptor: VolumeDescriptor, into found: inout [String: [UInt8]])
    throws
  {
    let blockSize = UInt64(descriptor.storeBlockSize)
    let volumeID = descriptor.id.description
    func blockLength(_ block: UInt64) -> Int { Int(min(blockSize, descriptor.size - block * blockSize)) }
    func accept(_ version: BlockVersion, _ content: [UInt8]) {
      guard let hash = version.chunk, found[hash] == nil, SHA256Digest.hash(content).hex == hash else { return }
      found[hash] = content
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
      for version in bySeq[record.seq] ?? [] where found[version.chunk!] == nil {
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
