import Foundation
import ReelCodec
import ReelCore
import ReelIO
import ReelParity

/// Computes an archive's parity from its bytes as they stream past (`consume`), a few rows
/// of D shards at a time, with one span's parity in memory; each finished span's parity
/// shards go to `sink` (offset within the parity shards, bytes) in stored order. Memory: a
/// group of rows and one span's parity rows, whatever the archive's size.
///
/// Every data row adds into all m parity rows of its span (more than the CPU's cache holds
/// for wide stripes), so rows are added a group at a time, a column slice after another:
/// the slice of parity stays in cache while each row of the group adds into it.
final class ParityEncoder {
  let planned: ParityGeometry
  private let codec: ReedSolomon
  private let sink: (UInt64, UnsafeRawBufferPointer) throws -> Void
  /// Up to `groupRows` rows of the span being read, back to back.
  private let rows: UnsafeMutableRawBufferPointer
  private let groupRows: Int
  private let parity: UnsafeMutableRawBufferPointer
  private let parityPointers: [UnsafeMutablePointer<UInt8>]
  /// Bytes of the current group in `rows`.
  private var filled = 0
  /// The span's rows added into `parity` so far (the group starts there).
  private var rowInSpan = 0
  private var spanDataShards = 0
  private var sunk: UInt64 = 0
  private var dataCRCs: [UInt32] = []
  private var parityCRCs: [UInt32] = []
  private(set) var consumed: UInt64 = 0

  /// Rows buffered before they are added (about 2 MiB of them), and the column slice
  /// each addition covers (its m parity slices fit the L2 cache).
  static let groupBytes = 2 << 20
  static let sliceBytes = 32 << 10

  struct Result {
    var geometry: ParityGeometry
    var table: [UInt32]
  }

  init(planned: ParityGeometry, sink: @escaping (UInt64, UnsafeRawBufferPointer) throws -> Void) throws {
    self.planned = planned
    self.sink = sink
    codec = try ReedSolomon(dataShards: planned.dataRows, parityShards: planned.parityRows)
    groupRows = max(1, min(planned.dataRows, Self.groupBytes / planned.rowBytes))
    rows = .allocate(byteCount: groupRows * planned.rowBytes, alignment: 64)
    parity = .allocate(byteCount: planned.parityRows * planned.rowBytes, alignment: 64)
    parity.initializeMemory(as: UInt8.self, repeating: 0)
    let base = parity.baseAddress!.assumingMemoryBound(to: UInt8.self)
    parityPointers = (0..<planned.parityRows).map { [rowBytes = planned.rowBytes] in base + $0 * rowBytes }
  }

  deinit {
    rows.deallocate()
    parity.deallocate()
  }

  func consume(_ bytes: UnsafeRawBufferPointer) throws {
    consumed += UInt64(bytes.count)
    let rowBytes = planned.rowBytes
    var offset = 0
    while offset < bytes.count {
      let rowEnd = (filled / rowBytes + 1) * rowBytes
      let count = min(bytes.count - offset, rowEnd - filled)
      UnsafeMutableRawBufferPointer(rebasing: rows[filled..<(filled + count)])
        .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)]))
      filled += count
      offset += count
      if filled == rowEnd { try finishRow() }
    }
  }

  /// The row that ends at `filled` (zero-padded to its end): its shard CRCs now, while it
  /// is in cache; the group is added once full or at the span's end.
  private func finishRow() throws {
    let shardSize = planned.shardSize
    let rowBytes = planned.rowBytes
    let rowStart = (filled - 1) / rowBytes * rowBytes
    let shards = (filled - rowStart + shardSize - 1) / shardSize
    let rowEnd = rowStart + rowBytes
    if filled < rowEnd {
      UnsafeMutableRawBufferPointer(rebasing: rows[filled..<rowEnd]).initializeMemory(as: UInt8.self, repeating: 0)
      filled = rowEnd
    }
    for shard in 0..<shards {
      let start = rowStart + shard * shardSize
      dataCRCs.append(CRC32C.checksum(UnsafeRawBufferPointer(rebasing: rows[start..<(start + shardSize)])))
    }
    spanDataShards += shards
    let rowsFilled = filled / rowBytes
    if rowsFilled == groupRows || rowInSpan + rowsFilled == planned.dataRows { addGroup() }
    if rowInSpan == planned.dataRows { try finishSpan() }
  }

  /// Adds the buffered rows into the span's parity, slice by slice.
  private func addGroup() {
    let rowBytes = planned.rowBytes
    let count = filled / rowBytes
    let base = rows.baseAddress!.assumingMemoryBound(to: UInt8.self)
    var column = 0
    while column < rowBytes {
      let length = min(Self.sliceBytes, rowBytes - column)
      let slices = parityPointers.map { $0 + column }
      for row in 0..<count {
        codec.update(length: length, dataIndex: rowInSpan + row, shard: base + row * rowBytes + column, parity: slices)
      }
      column += length
    }
    rowInSpan += count
    filled = 0
  }

  private func finishSpan() throws {
    let shardSize = planned.shardSize
    let rotation = spanDataShards % planned.stripes * shardSize
    for parityRow in 0..<planned.parityRows {
      let base = parityRow * planned.rowBytes
      let tail = UnsafeRawBufferPointer(rebasing: parity[(base + rotation)..<(base + planned.rowBytes)])
      let head = UnsafeRawBufferPointer(rebasing: parity[base..<(base + rotation)])
      for piece in [tail, head] where !piece.isEmpty {
        try sink(sunk, piece)
        sunk += UInt64(piece.count)
        for shard in 0..<(piece.count / shardSize) {
          parityCRCs.append(
            CRC32C.checksum(UnsafeRawBufferPointer(rebasing: piece[(shard * shardSize)..<((shard + 1) * shardSize)])))
        }
      }
    }
    parity.initializeMemory(as: UInt8.self, repeating: 0)
    rowInSpan = 0
    spanDataShards = 0
  }

  /// Ends the protected bytes: the exact geometry and the shard table.
  func finish() throws -> Result {
    if filled % planned.rowBytes > 0 { try finishRow() }
    if filled > 0 { addGroup() }
    if rowInSpan > 0 { try finishSpan() }
    let geometry = planned.fitted(protectedBytes: consumed)
    precondition(parityCRCs.count == geometry.parityShardCount && dataCRCs.count == geometry.dataShards)
    return Result(geometry: geometry, table: dataCRCs + parityCRCs)
  }
}

