import Foundation
import ReelCodec
import ReelCore
import ReelIO
import ReelParity

/// Computes an archive's parity from its bytes as they stream past (`consume`), a row of D
/// shards at a time, with one span's parity in memory; each finished span's parity shards
/// go to `sink` (offset within the parity shards, bytes) in stored order. Memory: one row
/// and one span's parity rows, whatever the archive's size.
final class ParityEncoder {
  let planned: ParityGeometry
  private let codec: ReedSolomon
  private let sink: (UInt64, UnsafeRawBufferPointer) throws -> Void
  private let row: UnsafeMutableRawBufferPointer
  private let parity: UnsafeMutableRawBufferPointer
  private let parityPointers: [UnsafeMutablePointer<UInt8>]
  private var filled = 0
  private var rowInSpan = 0
  private var spanDataShards = 0
  private var sunk: UInt64 = 0
  private var dataCRCs: [UInt32] = []
  private var parityCRCs: [UInt32] = []
  private(set) var consumed: UInt64 = 0
  private let hasher = SHA256Hasher()

  struct Result {
    var geometry: ParityGeometry
    var table: [UInt32]
    var protectedSHA256: [UInt8]
  }

  init(planned: ParityGeometry, sink: @escaping (UInt64, UnsafeRawBufferPointer) throws -> Void) throws {
    self.planned = planned
    self.sink = sink
    codec = try ReedSolomon(dataShards: planned.dataRows, parityShards: planned.parityRows)
    row = .allocate(byteCount: planned.rowBytes, alignment: 64)
    parity = .allocate(byteCount: planned.parityRows * planned.rowBytes, alignment: 64)
    parity.initializeMemory(as: UInt8.self, repeating: 0)
    let base = parity.baseAddress!.assumingMemoryBound(to: UInt8.self)
    parityPointers = (0..<planned.parityRows).map { [rowBytes = planned.rowBytes] in base + $0 * rowBytes }
  }

  deinit {
    row.deallocate()
    parity.deallocate()
  }

  func consume(_ bytes: UnsafeRawBufferPointer) throws {
    hasher.update(bytes)
    consumed += UInt64(bytes.count)
    var offset = 0
    while offset < bytes.count {
      let count = min(bytes.count - offset, row.count - filled)
      UnsafeMutableRawBufferPointer(rebasing: row[filled..<(filled + count)])
        .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)]))
      filled += count
      offset += count
      if filled == row.count { try finishRow() }
    }
  }

  private func finishRow() throws {
    let shardSize = planned.shardSize
    let shards = (filled + shardSize - 1) / shardSize
    if filled < row.count {
      UnsafeMutableRawBufferPointer(rebasing: row[filled...]).initializeMemory(as: UInt8.self, repeating: 0)
    }
    for shard in 0..<shards {
      dataCRCs.append(
        CRC32C.checksum(UnsafeRawBufferPointer(rebasing: row[(shard * shardSize)..<((shard + 1) * shardSize)])))
    }
    codec.update(
      length: row.count, dataIndex: rowInSpan, shard: row.baseAddress!.assumingMemoryBound(to: UInt8.self),
      parity: parityPointers)
    filled = 0
    rowInSpan += 1
    spanDataShards += shards
    if rowInSpan == planned.dataRows { try finishSpan() }
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

  /// Ends the protected bytes: the exact geometry, the shard table, the bytes' SHA-256.
  func finish() throws -> Result {
    if filled > 0 { try finishRow() }
    if rowInSpan > 0 { try finishSpan() }
    let geometry = planned.fitted(protectedBytes: consumed)
    precondition(parityCRCs.count == geometry.parityShardCount && dataCRCs.count == geometry.dataShards)
    return Result(geometry: geometry, table: dataCRCs + parityCRCs, protectedSHA256: hasher.finish().bytes)
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

  func add(to tar: TarWriter, modified: Timestamp) throws {
    tar.tap = nil
    let result = try encoder.finish()
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
        geometry: result.geometry, copy: 0, protectedSHA256: result.protectedSHA256, archiveID: archiveID,
        tarHeader: tarHeader)
      try header.copyBytes(table: result.table).withUnsafeBytes { try write($0) }
      try copyStaged(stagedPath, size: result.geometry.parityBytes, into: write)
      header.copy = 1
      try header.copyBytes(table: result.table).withUnsafeBytes { try write($0) }
    }
  }
}
