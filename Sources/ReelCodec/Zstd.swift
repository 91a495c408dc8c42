import CZstd
import ReelCore

/// zstd compression with a reusable context. Not for concurrent use: give each thread
/// its own (it is Sendable so a worker can be handed one).
// A zstd context used by one thread at a time.
package final class ZstdCompressor: @unchecked Sendable {
  private let context: OpaquePointer
  package let level: Int32
  /// Set when the level's window or hash table sizes are overridden: the context then
  /// holds them as parameters and compresses through `ZSTD_compress2`.
  private let tuned: Bool

  package init(level: Int32 = 3) {
    context = ZSTD_createCCtx()
    self.level = level
    tuned = false
  }

  /// A level with a larger window (log2 bytes, so matches reach further back) and/or a
  /// larger hash table (log2 entries, so more of them are found) than the level's own.
  package init(level: Int32, windowLog: Int32, hashLog: Int32) {
    context = ZSTD_createCCtx()
    self.level = level
    tuned = true
    for (parameter, value) in [
      (ZSTD_c_compressionLevel, level), (ZSTD_c_windowLog, windowLog), (ZSTD_c_hashLog, hashLog),
    ] {
      let result = ZSTD_CCtx_setParameter(context, parameter, value)
      precondition(ZSTD_isError(result) == 0, "zstd parameter \(parameter) = \(value) is out of range")
    }
  }

  deinit { ZSTD_freeCCtx(context) }

  package func compress(_ input: UnsafeRawBufferPointer) -> [UInt8] {
    let bound = ZSTD_compressBound(input.count)
    // Not zero-filled first: zstd writes every byte it reports.
    return [UInt8](unsafeUninitializedCapacity: bound) { out, count in
      let written = compress(input.baseAddress, count: input.count, into: out.baseAddress, capacity: bound)
      precondition(ZSTD_isError(written) == 0, "zstd compression cannot fail with a bound-sized buffer")
      count = written
    }
  }

  package func compress(_ input: [UInt8]) -> [UInt8] {
    input.withUnsafeBytes { compress($0) }
  }

  /// Compresses into `output` (at least `Zstd.compressBound(input.count)` bytes) and
  /// returns the compressed length: no intermediate buffer, for callers that frame the
  /// result themselves.
  package func compress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int {
    precondition(output.count >= ZSTD_compressBound(input.count), "zstd output buffer smaller than the bound")
    let written = compress(input.baseAddress, count: input.count, into: output.baseAddress, capacity: output.count)
    precondition(ZSTD_isError(written) == 0, "zstd compression cannot fail with a bound-sized buffer")
    return written
  }

  /// Compresses `input` as one frame that refers back into `prefix` (zstd's reference
  /// prefix), into `output` (at least `Zstd.compressBound(input.count)` bytes); returns the
  /// compressed length. Only `Zstd.decompress(_:prefix:into:what:)` with the same prefix
  /// reads it back: a delta of `input` against `prefix`.
  package func compress(
    _ input: UnsafeRawBufferPointer, prefix: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer
  ) -> Int {
    precondition(output.count >= ZSTD_compressBound(input.count), "zstd output buffer smaller than the bound")
    // The prefix applies to the next frame only, so it is set for each.
    var result = ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)
    precondition(ZSTD_isError(result) == 0, "zstd level \(level) is out of range")
    result = ZSTD_CCtx_refPrefix(context, prefix.baseAddress, prefix.count)
    precondition(ZSTD_isError(result) == 0, "zstd refused a reference prefix")
    let written = ZSTD_compress2(context, output.baseAddress, output.count, input.baseAddress, input.count)
    precondition(ZSTD_isError(written) == 0, "zstd compression cannot fail with a bound-sized buffer")
    return written
  }

  private func compress(
    _ input: UnsafeRawPointer?, count: Int, into output: UnsafeMutableRawPointer?, capacity: Int
  ) -> Int {
    tuned
      ? ZSTD_compress2(context, output, capacity, input, count)
      : ZSTD_compressCCtx(context, output, capacity, input, count, level)
  }
}

/// A zstd decompression context, kept for reuse: a fresh one per delta record allocated
/// and faulted in its tables each time.
private final class PrefixDecompressor: @unchecked Sendable {
  let context: OpaquePointer = ZSTD_createDCtx()
  deinit { ZSTD_freeDCtx(context) }
}

private let prefixDecompressors = Locked<[PrefixDecompressor]>([])

