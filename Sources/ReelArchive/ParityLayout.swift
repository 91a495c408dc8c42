import Foundation
import ReelCodec
import ReelCore
import ReelParity

/// The shape of an archive's Reed–Solomon parity (format version 4, docs/archive-format.md
/// "Parity"): bytes `0 ..< P` of the archive file cut into shards of S bytes; a span is k
/// rows of D consecutive shards, and stripe d of a span is shard d of each row (so a run
/// of damage up to D shards long hits each stripe at most once), protected by m parity
/// shards. Every number here is range-checked before it sizes anything.
package struct ParityGeometry: Sendable, Equatable {
  package var shardSize: Int
  package var dataRows: Int
  package var parityRows: Int
  package var stripes: Int
  package var protectedBytes: UInt64
  package var spans: Int
  package var percent: Int

  package static let percentRange = 0...50
  package static let defaultPercent = 5
  /// The longest run of damage every geometry survives with one parity row: a 1 MiB tape
  /// record, plus the shard a misaligned run spills into.
  static let guaranteedRun = 1 << 20
  /// A span's data shards at most: bounds the memory of sealing and repair.
  static let maximumSpanBytes = 64 << 20
  /// The most a span's data and parity together may take in a header a reader accepts.
  static let maximumSpanBufferBytes = 128 << 20
  static let tableBlockEntries = 1024
  static let tarHeaderRoom = 4096
  static let headerSize = 256

  package var dataShards: Int { Int((protectedBytes + UInt64(shardSize) - 1) / UInt64(shardSize)) }
  var spanShards: Int { dataRows * stripes }
  var rowBytes: Int { stripes * shardSize }
  var parityShardCount: Int { spans * parityRows * stripes }
  var tableEntries: Int { dataShards + parityShardCount }
  var tableBlocks: Int { (tableEntries + Self.tableBlockEntries - 1) / Self.tableBlockEntries }
  /// One copy of the shard table with its header, padded to whole tar blocks.
  var copySize: Int {
    let raw = Self.headerSize + Self.tarHeaderRoom + 4 * tableEntries + 4 * tableBlocks
    return (raw + 511) / 512 * 512
  }
  var parityBytes: UInt64 { UInt64(parityShardCount) * UInt64(shardSize) }
  /// The PARITY member's size: a table copy, the parity shards, the other copy.
  package var memberSize: UInt64 { 2 * UInt64(copySize) + parityBytes }

  func dataShards(inSpan span: Int) -> Int { min(spanShards, dataShards - span * spanShards) }

  /// Where the parity shards of a span start in stored order: the stripe after the span's
  /// last data shard, so a run of damage across the end of the data and the start of the
  /// parity still meets each stripe once.
  func rotation(ofSpan span: Int) -> Int { dataShards(inSpan: span) % stripes }

  /// Parity shard (span, row, stripe)'s position among the stored parity shards.
  func storedParityIndex(span: Int, row: Int, stripe: Int) -> Int {
    (span * parityRows + row) * stripes + (stripe - rotation(ofSpan: span) + stripes) % stripes
  }

  /// The geometry for an archive of at most `capacity` protected bytes; `fitted` then
  /// records the exact size. Stripes are made as wide as GF(2^8) allows (k + m up to 255):
  /// scattered damage (1 % of blocks) then stays within each stripe's m. Every geometry
  /// has m · D ≥ 257 shards: a 1 MiB run, wherever it starts, costs each stripe at most
  /// m shards, and even a small archive carries that floor (about 1 MiB). Among the shapes
  /// whose parity is within 1 % of the least, the widest stripes win, then the most
  /// stripes per span (longer runs survive); a span's data stays within 64 MiB.
  package static func plan(capacity: UInt64, percent: Int) -> ParityGeometry {
    precondition(percentRange.contains(percent) && percent > 0 && capacity > 0)
    var shardSize = 4096
    while shardSize < 1 << 20 && capacity / UInt64(shardSize) > 262_144 { shardSize *= 2 }
    let floorShards = (guaranteedRun + shardSize - 1) / shardSize + 1
    let shards = Int((capacity + UInt64(shardSize) - 1) / UInt64(shardSize))
    func parityRows(_ rows: Int, _ stripes: Int) -> Int {
      max((floorShards + stripes - 1) / stripes, (rows * percent + 99) / 100)
    }
    struct Candidate {
      var cost, width, stripes, rows, parity, spans: Int
    }
    var candidates: [Candidate] = []
    for stripes in 2...max(2, floorShards) {
      var widest = min(ReedSolomon.maximumShards - 1, maximumSpanBytes / (stripes * shardSize))
      while widest > 0 && widest + parityRows(widest, stripes) > ReedSolomon.maximumShards { widest -= 1 }
      guard widest >= 1 else { continue }
      let spans = (shards + widest * stripes - 1) / (widest * stripes)
      let rows = (shards + spans * stripes - 1) / (spans * stripes)
      let parity = parityRows(rows, stripes)
      guard rows + parity <= ReedSolomon.maximumShards else { continue }
      candidates.append(
        Candidate(
          cost: spans * parity * stripes, width: rows + parity, stripes: stripes, rows: rows, parity: parity,
          spans: spans))
    }
    let least = candidates.map(\.cost).min()!
    let chosen = candidates.filter { $0.cost * 100 <= least * 101 }.max { a, b in
      a.width != b.width ? a.width < b.width : a.stripes < b.stripes
    }!
    return ParityGeometry(
      shardSize: shardSize, dataRows: chosen.rows, parityRows: chosen.parity, stripes: chosen.stripes,
      protectedBytes: capacity, spans: chosen.spans, percent: percent)
  }

  /// This geometry for exactly `protectedBytes` (at most the planned capacity).
  func fitted(protectedBytes: UInt64) -> ParityGeometry {
    var fitted = self
    fitted.protectedBytes = protectedBytes
    fitted.spans = max(1, (fitted.dataShards + spanShards - 1) / spanShards)
    precondition(fitted.spans <= spans, "parity capacity \(self.protectedBytes) exceeded by \(protectedBytes)")
    return fitted
  }
}