/// The `PARITY` member of an archive being sealed: the encoder sees every byte of the tar
/// stream before it (through `TarWriter.tap`), stages the parity shards in the seal's
/// staging folder, and `add` writes the member last.
final class ArchiveParityWriter {
  let encoder: ParityEncoder
  private let archiveID: UUID
  private let stagedPath: String

  /// An upper bound of the bytes before PARITY: every member padded to tar blocks plus
  /// room for its headers. The span shape is chosen from it; PARITY records the exact size.
  static func capacity(memberSizes: [UInt64]) -> UInt64 {
    memberSizes.reduce(UInt64(4096)) { $0 + ($1 + 511) / 512 * 512 + 4096 }
  }

  /// nil for `percent` 0 (no parity).
  init?(percent: Int, archiveID: UUID, staging: String, capacity: UInt64) throws {
    guard percent > 0 else { return nil }
    self.archiveID = archiveID
    stagedPath = staging + "/PARITY.shards"
    let staged = try PosixFile.createNew(stagedPath)
    encoder = try ParityEncoder(planned: .plan(capacity: capacity, percent: percent)) { offset, bytes in
      try staged.write(bytes, at: offset)
    }
  }

  /// `tar` hashes its stream (`hashStream`): the protected bytes' SHA-256 is its digest so
  /// far, not a second pass over them.
  func add(to tar: TarWriter, modified: Timestamp) throws {
    tar.tap = nil
    let result = try encoder.finish()
    guard let protectedSHA256 = tar.streamSHA256(soFar: true) else {
      preconditionFailure("archive parity needs the tar stream hashed from its first byte")
    }
    precondition(
      tar.offset == result.geometry.protectedBytes,
      "parity saw \(result.geometry.protectedBytes) of \(tar.offset) bytes")
    var tarHeader: [UInt8] = []
    tar.tap = { tarHeader += $0 }
    try tar.addFile(name: ArchiveFormat.parityName, size: result.geometry.memberSize, modified: modified) { write in
      tar.tap = nil
      guard tarHeader.count <= ParityGeometry.tarHeaderRoom else {
        throw ReelError(
          .io, "PARITY's tar headers took \(tarHeader.count) bytes; at most \(ParityGeometry.tarHeaderRoom) fit")
      }
      var header = ParityHeader(
        geometry: result.geometry, copy: 0, protectedSHA256: protectedSHA256.bytes, archiveID: archiveID,
        tarHeader: tarHeader)
      try header.copyBytes(table: result.table).withUnsafeBytes { try write($0) }
      try copyStaged(stagedPath, size: result.geometry.parityBytes, into: write)
      header.copy = 1
      try header.copyBytes(table: result.table).withUnsafeBytes { try write($0) }
    }
  }
}
