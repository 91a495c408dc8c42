import Foundation
import ReelCodec
import ReelCore
import ReelIO
import ReelParity

/// What a look at an archive's parity found: where it is damaged, whether parity rebuilt
/// (or can rebuild) each damaged range, and how much margin the worst stripe had left.
package struct ParityRepairReport: Sendable {
  package struct DamagedRange: Sendable, Equatable {
    package enum Region: String, Sendable {
      /// Bytes 0 ..< P: the members before PARITY.
      case data
      /// PARITY's parity shards.
      case parity
      /// PARITY's tar headers, a shard-table copy, or the tar end.
      case layout
    }
    package var offset: UInt64
    package var length: UInt64
    package var repaired: Bool
    package var region: Region
  }

  package var path: String
  package var geometry: ParityGeometry
  package var ranges: [DamagedRange]
  /// Shards lost in the stripe that lost most (data and parity), and stripes that lost
  /// more than their parity rows.
  package var worstStripeLoss: Int
  package var lostStripes: Int
  /// The protected bytes are (or, with an output, were written) exactly the sealed ones:
  /// every damaged shard rebuilt and the result equal to the SHA-256 the parity recorded.
  package var whole: Bool
  /// Damaged shard-table copies that the other copy stood in for.
  package var damagedTableCopies: Int
  /// Shards whose CRCs were lost in both table copies: each was checked against the rest
  /// of its stripe instead (the wrong ones are in `ranges`).
  package var unverifiedShards: Int
  /// The SHA-256 of the whole repaired file (hex), when one was written: the protected
  /// bytes' pass, carried on over the PARITY member, so a reader of the copy need not
  /// hash it again.
  package var outputSHA256: String?

  package var damaged: Bool { !ranges.isEmpty || damagedTableCopies > 0 }

  /// "3 of 12 parity shards used in the worst stripe".
  package var margin: String {
    "\(worstStripeLoss) of \(geometry.parityRows) parity shard\(geometry.parityRows == 1 ? "" : "s") per stripe used in the worst stripe"
  }

  /// One sentence per damaged range.
  package var sentences: [String] {
    ranges.map { range in
      let end = range.offset + range.length
      let what =
        switch range.region {
        case .data: "archive bytes \(range.offset)..<\(end) (\(ByteSize.describe(range.length)))"
        case .parity: "parity shards at bytes \(range.offset)..<\(end) (\(ByteSize.describe(range.length)))"
        case .layout: "parity layout bytes \(range.offset)..<\(end) (\(ByteSize.describe(range.length)))"
        }
      return range.repaired ? "\(what): damaged, repairable from parity" : "\(what): damaged beyond the parity's margin"
    }
  }
}

