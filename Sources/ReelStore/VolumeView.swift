import Foundation
import GRDB
import ReelCore

/// A user's POINT turned into the journal position it names.
package struct ResolvedPoint: Sendable, Equatable {
  /// Records with seq ≤ this are included; 0 means the volume as created.
  package var seq: Seq
  /// The time of that record (or the volume's creation time for seq 0).
  package var time: Timestamp
  package var point: Point
  /// Something the user should know about how the point was read, e.g. that a time in
  /// the future was taken as the latest state; for standard error.
  package var warning: String? = nil
}

/// A volume as it was at one point, read from the live store without restoring it.
/// Reading a range costs one catalog lookup per store block, however long the history.
package final class VolumeView: VolumeSource, Sendable {
  package let live: LiveStore
  package let descriptor: VolumeDescriptor
  package let resolved: ResolvedPoint
  /// Where block states come from: the volume, then (for a clone) its origins.
  let lineage: VolumeLineage
  /// Version chains fetched ahead of a reader going through the volume in order.
  private let chainsAhead = ChainReadAhead()

  /// Resolves `point` against what has been ingested; call `LiveStore.ingest` first to
  /// include the journal's newest records.
  package init(live: LiveStore, volume name: String, at point: Point) throws {
    live.catalog.readAhead()
    self.live = live
    descriptor = try live.store.layout.descriptor(of: name)
    lineage = try live.lineage(of: descriptor)
    resolved = try Self.resolve(point, descriptor: descriptor, catalog: live.catalog)
  }

  package var size: UInt64 { descriptor.size }

  /// The bytes of `offset..<offset+length` as of the view's point.
  package func read(offset: UInt64, length: Int) throws -> [UInt8] {
    try checkRange(offset: offset, length: length)
    return try [UInt8](unsafeUninitializedCapacity: length) { buffer, count in
      try read(into: UnsafeMutableRawBufferPointer(buffer), at: offset)
      count = length
    }
  }

  /// The bytes of `offset..<offset+buffer.count` as of the view's point, straight into
  /// `buffer`: a server sends them from there, and blocks that lie whole inside it are
  /// decoded in place (the copies showed in profiles of clone reads).
  package func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
    try checkRange(offset: offset, length: buffer.count)
    guard !buffer.isEmpty else { return }
    let blockSize = UInt64(descriptor.storeBlockSize)
    let end = offset + UInt64(buffer.count)
    nonisolated(unsafe) let buffer = buffer
    try readBlocks(
      (offset / blockSize)..<((end - 1) / blockSize + 1),
      destination: { block in
        let blockStart = block * blockSize
        let blockEnd = min(blockStart + blockSize, size)
        if offset <= blockStart && blockEnd <= end {
          return .inPlace(
            UnsafeMutableRawBufferPointer(rebasing: buffer[Int(blockStart - offset)..<Int(blockEnd - offset)]))
        }
        return .copied { bytes in
          let from = max(offset, blockStart)
          let to = min(end, blockEnd)
          let target = UnsafeMutableRawBufferPointer(rebasing: buffer[Int(from - offset)..<Int(to - offset)])
          guard let bytes else {
            target.initializeMemory(as: UInt8.self, repeating: 0)
            return
          }
          bytes.withUnsafeBytes {
            target.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[Int(from - blockStart)..<Int(to - blockStart)]))
          }
        }
      })
  }

  private func checkRange(offset: UInt64, length: Int) throws {
    guard length >= 0, offset <= size, UInt64(length) <= size - offset else {
      throw ReelError(
        .usage, "read of \(length) bytes at \(offset) is outside volume \(descriptor.name) (\(size) bytes)")
    }
  }

  /// Where a block's bytes go: decoded straight into its place in the caller's buffer, or
  /// handed over as an array (nil: zeros) on the reading thread, in block order.
  enum BlockDestination {
    case inPlace(UnsafeMutableRawBufferPointer)
    case copied((_ bytes: [UInt8]?) throws -> Void)
  }

  private func readBlocks(_ range: Range<UInt64>, destination: (UInt64) -> BlockDestination) throws {
    let destinations = range.map(destination)
    let chains = try chainsAhead.chains(range, blockCount: blockCount) { try versionChains($0) }
    var assembled = assemble(range, chains, destinations)
    if assembled.contains(where: { if case .failure = $0 { true } else { false } }) {
      // Another process's prune may have moved chunks to a new pack between the catalog
      // read and the pack reads (the old pack is then gone): read where they are now.
      chainsAhead.forget(range)
      let current = try versionChains(range)
      if current != chains { assembled = assemble(range, current, destinations) }
    }
    for (result, destination) in zip(assembled, destinations) {
      let bytes = try result.get()
      if case .copied(let give) = destination { try give(bytes) }
    }
  }

  private func versionChains(_ range: Range<UInt64>) throws -> [[BlockVersion]] {
    try live.catalog.database.read { db in
      try range.map { try Catalog.versionChain(db, lineage: lineage, block: $0, atOrBefore: resolved.seq) }
    }
  }

  /// Assembles each block of `range` on one of several threads, in place where its
  /// destination says so; the result holds the bytes of the others (nil: zeros).
  private func assemble(
    _ range: Range<UInt64>, _ chains: [[BlockVersion]], _ destinations: [BlockDestination]
  ) -> [Result<[UInt8]?, ReelError>] {
    let blockSize = UInt64(descriptor.storeBlockSize)
    var wanted: [ChunkKey: ChunkLocation] = [:]
    for chain in chains {
      for version in chain {
        if let key = version.key, let location = version.location { wanted[key] = location }
        for base in version.deltaBases { wanted[.named(base.name)] = base.location }
      }
    }
    let places = destinations.map { destination -> UnsafeMutableRawBufferPointer? in
      if case .inPlace(let place) = destination { place } else { nil }
    }
    let live = self.live
    let size = self.size
    let name = descriptor.name
    return live.withRecords(wanted) { records in
      nonisolated(unsafe) let records = records
      nonisolated(unsafe) let places = places
      return parallelMap(Array(zip(range, chains).enumerated()), workers: 4) {
        _, item -> Result<[UInt8]?, ReelError> in
        let (index, (block, chain)) = item
        let length = Int(min(blockSize, size - block * blockSize))
        do {
          if let place = places[index] {
            try live.assemble(chain, into: place, records: records)
            return .success(nil)
          }
          if chain.allSatisfy({ $0.key == nil }) { return .success(nil) }
          return .success(try live.assemble(chain, length: length, records: records))
        } catch let error as ReelError {
          return .failure(
            ReelError(
              error.kind,
              "\(error.message) — affects volume \(name) bytes \(block * blockSize)..<\(block * blockSize + UInt64(length)) as of seq \(chain.last?.seq ?? 0) and later",
              remedy: error.remedy))
        } catch {
          return .failure(ReelError(.io, "\(error)"))
        }
      }
    }
  }

  var blockCount: UInt64 {
    (size + UInt64(descriptor.storeBlockSize) - 1) / UInt64(descriptor.storeBlockSize)
  }

  static func resolve(_ point: Point, descriptor: VolumeDescriptor, catalog: Catalog) throws -> ResolvedPoint {
    let volumeID = descriptor.id.description
    let name = descriptor.name
    return try catalog.database.read { db in
      let state = try Row.fetchOne(
        db, sql: "SELECT ingested_seq, retained_from_seq FROM ingest_state WHERE volume_id = ?",
        arguments: [volumeID])
      let ingested = Seq(state?["ingested_seq"] as Int64? ?? 0)
      let retainedFrom = Seq(state?["retained_from_seq"] as Int64? ?? 0)
      // A clone's history starts at its clone point: the origin's state there, at the
      // clone's creation time. Earlier points belong to the origin.
      let origin = try Catalog.origin(db, of: volumeID)
      let firstSeq = origin?.originSeq ?? 0
      let losses = try Catalog.losses(db, of: volumeID)
      func beforeClone(_ what: String) throws -> ReelError {
        let originName =
          try String.fetchOne(db, sql: "SELECT name FROM volume WHERE id = ?", arguments: [origin!.originVolumeID])
          ?? origin!.originVolumeID
        return ReelError(
          .notFound,
          "\(what) is before volume \(name) existed: \(name) was cloned from \(originName) at seq \(firstSeq) (\(descriptor.created.rfc3339)); use \(originName)",
          remedy:
            "read \(originName) for points up to seq \(firstSeq), or pick a point of \(name) from seq \(firstSeq) on")
      }
      func time(of seq: Seq) throws -> Timestamp {
        guard seq > firstSeq,
          let nanoseconds = try Int64.fetchOne(
            db, sql: "SELECT time_ns FROM record_time WHERE volume = \(Catalog.volumeNumber) AND seq = ?",
            arguments: [volumeID, Int64(seq)])
        else { return descriptor.created }
        return Timestamp(nanoseconds: nanoseconds)
      }
      switch point {
      case .latest:
        return ResolvedPoint(seq: ingested, time: try time(of: ingested), point: point)
      case .seq(let seq):
        guard seq <= ingested else {
          if let loss = losses.first(where: { $0.fromSeq <= seq && seq <= $0.untilSeq }) {
            throw loss.refusal("seq \(seq)", volume: name)
          }
          throw ReelError(
            .notFound, "volume \(name) has no seq \(seq); its history ends at seq \(ingested)",
            remedy: "pick a seq up to \(ingested), or use `latest`")
        }
        if origin != nil && seq < firstSeq { throw try beforeClone("seq \(seq)") }
        guard seq >= retainedFrom else {
          throw ReelError(
            .notFound, "seq \(seq) of volume \(name) was pruned; history is kept from seq \(retainedFrom)",
            remedy: "pick a later point, or rehydrate the older history from sealed archives")
        }
        return ResolvedPoint(seq: seq, time: try time(of: seq), point: point)
      case .bookmark(let label):
        guard
          let row = try Row.fetchOne(
            db,
            sql: "SELECT seq, time_ns FROM bookmark WHERE volume_id = ? AND label = ? ORDER BY seq DESC LIMIT 1",
            arguments: [volumeID, label])
        else {
          // `Point(parsing:)` cannot throw, so a mistyped time arrives here as a label.
          if let invalid = Point.invalidTime(ifTimeLike: label) { throw invalid }
          let known = try String.fetchAll(
            db, sql: "SELECT label FROM bookmark WHERE volume_id = ? ORDER BY seq", arguments: [volumeID])
          let lost =
            losses.first.map {
              "; history from seq \($0.fromSeq) on was lost to damage (\($0.description)), and a bookmark there is not in the store"
            } ?? ""
          throw ReelError(
            .notFound, "volume \(name) has no bookmark \"\(label)\"\(lost)",
            remedy: known.isEmpty
              ? "the volume has no bookmarks yet; give a time (RFC 3339, UTC) or `latest`"
              : "known bookmarks: \(known.map { "\"\($0)\"" }.joined(separator: ", "))")
        }
        return ResolvedPoint(
          seq: Seq(row["seq"] as Int64), time: Timestamp(nanoseconds: row["time_ns"]), point: point)
      case .time(let time):
        if origin != nil && time < descriptor.created { throw try beforeClone(time.rfc3339) }
        guard time >= descriptor.created else {
          throw ReelError(
            .notFound, "\(time.rfc3339) is before volume \(name) existed (created \(descriptor.created.rfc3339))",
            remedy: "pick a time from \(descriptor.created.rfc3339) on; `reel timeline \(name)` shows the range")
        }
        let row = try Catalog.lastRecord(db, volume: volumeID, atOrBefore: time.nanoseconds)
        let seq = Seq(row?.seq ?? Int64(firstSeq))
        guard seq >= retainedFrom, row != nil || retainedFrom == firstSeq else {
          throw ReelError(
            .notFound,
            "\(time.rfc3339) is older than the history kept for volume \(name) (pruned before seq \(retainedFrom))",
            remedy: "pick a later time, or rehydrate the older history from sealed archives")
        }
        var resolved = ResolvedPoint(
          seq: seq, time: row.map { Timestamp(nanoseconds: $0.time) } ?? descriptor.created, point: point)
        // After the last record the store holds, where history was lost: the state at that
        // time is not the one before the loss.
        if let loss = losses.first(where: {
          $0.fromSeq > seq && ($0.fromTime.map { $0 <= time } ?? (time > resolved.time))
        }) {
          throw loss.refusal(time.rfc3339, volume: name)
        }
        if time > Timestamp.now() {
          resolved.warning =
            "\(time.rfc3339) is in the future; using the latest state of volume \(name): seq \(resolved.seq), \(resolved.time.rfc3339)"
        }
        return resolved
      }
    }
  }
}