package enum Zstd {
  /// The most bytes compressing `count` bytes can produce.
  package static func compressBound(_ count: Int) -> Int { ZSTD_compressBound(count) }

  /// The content size a single zstd frame's header records, when `input` is exactly one
  /// whole frame that records it; nil otherwise (damaged, several frames, or no size).
  package static func singleFrameContentSize(_ input: UnsafeRawBufferPointer) -> Int? {
    guard let base = input.baseAddress, !input.isEmpty else { return nil }
    let size = ZSTD_getFrameContentSize(base, input.count)
    // ZSTD_CONTENTSIZE_UNKNOWN and ZSTD_CONTENTSIZE_ERROR are the two largest values.
    guard size <= UInt64(Int.max) else { return nil }
    let frameLength = ZSTD_findFrameCompressedSize(base, input.count)
    guard ZSTD_isError(frameLength) == 0, frameLength == input.count else { return nil }
    return Int(size)
  }

  /// Decompresses one frame into `output`, which it must fill exactly; `what` names the
  /// data in errors.
  package static func decompress(
    _ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, what: String
  ) throws {
    let written = ZSTD_decompress(output.baseAddress, output.count, input.baseAddress, input.count)
    if ZSTD_isError(written) != 0 {
      throw ReelError(
        .corrupt, "\(what): zstd data is damaged (\(String(cString: ZSTD_getErrorName(written))))")
    }
    guard written == output.count else {
      throw ReelError(.corrupt, "\(what): decompressed to \(written) bytes, expected \(output.count)")
    }
  }

  /// Decompresses as much of one damaged frame into `output` as decodes before the
  /// damage, block by block; returns how many bytes that is. What comes out is not
  /// checked here: the caller checks its own checksums over it.
  package static func salvage(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) -> Int {
    guard let context = ZSTD_createDCtx() else { return 0 }
    defer { ZSTD_freeDCtx(context) }
    var source = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
    var target = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
    while true {
      let before = (source.pos, target.pos)
      let result = ZSTD_decompressStream(context, &target, &source)
      if ZSTD_isError(result) != 0 || result == 0 || (source.pos, target.pos) == before { break }
    }
    return target.pos
  }

  /// Decompresses one frame written by `ZstdCompressor.compress(_:prefix:into:)` against
  /// the same `prefix` into `output`, which it must fill exactly.
  package static func decompress(
    _ input: UnsafeRawBufferPointer, prefix: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer,
    what: String
  ) throws {
    let decompressor = prefixDecompressors.withLock { $0.popLast() } ?? PrefixDecompressor()
    defer { prefixDecompressors.withLock { if $0.count < 16 { $0.append(decompressor) } } }
    let context = decompressor.context
    let referenced = ZSTD_DCtx_refPrefix(context, prefix.baseAddress, prefix.count)
    if ZSTD_isError(referenced) != 0 {
      throw ReelError(
        .corrupt, "\(what): zstd refused its reference (\(String(cString: ZSTD_getErrorName(referenced))))")
    }
    let written = ZSTD_decompressDCtx(context, output.baseAddress, output.count, input.baseAddress, input.count)
    if ZSTD_isError(written) != 0 {
      throw ReelError(
        .corrupt, "\(what): zstd data is damaged (\(String(cString: ZSTD_getErrorName(written))))")
    }
    guard written == output.count else {
      throw ReelError(.corrupt, "\(what): decompressed to \(written) bytes, expected \(output.count)")
    }
  }

  /// Decompresses one frame whose content size is recorded in its header and must equal
  /// `expectedSize`; `what` names the data in errors.
  package static func decompress(_ input: [UInt8], expectedSize: Int, what: String) throws -> [UInt8] {
    try input.withUnsafeBytes { try decompress($0, expectedSize: expectedSize, what: what) }
  }

  package static func decompress(_ input: UnsafeRawBufferPointer, expectedSize: Int, what: String) throws -> [UInt8] {
    var written = 0
    // Uninitialized: zstd writes every byte it reports, and the count is checked below.
    let output = [UInt8](unsafeUninitializedCapacity: expectedSize) { buffer, count in
      written = ZSTD_decompress(buffer.baseAddress, expectedSize, input.baseAddress, input.count)
      count = ZSTD_isError(written) != 0 ? 0 : written
    }
    if ZSTD_isError(written) != 0 {
      throw ReelError(
        .corrupt, "\(what): zstd data is damaged (\(String(cString: ZSTD_getErrorName(written))))")
    }
    guard written == expectedSize else {
      throw ReelError(.corrupt, "\(what): decompressed to \(written) bytes, expected \(expectedSize)")
    }
    return output
  }

}
