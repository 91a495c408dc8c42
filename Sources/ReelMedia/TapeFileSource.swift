import Foundation
import ReelArchive
import ReelCore

/// A stretch of a tape file the drive could not read: its place in the file's byte stream,
/// counted as if the lost records had been read (they are handed out as zeros).
package struct UnreadableRange: Sendable, Equatable, Codable {
  package var offset: UInt64
  package var length: UInt64
  /// True when the recorded data ended here, before the length the catalog gives.
  package var endOfData: Bool = false

  package init(offset: UInt64, length: UInt64, endOfData: Bool = false) {
    self.offset = offset
    self.length = length
    self.endOfData = endOfData
  }

  /// One sentence for the whole range, however many records it covers.
  package var sentence: String {
    endOfData
      ? "the recorded data ends at byte \(offset), \(ByteSize.describe(length)) before the end the catalog gives"
      : "bytes \(offset)…\(offset + length - 1) (\(ByteSize.describe(length))) unreadable"
  }
}

/// The bytes of one tape file, read a record at a time up to its filemark, as an archive
/// byte stream. `limit` stops the stream at an archive's own length, so the zeros that pad
/// its last block are not part of it. Keeps the first bytes it hands out, so the remains
/// of an archive that fails verification can still be named.
///
/// Records the drive cannot read (a media error) cost only themselves: their bytes come
/// out as zeros, so everything after them stays at its offset, and `unreadable` says
/// where they were; so does data ending before `limit` (a cartridge cut short).
final class TapeFileSource: ArchiveByteSource, UnreadableStretches {
  private let drive: TapeDrive
  private let record: UnsafeMutableRawBufferPointer
  private var available: Range<Int> = 0..<0
  private var remaining: UInt64
  private let limited: Bool
  /// Zeros still to hand out for records the drive could not read.
  private var pendingZeros: UInt64 = 0
  /// The size of the records read so far: what a lost record held when the drive cannot say.
  private var recordLength: Int
  private var offset: UInt64 = 0
  private(set) var reachedEnd = false
  /// The stream ended at the end of recorded data rather than at a filemark.
  private(set) var atEndOfData = false
  private(set) var prefix: [UInt8] = []
  private(set) var unreadable: [UnreadableRange] = []

  init(drive: TapeDrive, recordSize: Int, limit: UInt64? = nil, blockSize: Int = MediaLabel.defaultDataBlockSize) {
    self.drive = drive
    record = .allocate(byteCount: max(recordSize, MediaLabel.blockSize), alignment: 4096)
    remaining = limit ?? .max
    limited = limit != nil
    recordLength = blockSize
  }

  deinit { record.deallocate() }

  func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    if available.isEmpty && pendingZeros == 0 {
      guard remaining > 0, try fill() else { return 0 }
    }
    if available.isEmpty {
      let count = Int(min(UInt64(buffer.count), pendingZeros, remaining))
      buffer.baseAddress!.initializeMemory(as: UInt8.self, repeating: 0, count: count)
      keep(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
      pendingZeros -= UInt64(count)
      return hand(count)
    }
    let count = min(buffer.count, available.count, Int(clamping: remaining))
    buffer.baseAddress!.copyMemory(from: record.baseAddress! + available.lowerBound, byteCount: count)
    keep(UnsafeRawBufferPointer(rebasing: record[available.lowerBound..<(available.lowerBound + count)]))
    available = (available.lowerBound + count)..<available.upperBound
    return hand(count)
  }

  private func keep(_ bytes: UnsafeRawBufferPointer) {
    if prefix.count < ArchivePeek.prefixLimit { prefix += bytes }
  }

  private func hand(_ count: Int) -> Int {
    remaining -= UInt64(count)
    offset += UInt64(count)
    return count
  }

  /// Reads on to the filemark, so the drive stands at the start of the next file.
  func drain() throws {
    available = 0..<0
    pendingZeros = 0
    while !reachedEnd { _ = try fill() }
  }

  private func fill() throws -> Bool {
    guard !reachedEnd else { return false }
    switch try drive.read(into: record) {
    case .data(let count):
      available = 0..<count
      recordLength = count
      return true
    case .unreadable(let bytes):
      let lost = UInt64(bytes ?? recordLength)
      let start = offset + UInt64(available.count) + pendingZeros
      if let last = unreadable.last, last.offset + last.length == start {
        unreadable[unreadable.count - 1].length += lost
      } else {
        unreadable.append(UnreadableRange(offset: start, length: lost))
      }
      pendingZeros += lost
      return true
    case .filemark:
      reachedEnd = true
      return endEarly()
    case .endOfData:
      reachedEnd = true
      atEndOfData = true
      return endEarly()
    }
  }

  /// The file ended before the length the catalog gives: the rest was lost (a cartridge
  /// cut short, a filemark inside a damaged stretch); it is handed out as zeros, so an
  /// archive's own parity can rebuild it in place. Only up to as many bytes as the tape
  /// file held before its end: no parity rebuilds an archive of which more was lost, and a
  /// damaged or hostile catalog could claim any length (2^63 bytes made a 1.5 KB tape file
  /// an endless stream of zeros, which mending would have written to disk).
  private func endEarly() -> Bool {
    guard limited, remaining > pendingZeros else { return false }
    let start = offset + UInt64(available.count) + pendingZeros
    unreadable.append(UnreadableRange(offset: start, length: remaining - pendingZeros, endOfData: true))
    pendingZeros += min(remaining - pendingZeros, start)
    remaining = UInt64(available.count) + pendingZeros
    return pendingZeros > 0
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

extension TapeFileSource {
  /// Reads until `buffer` is full or the tape file ends; the byte count read.
  func readFully(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    var done = 0
    while done < buffer.count {
      let got = try read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
      if got == 0 { break }
      done += got
    }
    return done
  }
}