/// Repair of a version 4 archive from its `PARITY` member (docs/archive-format.md,
/// "Parity"): damage is located by shard CRCs, rebuilt stripe by stripe with Reed–Solomon,
/// and the result is accepted only if it equals the SHA-256 the parity recorded of the
/// protected bytes. Reads a span (at most 64 rows of ~1 MiB) at a time.
package enum ArchiveParity {
  /// The geometry a version 4 archive's PARITY records (nil: no readable PARITY), found
  /// without reading the protected bytes: what `reel inspect` shows.
  package static func geometry(path: String) throws -> ParityGeometry? {
    let file = try PosixFile.openForReading(path)
    return try locate(file: file, size: try file.size(), label: (path as NSString).lastPathComponent)?.header.geometry
  }

  /// Looks at `path` without writing: what is damaged and whether parity can rebuild it.
  package static func inspect(path: String) throws -> ParityRepairReport {
    try repair(input: path, output: nil)
  }

  /// Rebuilds `input` (possibly damaged, truncated or zero-filled where unreadable) into
  /// `output` when given: bytes 0 ..< P repaired, PARITY and the tail written again exactly.
  /// The output appears only whole (written under a temporary name, then renamed); when
  /// the damage is beyond repair, nothing is written and the report says what is lost —
  /// except, when `bestEffort` is given, bytes 0 ..< P with every stripe that could be
  /// rebuilt rebuilt (the rest as read) are left there: what rehydration salvages from.
  /// `durable` false: the output is a scratch copy read at once and removed (rehydration's),
  /// not synced to disk.
  package static func repair(input: String, output: String?, bestEffort: String? = nil, durable: Bool = true) throws
    -> ParityRepairReport
  {
    let file = try PosixFile.openForReading(input)
    let size = try file.size()
    let label = (input as NSString).lastPathComponent
    guard let found = try locate(file: file, size: size, label: label) else {
      throw ReelError(
        .notFound,
        "\(label) has no readable PARITY member (it is an archive of format version 1 to 3, sealed with --parity 0, or both copies of its shard table are lost)",
        remedy: "use another copy of the archive")
    }
    let header = found.header
    let g = header.geometry
    if let manifest = try? ArchiveVerifier.readManifest(path: input),
      manifest.archiveID.lowercased() != header.archiveID.uuidString.lowercased()
    {
      throw ReelError(
        .corrupt,
        "\(label): its PARITY member belongs to archive \(header.archiveID.uuidString.lowercased()), not to this archive (\(manifest.archiveID)); it was spliced in from another archive and cannot repair this one",
        remedy: "use another copy of the archive")
    }
    var table = [UInt32?](repeating: nil, count: g.tableEntries)
    var damagedCopies = 0
    for copy in [found.copyA, found.copyB] {
      let entries = copy.flatMap {
        ParityHeader.decode($0, fileSize: size) != nil ? header.tableEntries(ofCopy: $0) : nil
      }
      guard let entries else {
        damagedCopies += 1
        continue
      }
      if entries.contains(nil) { damagedCopies += 1 }
      for index in table.indices where table[index] == nil { table[index] = entries[index] }
    }
    // Entries lost in both copies leave their shards unverified: the repair checks them
    // against the other shards of their stripes instead.
    let unverified = table.count { $0 == nil }
    var job = try RepairJob(
      file: file, size: size, header: header, copyOffset: found.offsetA, crcs: table, output: output, label: label,
      durable: durable)
    defer { job.discard() }
    try job.run()
    var report = job.report(path: input, damagedTableCopies: damagedCopies, unverifiedShards: unverified)
    report.ranges += try job.layoutDamage(copyA: found.copyA, copyB: found.copyB)
    if let output, report.whole {
      report.outputSHA256 = try job.finishOutput(at: output, durable: durable)
    } else if let bestEffort, output != nil {
      try job.keepPartial(at: bestEffort, durable: durable)
    }
    report.ranges.sort { $0.offset < $1.offset }
    return report
  }

  struct Located {
    var header: ParityHeader
    var offsetA: UInt64
    var copyA: [UInt8]?
    var copyB: [UInt8]?
  }

  /// Finds a shard-table copy by its magic, scanning back from the end at tar-block steps
  /// (PARITY is last), then reads both copies where the geometry puts them.
  static func locate(file: PosixFile, size: UInt64, label: String) throws -> Located? {
    let window = 1 << 20
    var end = size / 512 * 512
    let headerBytes = ParityGeometry.headerSize + ParityGeometry.tarHeaderRoom
    var misplaced: (offset: UInt64, header: ParityHeader)?
    while end > 0 {
      let start = end >= UInt64(window) ? end - UInt64(window) : 0
      let bytes = try file.read(at: start, count: Int(end - start))
      var position = (bytes.count - 512) / 512 * 512
      while position >= 0 {
        if bytes[position] == ParityHeader.magic[0],
          Array(bytes[position..<(position + 8)]) == ParityHeader.magic
        {
          let offset = start + UInt64(position)
          if let header = ParityHeader.decode(try file.read(at: offset, count: headerBytes), fileSize: size) {
            let g = header.geometry
            let offsetA = header.copy == 0 ? offset : offset &- UInt64(g.copySize) &- g.parityBytes
            if offsetA == g.protectedBytes + UInt64(header.tarHeader.count) {
              let copyA = try file.read(at: offsetA, count: g.copySize)
              let copyB = try file.read(at: offsetA + UInt64(g.copySize) + g.parityBytes, count: g.copySize)
              var chosen = header
              chosen.copy = 0
              for copy in [copyA, copyB] {
                guard var other = ParityHeader.decode(copy, fileSize: size) else { continue }
                other.copy = 0
                guard other == chosen else {
                  throw ReelError(
                    .corrupt, "\(label): the two copies of the PARITY header disagree; it cannot be trusted",
                    remedy: "use another copy of the archive")
                }
              }
              return Located(
                header: chosen, offsetA: offsetA, copyA: copyA.count == g.copySize ? copyA : nil,
                copyB: copyB.count == g.copySize ? copyB : nil)
            }
            misplaced = misplaced ?? (offset, header)
          }
        }
        position -= 512
      }
      end = start
    }
    if let misplaced {
      let g = misplaced.header.geometry
      throw ReelError(
        .corrupt,
        "\(label): the PARITY table at byte \(misplaced.offset) describes \(g.protectedBytes) protected bytes of archive \(misplaced.header.archiveID.uuidString.lowercased()), which do not end where this file's PARITY begins: it was spliced in from another archive (or the file was cut and joined) and cannot repair this one",
        remedy: "use another copy of the archive")
    }
    return nil
  }
}

