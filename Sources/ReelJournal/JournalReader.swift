import Foundation
import ReelCore
import ReelIO

/// A volume's journal folder: its segment files, checked for continuity.
package struct JournalReader: Sendable {
  package let directory: String
  package let volume: VolumeID
  package let segments: [SegmentFile]

  /// Opens every segment's header and footer, or with `fromSeq` only those of the segment
  /// that holds it (found by a binary search over headers) and the ones after it: a
  /// reader that goes on from where it stopped, as ingest does, need not open a long
  /// journal's every segment (a cold `reel clone` of a volume with 79 segments spent
  /// 40 ms there). A missing segment (by name), a segment of another volume, a seq gap,
  /// or an unclosed segment that is not the last throws an error naming the file.
  package init(directory: String, volume: VolumeID, fromSeq: Seq = 1) throws {
    self.directory = directory
    self.volume = volume
    var entries: [(UInt64, String)] = []
    let names: [String]
    do {
      names = try FileManager.default.contentsOfDirectory(atPath: directory)
    } catch {
      throw ReelError(
        .notFound, "\(directory): journal folder not found",
        remedy: "check the store path (--store or REEL_STORE) and the volume name")
    }
    for name in names {
      if let number = SegmentFormat.segmentNumber(fileName: name) {
        entries.append((number, name))
      }
    }
    entries.sort { $0.0 < $1.0 }
    for (previous, next) in zip(entries, entries.dropFirst()) where next.0 != previous.0 + 1 {
      throw ReelError(
        .corrupt,
        "\(directory): segment \(SegmentFormat.fileName(segment: previous.0 + 1)) is missing between \(previous.1) and \(next.1)",
        remedy: "put the missing segment back (from a copy or archive); history after it cannot be trusted without it"
      )
    }
    var first = 0
    var probed: [Int: SegmentFile] = [:]
    if fromSeq > 1 {
      // The last segment whose first seq is at or before `fromSeq`.
      var high = entries.count - 1
      while first < high {
        let middle = (first + high + 1) / 2
        let probe = try SegmentFile(
          path: directory + "/" + entries[middle].1, volume: volume, number: entries[middle].0)
        probed[middle] = probe
        if probe.header.firstSeq <= fromSeq { first = middle } else { high = middle - 1 }
      }
    }
    var segments: [SegmentFile] = []
    for (index, (number, name)) in entries.enumerated().dropFirst(first) {
      let segment = try probed[index] ?? SegmentFile(path: directory + "/" + name, volume: volume, number: number)
      if let previous = segments.last {
        guard let summary = previous.summary else {
          throw ReelError(
            .corrupt, "\(previous.path): segment was never closed but a later segment \(name) exists",
            remedy:
              "open the journal with the writer (e.g. `reel serve`) to recover, or restore the segment from a copy")
        }
        guard segment.header.firstSeq == summary.lastSeq + 1 else {
          throw ReelError(
            .corrupt,
            "\(segment.path): starts at seq \(segment.header.firstSeq) but the previous segment ends at \(summary.lastSeq)",
            remedy: "a segment was replaced by one from another history; restore the original")
        }
      }
      segments.append(segment)
    }
    self.segments = segments
  }

  /// Calls `body` for each record with seq ≥ `fromSeq` (and time ≥ `fromTime`, if given),
  /// in order, until it returns false. Damage throws; the torn tail of the open segment
  /// is treated as not yet written.
  package func forEachRecord(
    fromSeq: Seq = 1, fromTime: Timestamp? = nil, _ body: (JournalRecord) throws -> Bool
  ) throws {
    var lastTime: Timestamp? = nil
    for segment in segments {
      if let summary = segment.summary {
        let beforeSeq = summary.lastSeq < fromSeq
        let beforeTime = fromTime.map { summary.recordCount > 0 && summary.maxTime < $0 } ?? false
        if beforeSeq || beforeTime || summary.recordCount == 0 {
          lastTime = summary.recordCount > 0 ? summary.maxTime : lastTime
          continue
        }
      }
      let result = try segment.scan(expectedFirstSeq: segment.header.firstSeq, lastTime: lastTime) {
        record, _ in
        if record.seq < fromSeq { return true }
        if let fromTime, record.time < fromTime { return true }
        return try body(record)
      }
      guard let result else { return }
      lastTime = result.lastTime
    }
  }

  /// A whole-journal pass that checks every record.
  package func summarize() throws -> JournalSummary {
    var summary = JournalSummary(segmentCount: segments.count)
    summary.firstSeq = segments.first?.header.firstSeq
    try forEachRecord { record in
      summary.recordCount += 1
      summary.lastSeq = record.seq
      if summary.firstTime == nil { summary.firstTime = record.time }
      summary.lastTime = record.time
      summary.countsByKind[record.kind, default: 0] += 1
      if record.kind == .write { summary.bytesWritten += record.length }
      if let label = record.label {
        summary.bookmarks.append(Bookmark(seq: record.seq, label: label, time: record.time))
      }
      return true
    }
    summary.openSegment = segments.last.map { $0.summary == nil } ?? false
    return summary
  }
}

package struct JournalSummary: Sendable, Equatable {
  package var segmentCount: Int
  package var recordCount: UInt64 = 0
  package var firstSeq: Seq?
  package var lastSeq: Seq?
  package var firstTime: Timestamp?
  package var lastTime: Timestamp?
  package var bytesWritten: UInt64 = 0
  var countsByKind: [JournalRecord.Kind: UInt64] = [:]
  package var bookmarks: [Bookmark] = []
  package var openSegment = false
}

extension StoreLayout {
  /// A reader of the named volume's journal, checked against its descriptor.
  package func journalReader(of name: String) throws -> JournalReader {
    let descriptor = try descriptor(of: name)
    return try JournalReader(directory: journalDirectory(name), volume: descriptor.id)
  }
}
