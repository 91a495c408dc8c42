import Foundation
import ReelCore
import ReelIO
import ReelJournal

extension LiveStore {
  /// Deletes the volume's journal segments that hold no record after `seq`, oldest first:
  /// only closed segments, never the newest, and none after the first one that must stay,
  /// so the journal never gets a gap. Each one goes durably (unlink, then fsync of the
  /// folder) before the next, so a crash leaves a journal that only lost its oldest
  /// segments. Holds the store lock, so an ingest never opens a segment that is about to
  /// go. `deleted` is told of each one once it is gone.
  package func deleteJournalSegments(volume name: String, through seq: Seq, deleted: (SegmentFile) throws -> Void)
    throws
  {
    try withStoreLock {
      let descriptor = try store.layout.descriptor(of: name)
      let directory = store.layout.journalDirectory(name)
      let segments = try JournalReader(directory: directory, volume: descriptor.id).segments
      for segment in segments.dropLast() {
        guard let summary = segment.summary,
          summary.recordCount == 0 || summary.lastSeq < segment.header.firstSeq || summary.lastSeq <= seq
        else { return }
        guard unlink(segment.path) == 0 || errno == ENOENT else {
          throw PosixFile.error(errno, "delete", segment.path)
        }
        try Durable.syncDirectory(directory)
        try deleted(segment)
      }
    }
  }
}
