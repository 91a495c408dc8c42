import Foundation
import ReelCore

/// Reads and checks a journal's records on a thread of its own, a bounded number of
/// bytes ahead of the consumer, so checksumming and disk reads overlap the consumer's work.
package final class RecordPrefetcher: Sendable {
  private let records: BoundedQueue<JournalRecord>
  private let thread: WorkerThread

  package init(reader: JournalReader, fromSeq: Seq, bufferBytes: Int = 128 << 20) {
    let records = BoundedQueue<JournalRecord>(capacity: .max, costCapacity: bufferBytes)
    self.records = records
    thread = WorkerThread(name: "reel-journal-prefetch") {
      do {
        try reader.forEachRecord(fromSeq: fromSeq) { record in
          records.put(record, cost: record.payload.count + 64)
        }
        records.close()
      } catch {
        records.close(failure: error)
      }
    }
  }

  /// Stops the reading thread (if the consumer stopped early) and waits for it.
  deinit {
    records.cancel()
    thread.join()
  }

  /// The next record, nil at the end; rethrows what the reader hit.
  package func next() throws -> JournalRecord? {
    try records.take()
  }

  /// Stops the reading thread early (the consumer has what it needs).
  package func cancel() {
    records.cancel()
  }
}
