import CLinux
import Foundation
import ReelCore

/// When clients last changed a served volume, so ingest can stay out of their way.
package struct WriteActivity: Sendable {
  /// The last time a write, trim or zeroing was journaled; nil before the first.
  package var lastChange: @Sendable () -> ContinuousClock.Instant?
  /// Clients count as writing until no change came for this long.
  package var quietPeriod: Duration = .seconds(1)
  /// Ingest waits for a quiet moment at most this long after it last caught up with the
  /// journals; then it runs to the end even while clients write, so the store is never
  /// further behind than this plus one pass.
  package var maxDelay: Duration = .seconds(60)

  package init(lastChange: @escaping @Sendable () -> ContinuousClock.Instant?) {
    self.lastChange = lastChange
  }

  var writing: Bool { lastChange().map { ContinuousClock.now - $0 < quietPeriod } ?? false }
}

/// Feeds the live store from the journals of served volumes in the background, so the
/// store stays a few seconds behind capture (up to `WriteActivity.maxDelay` while clients
/// keep writing). Stopping runs one last pass.
package final class LiveIngestor: Sendable {
  private let live: LiveStore
  private let volumes: [String]
  private let interval: Duration
  private let activity: WriteActivity?
  private let stopping = Locked(false)
  private let thread = Locked<WorkerThread?>(nil)
  private let report: @Sendable (String) -> Void

  package init(
    store: Store, volumes: [String], interval: Duration = .seconds(5), activity: WriteActivity? = nil,
    report: @escaping @Sendable (String) -> Void
  ) {
    live = LiveStore(store: store, workers: 1)
    self.volumes = volumes
    self.interval = interval
    self.activity = activity
    self.report = report
  }

  package func start() {
    let started = WorkerThread(name: "reel-ingest") { [self] in run() }
    thread.withLock { $0 = started }
  }

  /// Waits for the running pass, then ingests everything journaled so far, and joins the thread.
  package func stop() {
    stopping.withLock { $0 = true }
    stopping.broadcast()
    thread.withLock { $0 }?.join()
  }

  private func run() {
    // Capture answers clients; ingest only keeps the store fresh. On Linux a thread's
    // nice value is its own, so this yields the cores to the NBD workers under load.
    // Ingest here runs on this thread alone (one worker), so all of it yields.
    _ = reel_set_thread_nice(10)
    var caughtUp = ContinuousClock.now
    while true {
      let last = stopping.withLock(when: { $0 }, timeout: interval) { $0 }
      // The last pass runs after the clients are gone and the server waits for it: at
      // nice 10 on a busy machine it took minutes. Raising the priority back needs
      // CAP_SYS_NICE (or RLIMIT_NICE); without it the pass stays yielding.
      if last { _ = reel_set_thread_nice(0) }
      // Even niced, a pass during a burst of random sync writes took a fifth of the two
      // cores and wrote its packs next to the journal, costing the clients a quarter of
      // their IOPS and doubling their p99 flush latency (benchmarks/capture-random.sh).
      // So while they write, ingest waits for a pause, and gives way when writes resume,
      // until the store has lagged `maxDelay`.
      let mayYield = { [activity] in
        guard let activity, !last else { return false }
        return ContinuousClock.now - caughtUp < activity.maxDelay && activity.writing
      }
      if mayYield() { continue }
      if pass(yield: mayYield) { caughtUp = ContinuousClock.now }
      if last { break }
    }
  }

  /// Returns whether every volume was ingested to the end of its journal.
  private func pass(yield: @escaping () -> Bool) -> Bool {
    var complete = true
    for volume in volumes {
      do {
        if try live.ingest(volume: volume, yield: yield).yielded { return false }
      } catch {
        // The journal stays the source of truth; a failed pass is retried next time.
        report("ingest of \(volume) failed, will retry: \(error)")
        complete = false
      }
    }
    return complete
  }
}