/// One repair's state: the span buffers, what was found, the output being written.
private struct RepairJob {
  let file: PosixFile
  let size: UInt64
  let header: ParityHeader
  let copyOffset: UInt64
  /// Each shard's CRC-32C; nil where both table copies lost it, until the repair has
  /// checked that shard against its stripe and filled in the CRC of what it holds.
  var crcs: [UInt32?]
  let label: String
  let codec: ReedSolomon
  /// GF(2^8) multiplications left for finding wrong shards among unverified ones
  /// (`ReedSolomon.reconstruct(…searchBudget:)`): 2·10^9 plus 64 per byte of the file —
  /// about 0.4 s of trials plus 14 s per GiB on the development machine (a trial at k = 136
  /// costs 2.5·10^6 and took 0.24 ms). ArchiveParityTests' repair of 1024 unverified shards
  /// needs 176 trials; a 1.1 MB hostile file (reel-fuzz) ran 50,000 trials per stripe, 13 s.
  var searchBudget: Int
  var damagedShards:
    [(offset: UInt64, length: UInt64, repaired: Bool, region: ParityRepairReport.DamagedRange.Region)] =
      []
  var worst = 0
  var lostStripes = 0
  let hasher = SHA256Hasher()
  /// The protected bytes' hash, to be carried on over the rest of the output file.
  var wholeFile: SHA256Hasher?
  var shaMatches = false
  let outputFile: PosixFile?
  let temporary: String?
  /// A copy that is kept is written past the page cache (it is not read again soon); a
  /// scratch copy goes through it, as rehydration reads it back at once.
  let durable: Bool

  init(
    file: PosixFile, size: UInt64, header: ParityHeader, copyOffset: UInt64, crcs: [UInt32?], output: String?,
    label: String, durable: Bool
  ) throws {
    self.file = file
    self.durable = durable
    self.size = size
    self.header = header
    self.copyOffset = copyOffset
    self.crcs = crcs
    self.label = label
    let g = header.geometry
    codec = try ReedSolomon(dataShards: g.dataRows, parityShards: g.parityRows)
    searchBudget = 2_000_000_000 + 64 * Int(min(size, UInt64(Int.max / 128)))
    if let output {
      let folder = Durable.parent(of: Durable.absolute(output))
      let temporary = folder + "/.\((output as NSString).lastPathComponent).repair-partial"
      let outputFile = try PosixFile.createNew(temporary, readable: false, mode: 0o600, leftover: true)
      self.temporary = temporary
      self.outputFile = outputFile
    } else {
      temporary = nil
      outputFile = nil
    }
  }