/// The header that starts each copy of the shard table (docs/archive-format.md, "The
/// PARITY member"): the geometry, what it protects, and whose it is.
package struct ParityHeader: Sendable, Equatable {
  package static let magic = Array("REELPRTY".utf8)
  package static let layoutVersion: UInt16 = 1

  package var geometry: ParityGeometry
  /// 0: the copy before the parity shards; 1: the one after.
  package var copy: Int
  package var protectedSHA256: [UInt8]
  package var archiveID: UUID
  /// PARITY's own tar headers as written (bytes P ..< P + count), so a repair writes
  /// them back exactly.
  package var tarHeader: [UInt8]

  func encoded() -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: ParityGeometry.headerSize + ParityGeometry.tarHeaderRoom)
    let g = geometry
    bytes.replaceSubrange(0..<8, with: Self.magic)
    storeLE(&bytes, 8, UInt64(Self.layoutVersion), 2)
    storeLE(&bytes, 10, UInt64(copy), 2)
    storeLE(&bytes, 12, UInt64(g.shardSize), 4)
    storeLE(&bytes, 16, UInt64(g.dataRows), 2)
    storeLE(&bytes, 18, UInt64(g.parityRows), 2)
    storeLE(&bytes, 20, UInt64(g.stripes), 4)
    storeLE(&bytes, 24, g.protectedBytes, 8)
    storeLE(&bytes, 32, UInt64(g.dataShards), 8)
    storeLE(&bytes, 40, UInt64(g.spans), 4)
    storeLE(&bytes, 44, UInt64(tarHeader.count), 4)
    bytes.replaceSubrange(48..<80, with: protectedSHA256)
    withUnsafeBytes(of: archiveID.uuid) { bytes.replaceSubrange(80..<96, with: $0) }
    storeLE(&bytes, 96, UInt64(g.percent), 4)
    storeLE(&bytes, 100, UInt64(g.tableEntries), 4)
    storeLE(&bytes, 104, UInt64(g.tableBlocks), 4)
    storeLE(&bytes, 108, UInt64(ParityGeometry.tableBlockEntries), 4)
    bytes.replaceSubrange(
      ParityGeometry.headerSize..<(ParityGeometry.headerSize + tarHeader.count), with: tarHeader)
    storeLE(&bytes, 252, UInt64(Self.checksum(bytes)), 4)
    return bytes
  }

  /// Archives larger than this (1 PiB, far past any Reel writes) have no readable parity.
  static let largestFileSize: UInt64 = 1 << 50

  /// Parses a header; nil when the magic, the CRC or any field's range is wrong. Sizes are
  /// checked against `fileSize` so a hostile header cannot make a reader allocate much.
  static func decode(_ bytes: [UInt8], fileSize: UInt64) -> ParityHeader? {
    // A bound, not always a real size (a streaming verifier's is 64 times what the member
    // claims, saturated at 2^64 − 1): capped where no product below can overflow.
    let fileSize = min(fileSize, Self.largestFileSize)
    guard bytes.count >= ParityGeometry.headerSize + ParityGeometry.tarHeaderRoom,
      Array(bytes[0..<8]) == magic,
      loadLE(bytes, 252, 4) == UInt64(Self.checksum(bytes)),
      loadLE(bytes, 8, 2) == UInt64(layoutVersion)
    else { return nil }
    let shardSize = Int(loadLE(bytes, 12, 4))
    let rows = Int(loadLE(bytes, 16, 2))
    let parityRows = Int(loadLE(bytes, 18, 2))
    let stripes = Int(loadLE(bytes, 20, 4))
    let protected = loadLE(bytes, 24, 8)
    let spans = Int(loadLE(bytes, 40, 4))
    let tarHeaderCount = Int(loadLE(bytes, 44, 4))
    let copy = Int(loadLE(bytes, 10, 2))
    guard shardSize >= 512, shardSize <= 1 << 20, shardSize & (shardSize - 1) == 0,
      rows >= 1, parityRows >= 1, rows + parityRows <= 255, rows <= 255,
      stripes >= 1, stripes <= 1 << 16,
      protected >= 1, protected <= fileSize,
      spans >= 1, copy == 0 || copy == 1,
      tarHeaderCount <= ParityGeometry.tarHeaderRoom,
      // A span's buffers, data and parity, bounded whatever the header says: repair holds
      // three spans at once. Reel writes at most 64 MiB of data with at most 50 % parity
      // (or the ~1 MiB floor), so 128 MiB refuses nothing it wrote.
      (rows + parityRows) * stripes * shardSize <= ParityGeometry.maximumSpanBufferBytes
    else { return nil }
    let geometry = ParityGeometry(
      shardSize: shardSize, dataRows: rows, parityRows: parityRows, stripes: stripes, protectedBytes: protected,
      spans: spans, percent: Int(loadLE(bytes, 96, 4)))
    guard loadLE(bytes, 32, 8) == UInt64(geometry.dataShards),
      geometry.spans == (geometry.dataShards + geometry.spanShards - 1) / geometry.spanShards,
      loadLE(bytes, 100, 4) == UInt64(geometry.tableEntries), loadLE(bytes, 104, 4) == UInt64(geometry.tableBlocks),
      loadLE(bytes, 108, 4) == UInt64(ParityGeometry.tableBlockEntries),
      geometry.memberSize <= fileSize * 2
    else { return nil }
    var uuid: uuid_t = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    withUnsafeMutableBytes(of: &uuid) { $0.copyBytes(from: bytes[80..<96]) }
    let start = ParityGeometry.headerSize
    return ParityHeader(
      geometry: geometry, copy: copy, protectedSHA256: Array(bytes[48..<80]), archiveID: UUID(uuid: uuid),
      tarHeader: Array(bytes[start..<(start + tarHeaderCount)]))
  }

  /// CRC-32C of the header's bytes 0..<252, then of its tar-header room (256..<4352).
  private static func checksum(_ bytes: [UInt8]) -> UInt32 {
    var crc = CRC32C()
    crc.update(bytes[0..<252])
    crc.update(bytes[ParityGeometry.headerSize..<(ParityGeometry.headerSize + ParityGeometry.tarHeaderRoom)])
    return crc.value
  }

  /// A whole table copy: this header, then the shard CRCs, then a CRC per 1024 of them.
  func copyBytes(table: [UInt32]) -> [UInt8] {
    precondition(table.count == geometry.tableEntries)
    var bytes = encoded()
    bytes.reserveCapacity(geometry.copySize)
    var entries = [UInt8](repeating: 0, count: 4 * table.count)
    for (index, crc) in table.enumerated() { storeLE(&entries, 4 * index, UInt64(crc), 4) }
    bytes += entries
    for block in 0..<geometry.tableBlocks {
      let first = 4 * block * ParityGeometry.tableBlockEntries
      let range = first..<min(entries.count, first + 4 * ParityGeometry.tableBlockEntries)
      var crc = [UInt8](repeating: 0, count: 4)
      storeLE(&crc, 0, UInt64(CRC32C.checksum(entries[range])), 4)
      bytes += crc
    }
    bytes += [UInt8](repeating: 0, count: geometry.copySize - bytes.count)
    return bytes
  }

  /// The table entries of a copy's bytes, nil where their block's CRC fails.
  func tableEntries(ofCopy bytes: [UInt8]) -> [UInt32?] {
    let g = geometry
    var result = [UInt32?](repeating: nil, count: g.tableEntries)
    let start = ParityGeometry.headerSize + ParityGeometry.tarHeaderRoom
    let sums = start + 4 * g.tableEntries
    guard bytes.count >= sums + 4 * g.tableBlocks else { return result }
    for block in 0..<g.tableBlocks {
      let first = block * ParityGeometry.tableBlockEntries
      let last = min(g.tableEntries, first + ParityGeometry.tableBlockEntries)
      let range = (start + 4 * first)..<(start + 4 * last)
      guard UInt64(CRC32C.checksum(bytes[range])) == loadLE(bytes, sums + 4 * block, 4) else { continue }
      for entry in first..<last { result[entry] = UInt32(loadLE(bytes, start + 4 * entry, 4)) }
    }
    return result
  }
}

private func storeLE(_ bytes: inout [UInt8], _ offset: Int, _ value: UInt64, _ width: Int) {
  for index in 0..<width { bytes[offset + index] = UInt8(truncatingIfNeeded: value >> (8 * UInt64(index))) }
}

private func loadLE(_ bytes: [UInt8], _ offset: Int, _ width: Int) -> UInt64 {
  var value: UInt64 = 0
  for index in 0..<width { value |= UInt64(bytes[offset + index]) << (8 * UInt64(index)) }
  return value
}
