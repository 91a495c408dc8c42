import Foundation
import ReelCore
import ReelJournal

extension LiveStore {
  /// The bookmarks of a volume that `--at LABEL` can name, oldest first: those the catalog
  /// holds (kept through prunes and brought in by rehydration, when the journal may no
  /// longer have them), then those still only in the journal, past what was ingested.
  /// `journal` is the volume's journal summary (nil or empty when it has no journal).
  package func bookmarks(of descriptor: VolumeDescriptor, journal: JournalSummary?) throws -> [Bookmark] {
    let ingested = try historyBounds(of: descriptor).ingested
    let stored = try bookmarks(of: descriptor, after: 0, through: ingested)
    let pending = (journal?.bookmarks ?? []).filter { $0.seq > ingested }
    return stored + pending
  }
}
