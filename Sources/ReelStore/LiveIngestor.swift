import CLinux
import Foundation
import ReelCore

/// Feeds the live store from the journals of served volumes in the background, so the
/// store stays a few seconds behind capture. Stopping runs one last pass.
public final class LiveIngestor: @unchecked Sendable {
  private let live: LiveStore
  private let volumes: [String]
  private let interval: Duration
  private let condition = NSCondition()
  private var stopping = false
  private var finished = false
  private let report: @Sendable (String) -> Void

  public init(
    store: Store, volumes: [String], interval: Duration = .seconds(5),
    report: @escaping @Sendable (String) -> Void
  ) {
    live = LiveStore(store: store, workers: 1)
    self.volumes = volumes
    self.interval = interval
    self.report = report
  }

  public func start() {
    let thread = Thread { [self] in run() }
    thread.name = "reel-ingest"
    thread.start()
  }

  /// Waits for the running pass, then ingests everything journaled so far.
  public func stop() {
    condition.lock()
    stopping = true
    condition.broadcast()
    while !finished { condition.wait() }
    condition.unlock()
  }

  private func run() {
    // Capture answers clients; ingest only keeps the store fresh. On Linux a thread's
    // nice value is its own, so this yields the cores to the NBD workers under load.
    // Ingest here runs on this thread alone (one worker), so all of it yields.
    _ = reel_set_thread_nice(10)
    while true {
      condition.lock()
      if !stopping {
        _ = condition.wait(until: Date(timeIntervalSinceNow: Double(interval.nanoseconds) / 1e9))
      }
      let last = stopping
      condition.unlock()
      pass()
      if last { break }
    }
    condition.lock()
    finished = true
    condition.broadcast()
    condition.unlock()
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
