import ReelCore
import ReelJournal

/// A user's POINT turned into the journal position it names.
public struct ResolvedPoint: Sendable, Equatable {
  /// Records with seq ≤ this are included; 0 means the volume as created.
  public var seq: Seq
  /// The time of that record (or the volume's creation time for seq 0).
  public var time: Timestamp
  public var point: Point
}

public enum PointResolver {
  /// Finds the last record at or before `point` in the volume's journal. Errors name
  /// the volume and say what exists instead.
  public static func resolve(_ point: Point, volume: VolumeDescriptor, journal: JournalReader) throws
    -> ResolvedPoint
  {
    let summary = try journal.summarize()
    let lastSeq = summary.lastSeq ?? 0
    switch point {
    case .latest:
      return ResolvedPoint(seq: lastSeq, time: summary.lastTime ?? volume.created, point: point)
    case .seq(let seq):
      guard seq <= lastSeq else {
        throw ReelError(
          .notFound, "volume \(volume.name) has no seq \(seq); its journal ends at seq \(lastSeq)",
          remedy: "pick a seq up to \(lastSeq), or use `latest`")
      }
      var time = volume.created
      if seq > 0 {
        try journal.forEachRecord(fromSeq: seq) { record in
          time = record.time
          return false
        }
      }
      return ResolvedPoint(seq: seq, time: time, point: point)
    case .bookmark(let label):
      guard let bookmark = summary.bookmarks.last(where: { $0.label == label }) else {
        let known = summary.bookmarks.map(\.label)
        throw ReelError(
          .notFound, "volume \(volume.name) has no bookmark \"\(label)\"",
          remedy: known.isEmpty
            ? "the volume has no bookmarks yet; give a time (RFC 3339, UTC) or `latest`"
            : "known bookmarks: \(known.map { "\"\($0)\"" }.joined(separator: ", "))")
      }
      return ResolvedPoint(seq: bookmark.seq, time: bookmark.time, point: point)
    case .time(let time):
      guard time >= volume.created else {
        throw ReelError(
          .notFound, "\(time.rfc3339) is before volume \(volume.name) existed (created \(volume.created.rfc3339))",
          remedy: "pick a time from \(volume.created.rfc3339) on; `reel timeline \(volume.name)` shows the range")
      }
      if let first = summary.firstTime, time < first, let firstSeq = summary.firstSeq, firstSeq > 1 {
        throw ReelError(
          .notFound,
          "\(time.rfc3339) is before the oldest journal record kept for volume \(volume.name) (\(first.rfc3339))",
          remedy: "pick a time from \(first.rfc3339) on")
      }
      var resolved = ResolvedPoint(seq: 0, time: volume.created, point: point)
      try journal.forEachRecord { record in
        guard record.time <= time else { return false }
        resolved.seq = record.seq
        resolved.time = record.time
        return true
      }
      return resolved
    }
  }
}