  func discard() {
    if let temporary { unlink(temporary) }
  }

  /// Reads span after span, the next one on another thread while this one is checked and
  /// rebuilt, and the one before is hashed and written on a third: the disk keeps
  /// streaming. With an output the parity shards are written as stored, the ones rebuilt
  /// put back (an intact shard matches its CRC, and a rebuilt one is computed from data
  /// that matches theirs), so nothing is encoded again; the protected bytes go to the disk
  /// directly, not through the page cache (written once, not read again soon).
  mutating func run() throws {
    let g = header.geometry
    let shardSize = g.shardSize
    let parityStart = copyOffset + UInt64(g.copySize)
    // One span being read, one checked and rebuilt, one hashed and written.
    let buffers = (0..<3).map { _ in SpanBuffers(geometry: g) }
    let durable = durable
    let direct = durable ? outputFile.flatMap { DirectIO.direct($0, writing: true) } : nil
    let directInput = DirectIO.direct(file, writing: false)
    nonisolated(unsafe) let hasher = hasher
    let parity = UnsafeMutableRawBufferPointer.allocate(byteCount: g.parityRows * g.rowBytes, alignment: 64)
    defer {
      for buffer in buffers { buffer.deallocate() }
      parity.deallocate()
    }
    let parityBase = parity.baseAddress!.assumingMemoryBound(to: UInt8.self)
    func startReading(_ spanIndex: Int) -> BackgroundTask<SpanRead> {
      let buffer = buffers[spanIndex % 3]
      let first = UInt64(spanIndex * g.spanShards) * UInt64(shardSize)
      let dataBytes = Int(min(g.protectedBytes - first, UInt64(g.dataShards(inSpan: spanIndex) * shardSize)))
      let storedStart = parityStart + UInt64(spanIndex * g.parityRows * g.stripes) * UInt64(shardSize)
      return BackgroundTask(name: "reel-repair-read") { [file, size] in
        var data: Int?
        // Direct reads of whole aligned blocks (past the span's end into what follows,
        // which is then dropped); through the cache where they are refused.
        if let directInput, first % UInt64(DirectIO.alignment) == 0 {
          let padded = (dataBytes + DirectIO.alignment - 1) / DirectIO.alignment * DirectIO.alignment
          if padded <= buffer.data.count {
            data = (try? Self.readAvailable(directInput, size, into: buffer.data, count: padded, at: first))
              .map { min($0, dataBytes) }
          }
        }
        return SpanRead(
          data: try data ?? Self.readAvailable(file, size, into: buffer.data, count: dataBytes, at: first),
          stored: try Self.readAvailable(file, size, into: buffer.stored, count: buffer.stored.count, at: storedStart))
      }
    }
    var reading = startReading(0)
    // Each span's hashing (in order, each after the one before) and writing.
    var hashed: BackgroundTask<Void>?
    var inFlight: [(hashed: BackgroundTask<Void>, written: BackgroundTask<Void>?)] = []
    defer {
      for work in inFlight {
        _ = try? work.hashed.value()
        _ = try? work.written?.value()
      }
    }
    for spanIndex in 0..<g.spans {
      try Interrupt.check()
      let read = try reading.value()
      // The next span's buffer is free once the span two before this one is hashed and written.
      if inFlight.count == 2 {
        let done = inFlight.removeFirst()
        try done.hashed.value()
        try done.written?.value()
      }
      if spanIndex + 1 < g.spans { reading = startReading(spanIndex + 1) }
      let span = buffers[spanIndex % 3].data
      let stored = buffers[spanIndex % 3].stored
      let spanBase = span.baseAddress!.assumingMemoryBound(to: UInt8.self)
      let first = spanIndex * g.spanShards
      let count = g.dataShards(inSpan: spanIndex)
      let byteStart = UInt64(first) * UInt64(shardSize)
      let byteCount = Int(min(g.protectedBytes - byteStart, UInt64(count * shardSize)))
      // What was not read (a truncated file, the last shard's padding) counts as zeros.
      UnsafeMutableRawBufferPointer(rebasing: span[read.data...]).initializeMemory(as: UInt8.self, repeating: 0)
      UnsafeMutableRawBufferPointer(rebasing: stored[read.stored...]).initializeMemory(as: UInt8.self, repeating: 0)
      var lostData = Set<Int>()
      var unverifiedData = Set<Int>()
      for local in 0..<count {
        let range = (local * shardSize)..<((local + 1) * shardSize)
        if range.lowerBound >= read.data {
          lostData.insert(local)
        } else if let expected = crcs[first + local] {
          if CRC32C.checksum(UnsafeRawBufferPointer(rebasing: span[range])) != expected { lostData.insert(local) }
        } else {
          unverifiedData.insert(local)
        }
      }
      let storedStart = parityStart + UInt64(spanIndex * g.parityRows * g.stripes) * UInt64(shardSize)
      var lostParity = Set<Int>()  // row * stripes + stripe
      var unverifiedParity = Set<Int>()
      let rotation = g.rotation(ofSpan: spanIndex)
      let firstParityEntry = g.dataShards + spanIndex * g.parityRows * g.stripes
      for row in 0..<g.parityRows {
        for position in 0..<g.stripes {
          let from = (row * g.stripes + position) * shardSize
          let slot = row * g.stripes + (position + rotation) % g.stripes
          let expected = crcs[firstParityEntry + row * g.stripes + position]
          if from < read.stored, expected == nil {
            unverifiedParity.insert(slot)
          } else if from >= read.stored
            || CRC32C.checksum(UnsafeRawBufferPointer(rebasing: stored[from..<(from + shardSize)])) != expected
          {
            lostParity.insert(slot)
            damagedShards.append(
              (storedStart + UInt64(from), UInt64(shardSize), true, .parity))
          }
        }
      }
      /// Where parity row `row` (counted from the data rows) of `stripe` is stored in the span's buffer.
      func storedOffset(row: Int, stripe: Int) -> Int {
        ((row - g.dataRows) * g.stripes + (stripe - rotation + g.stripes) % g.stripes) * shardSize
      }
      var unrepaired = Set<Int>()
      if !lostData.isEmpty || !lostParity.isEmpty || !unverifiedData.isEmpty || !unverifiedParity.isEmpty {
        // Stored parity shards, put back in stripe order for the decoder.
        for row in 0..<g.parityRows {
          for position in 0..<g.stripes {
            let from = (row * g.stripes + position) * shardSize
            let to = (row * g.stripes + (position + rotation) % g.stripes) * shardSize
            UnsafeMutableRawBufferPointer(rebasing: parity[to..<(to + shardSize)])
              .copyMemory(from: UnsafeRawBufferPointer(rebasing: stored[from..<(from + shardSize)]))
          }
        }
        for stripe in 0..<g.stripes {
          var erased: [Int] = []
          for row in 0..<g.dataRows where lostData.contains(row * g.stripes + stripe) { erased.append(row) }
          for row in 0..<g.parityRows where lostParity.contains(row * g.stripes + stripe) {
            erased.append(g.dataRows + row)
          }
          var suspects: [Int] = []
          for row in 0..<g.dataRows where unverifiedData.contains(row * g.stripes + stripe) { suspects.append(row) }
          for row in 0..<g.parityRows where unverifiedParity.contains(row * g.stripes + stripe) {
            suspects.append(g.dataRows + row)
          }
          if erased.isEmpty && suspects.isEmpty { continue }
          let lostHere = erased.filter { $0 < g.dataRows }.map { $0 * g.stripes + stripe }
          let suspectData = suspects.filter { $0 < g.dataRows }.map { $0 * g.stripes + stripe }
          guard erased.count <= g.parityRows else {
            worst = max(worst, erased.count)
            lostStripes += 1
            unrepaired.formUnion(lostHere + suspectData)
            continue
          }
          let pointers =
            (0..<g.dataRows).map { spanBase + ($0 * g.stripes + stripe) * shardSize }
            + (0..<g.parityRows).map { parityBase + ($0 * g.stripes + stripe) * shardSize }
          guard
            let wrong = try codec.reconstruct(
              length: shardSize, shards: pointers, erased: erased, unverified: suspects,
              searchBudget: &searchBudget)
          else {
            // Some unverified shard is wrong, and this stripe's parity cannot say which:
            // every one of them counts as lost.
            worst = max(worst, g.parityRows + 1)
            lostStripes += 1
            unrepaired.formUnion(lostHere + suspectData)
            lostData.formUnion(suspectData)
            for row in suspects where row >= g.dataRows {
              damagedShards.append(
                (storedStart + UInt64(storedOffset(row: row, stripe: stripe)), UInt64(shardSize), false, .parity))
            }
            continue
          }
          worst = max(worst, erased.count + wrong.count)
          for row in wrong {
            if row < g.dataRows {
              lostData.insert(row * g.stripes + stripe)
            } else {
              damagedShards.append(
                (storedStart + UInt64(storedOffset(row: row, stripe: stripe)), UInt64(shardSize), true, .parity))
            }
          }
          erased += wrong
          for local in lostHere where local < count {
            let range = (local * shardSize)..<((local + 1) * shardSize)
            if CRC32C.checksum(UnsafeRawBufferPointer(rebasing: span[range])) != crcs[first + local] {
              unrepaired.insert(local)
            }
          }
          // Rebuilt parity shards go back to where they are stored.
          for row in erased where row >= g.dataRows {
            let from = ((row - g.dataRows) * g.stripes + stripe) * shardSize
            let to = storedOffset(row: row, stripe: stripe)
            UnsafeMutableRawBufferPointer(rebasing: stored[to..<(to + shardSize)])
              .copyMemory(from: UnsafeRawBufferPointer(rebasing: parity[from..<(from + shardSize)]))
          }
        }
      }
      // Unverified shards now hold what their stripes agree on: their CRCs, for the table written again.
      for local in unverifiedData {
        let range = (local * shardSize)..<((local + 1) * shardSize)
        crcs[first + local] = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: span[range]))
      }
      for row in 0..<g.parityRows {
        for position in 0..<g.stripes where crcs[firstParityEntry + row * g.stripes + position] == nil {
          let from = (row * g.stripes + position) * shardSize
          crcs[firstParityEntry + row * g.stripes + position] = CRC32C.checksum(
            UnsafeRawBufferPointer(rebasing: stored[from..<(from + shardSize)]))
        }
      }
      for local in lostData.sorted() {
        let offset = byteStart + UInt64(local * shardSize)
        let length = min(UInt64(shardSize), g.protectedBytes - offset)
        damagedShards.append((offset, length, !unrepaired.contains(local), .data))
      }
      nonisolated(unsafe) let repaired = UnsafeRawBufferPointer(rebasing: span[0..<byteCount])
      nonisolated(unsafe) let storedBytes = UnsafeRawBufferPointer(stored)
      let previous = hashed
      hashed = BackgroundTask(name: "reel-repair-hash") {
        try previous?.value()
        hasher.update(repaired)
      }
      let written = outputFile.map { outputFile in
        BackgroundTask(name: "reel-repair-write") {
          // Direct writes cover whole aligned blocks; the last span's tail goes through the cache.
          let aligned =
            byteStart % UInt64(DirectIO.alignment) == 0 ? byteCount / DirectIO.alignment * DirectIO.alignment : 0
          var rest = 0
          if let direct, aligned > 0 {
            // Some file systems take O_DIRECT and refuse the write: the cache takes it then
            // (and a failing disk fails that write too).
            if (try? direct.write(UnsafeRawBufferPointer(rebasing: repaired[0..<aligned]), at: byteStart)) != nil {
              rest = aligned
            }
          }
          try outputFile.write(UnsafeRawBufferPointer(rebasing: repaired[rest...]), at: byteStart + UInt64(rest))
          try outputFile.write(storedBytes, at: storedStart)
          // The disk writes while the next span is read and checked: the closing sync finds
          // little left to do.
          if durable { outputFile.startWriteback(offset: storedStart, count: UInt64(storedBytes.count)) }
        }
      }
      inFlight.append((hashed!, written))
    }
    while !inFlight.isEmpty {
      let done = inFlight.removeFirst()
      try done.hashed.value()
      try done.written?.value()
    }
  }

  /// Reads what the file holds at `offset` (a truncated file holds less); returns how much.
  private static func readAvailable(
    _ file: PosixFile, _ size: UInt64, into buffer: UnsafeMutableRawBufferPointer, count: Int, at offset: UInt64
  ) throws -> Int {
    guard offset < size else { return 0 }
    let count = Int(min(UInt64(count), size - offset))
    return try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count]), at: offset)
  }

  mutating func report(path: String, damagedTableCopies: Int, unverifiedShards: Int) -> ParityRepairReport {
    wholeFile = hasher.copy()
    shaMatches = hasher.finish().bytes == header.protectedSHA256
    let allRebuilt = !damagedShards.contains { !$0.repaired }
    var ranges: [ParityRepairReport.DamagedRange] = []
    for shard in damagedShards {
      // A repair whose result is not the recorded SHA-256 repaired nothing.
      let repaired = shard.repaired && (shard.region != .data || shaMatches)
      if var last = ranges.last, last.region == shard.region, last.repaired == repaired,
        last.offset + last.length == shard.offset
      {
        last.length += shard.length
        ranges[ranges.count - 1] = last
      } else {
        ranges.append(.init(offset: shard.offset, length: shard.length, repaired: repaired, region: shard.region))
      }
    }
    return ParityRepairReport(
      path: path, geometry: header.geometry, ranges: ranges, worstStripeLoss: worst, lostStripes: lostStripes,
      whole: allRebuilt && shaMatches, damagedTableCopies: damagedTableCopies, unverifiedShards: unverifiedShards)
  }

  /// Damage outside the shards: PARITY's tar headers, the table copies, the tar end.
  func layoutDamage(copyA: [UInt8]?, copyB: [UInt8]?) throws -> [ParityRepairReport.DamagedRange] {
    let g = header.geometry
    var ranges: [ParityRepairReport.DamagedRange] = []
    let tarHeader = try file.read(at: g.protectedBytes, count: header.tarHeader.count)
    if tarHeader != header.tarHeader {
      ranges.append(
        .init(
          offset: g.protectedBytes, length: UInt64(header.tarHeader.count), repaired: true, region: .layout))
    }
    let offsetB = copyOffset + UInt64(g.copySize) + g.parityBytes
    for (offset, copy) in [(copyOffset, copyA), (offsetB, copyB)] {
      let intact = copy.map { bytes in
        ParityHeader.decode(bytes, fileSize: size) != nil && !header.tableEntries(ofCopy: bytes).contains(nil)
      }
      if intact != true {
        ranges.append(.init(offset: offset, length: UInt64(g.copySize), repaired: true, region: .layout))
      }
    }
    let tailStart = offsetB + UInt64(g.copySize)
    let expectedEnd = Self.fileSize(tailStart: tailStart)
    if size < expectedEnd {
      ranges.append(
        .init(offset: max(size, tailStart), length: expectedEnd - max(size, tailStart), repaired: true, region: .layout)
      )
    }
    if size > tailStart {
      let tail = try file.read(at: tailStart, count: Int(min(size, expectedEnd) - tailStart))
      if let firstNonZero = tail.firstIndex(where: { $0 != 0 }), let lastNonZero = tail.lastIndex(where: { $0 != 0 }) {
        ranges.append(
          .init(
            offset: tailStart + UInt64(firstNonZero), length: UInt64(lastNonZero - firstNonZero + 1), repaired: true,
            region: .layout))
      }
    }
    return ranges
  }

  /// The archive's size: the tar end (two zero blocks) after PARITY, padded to a record.
  static func fileSize(tailStart: UInt64) -> UInt64 {
    let record = UInt64(ArchiveFormat.recordSize)
    return (tailStart + 1024 + record - 1) / record * record
  }

  /// Keeps the protected bytes as far as they were rebuilt (a repair beyond the margin).
  func keepPartial(at path: String, durable: Bool) throws {
    guard let outputFile, let temporary else { return }
    try outputFile.truncate(to: header.geometry.protectedBytes)
    if durable { try outputFile.sync() }
    try Durable.rename(temporary, to: Durable.absolute(path))
  }

  /// Writes PARITY again after the repaired bytes and moves the file into place.
  /// Returns the SHA-256 (hex) of the whole file written.
  func finishOutput(at output: String, durable: Bool) throws -> String? {
    guard let outputFile, let temporary else { return nil }
    let g = header.geometry
    guard shaMatches else {
      throw ReelError(
        .corrupt, "\(label): the repaired bytes do not give back the recorded SHA-256; nothing was written")
    }
    try outputFile.write(header.tarHeader, at: g.protectedBytes)
    var first = header
    first.copy = 0
    var last = header
    last.copy = 1
    // Every span was read, so every entry is known by now.
    let table = crcs.map { $0! }
    try outputFile.write(first.copyBytes(table: table), at: copyOffset)
    let offsetB = copyOffset + UInt64(g.copySize) + g.parityBytes
    try outputFile.write(last.copyBytes(table: table), at: offsetB)
    let fileSize = Self.fileSize(tailStart: offsetB + UInt64(g.copySize))
    try outputFile.truncate(to: fileSize)
    // The PARITY member as written (5% of the file), read back from the cache.
    var digest: String?
    if let wholeFile {
      // The output is open for writing only.
      let written = try PosixFile.openForReading(temporary)
      var offset = g.protectedBytes
      while offset < fileSize {
        let piece = try written.read(at: offset, count: Int(min(4 << 20, fileSize - offset)))
        guard !piece.isEmpty else { break }
        wholeFile.update(piece)
        offset += UInt64(piece.count)
      }
      if offset == fileSize { digest = wholeFile.finish().hex }
    }
    if durable { try outputFile.sync() }
    fchmod(outputFile.descriptor, 0o400)
    try Durable.rename(temporary, to: Durable.absolute(output))
    return digest
  }
}

/// One span's buffers: its data shards as read, then its parity shards in stored order.
private struct SpanBuffers: @unchecked Sendable {
  let data: UnsafeMutableRawBufferPointer
  let stored: UnsafeMutableRawBufferPointer

  init(geometry g: ParityGeometry) {
    data = .allocate(byteCount: g.spanShards * g.shardSize, alignment: DirectIO.alignment)
    stored = .allocate(byteCount: g.parityRows * g.rowBytes, alignment: DirectIO.alignment)
  }

  func deallocate() {
    data.deallocate()
    stored.deallocate()
  }
}

/// How many bytes of a span's data and of its stored parity the file held.
private struct SpanRead: Sendable {
  var data: Int
  var stored: Int
}
