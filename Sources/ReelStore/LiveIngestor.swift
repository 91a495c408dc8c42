import CLinux
import Foundation
import ReelCore

/// Feeds the live store from the journals of served volumes in the background, so the
/// store stays a few seconds behind capture. Stopping runs one last pass.
package final class LiveIngestor: Sendable {
  private let live: LiveStore
  private let volumes: [String]
  private let interval: Duration
  private let stopping = Locked(false)
  private let thread = Locked<WorkerThread?>(nil)
  private let report: @Sendable (String) -> Void

  package init(
    store: Store, volumes: [String], interval: Duration = .seconds(5),
    report: @escaping @Sendable (String) -> Void
  ) {
    live = LiveStore(store: store, workers: 1)
    self.volumes = volumes
    self.interval = interval
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
    while true {
      let last = stopping.withLock(when: { $0 }, timeout: interval) { $0 }
      // The last pass runs after the clients are gone and the server waits for it: at
      // nice 10 on a busy machine it took minutes. Raising the priority back needs
      // CAP_SYS_NICE (or RLIMIT_NICE); without it the pass stays yielding.
      if last { _ = reel_set_thread_nice(0) }
      pass()
      if last { break }
    }
  }

  private func pass() {
    for volume in volumes {
      do {
        try live.ingest(volume: volume)
      } catch {
        // The journal stays the source of truth; a failed pass is retried next time.
        report("ingest of \(volume) failed, will retry: \(error)")
      }
    }
  }
}
