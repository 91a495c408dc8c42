import Foundation
import ReelArchive
import ReelCore

/// The bytes of one tape file, read a record at a time up to its filemark, as an archive
/// byte stream. `limit` stops the stream at an archive's own length, so the zeros that pad
/// its last block are not part of it. Keeps the first bytes it hands out, so the remains
/// of an archive that fails verification can still be named.
final class TapeFileSource: ArchiveByteSource {
  private let drive: TapeDrive
  private let record: UnsafeMutableRawBufferPointer
  private var available: Range<Int> = 0..<0
  private var remaining: UInt64
  private(set) var reachedEnd = false
  /// The stream ended at the end of recorded data rather than at a filemark.
  private(set) var atEndOfData = false
  private(set) var prefix: [UInt8] = []

  init(drive: TapeDrive, recordSize: Int, limit: UInt64? = nil) {
    self.drive = drive
    record = .allocate(byteCount: max(recordSize, MediaLabel.blockSize), alignment: 4096)
    remaining = limit ?? .max
  }

  deinit { record.deallocate() }

  func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    if available.isEmpty {
      guard remaining > 0, try fill() else { return 0 }
    }
    let count = min(buffer.count, available.count, Int(clamping: remaining))
    buffer.baseAddress!.copyMemory(from: record.baseAddress! + available.lowerBound, byteCount: count)
    if prefix.count < ArchivePeek.prefixLimit {
      prefix += UnsafeRawBufferPointer(rebasing: record[available.lowerBound..<(available.lowerBound + count)])
    }
    available = (available.lowerBound + count)..<available.upperBound
    remaining -= UInt64(count)
    return count
  }

  /// Reads on to the filemark, so the drive stands at the start of the next file.
  func drain() throws {
    available = 0..<0
    while !reachedEnd { _ = try fill() }
  }

  private func fill() throws -> Bool {
    guard !reachedEnd else { return false }
    switch try drive.read(into: record) {
    case .data(let count):
      available = 0..<count
      return true
    case .filemark:
      reachedEnd = true
      return false
    case .endOfData:
      reachedEnd = true
      atEndOfData = true
      return false
    }
  }
}

/// What read-back verification established about one archive's bytes.
package struct VerifiedArchive: Sendable {
  package var manifest: ArchiveManifest
  package var totalBytes: UInt64
  package var sha256: String
}

enum ArchiveCheck {
  /// Streams an archive through the structural verifier: every member against
  /// SHA256SUMS and the manifest, and the SHA-256 of the whole stream.
  static func verify(_ source: inout some ArchiveByteSource, describing what: String) throws -> VerifiedArchive {
    let report = try ArchiveVerifier.verifyStructure(source: &source, label: what)
    return VerifiedArchive(manifest: report.manifest, totalBytes: report.totalBytes, sha256: report.sha256)
  }

}
