import Foundation
import ReelCore

/// Reads and checks a journal's records on a thread of its own, a bounded number of
/// bytes ahead of the consumer, so checksumming and disk reads overlap the consumer's work.
public final class RecordPrefetcher: @unchecked Sendable {
  private let condition = NSCondition()
  private var queue: [JournalRecord] = []
  private var head = 0
  private var queuedBytes = 0
  private var finished = false
  private var failure: Error?
  private var cancelled = false
  private let limit: Int

  public init(reader: JournalReader, fromSeq: Seq, bufferBytes: Int = 128 << 20) {
    limit = bufferBytes
    let thread = Thread { [self] in
      do {
        try reader.forEachRecord(fromSeq: fromSeq) { record in push(record) }
      } catch {
        condition.withLock { failure = error }
      }
      condition.withLock {
        finished = true
        condition.broadcast()
      }
    }
    thread.name = "reel-journal-prefetch"
    thread.start()
  }

  deinit { cancel() }

  private func push(_ record: JournalRecord) -> Bool {
    condition.lock()
    defer { condition.unlock() }
    while queuedBytes >= limit && !cancelled { condition.wait() }
    if cancelled { return false }
    queue.append(record)
    queuedBytes += record.payload.count + 64
    condition.broadcast()
    return true
  }

  /// The next record, nil at the end; rethrows what the reader hit.
  public func next() throws -> JournalRecord? {
    condition.lock()
    defer { condition.unlock() }
    while head == queue.count && !finished { condition.wait() }
    if head < queue.count {
      let record = queue[head]
      queue[head].payload = []  // consumed: let its bytes go now, not at the next compaction
      head += 1
      queuedBytes -= record.payload.count + 64
      if head > 1024 && head * 2 > queue.count {
        queue.removeFirst(head)
        head = 0
      }
      condition.broadcast()
      return record
    }
    if let failure { throw failure }
    return nil
  }

  /// Stops the reading thread early (the consumer has what it needs).
  public func cancel() {
    condition.withLock {
      cancelled = true
      condition.broadcast()
    }
  }
}
