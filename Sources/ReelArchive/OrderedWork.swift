import Foundation
import ReelCore

/// Runs jobs on background threads, at most `window` at a time, and hands their results
/// back on the submitting thread in submission order — so reading, the jobs (compression,
/// decryption) and writing overlap while the output stays in order. Used from one thread.
final class OrderedWork<Output: Sendable> {
  /// One job's output, put there once by the thread that ran it.
  private typealias Slot = BoundedQueue<Output>

  private var slots: [Slot] = []
  private var head = 0
  let window: Int

  init(window: Int) {
    precondition(window > 0)
    self.window = window
  }

  var pending: Int { slots.count - head }

  /// Starts `job`; when `window` jobs are already running, first waits for the oldest and
  /// gives its output to `handle`.
  func submit(_ job: @escaping @Sendable () -> Output, handle: (Output) throws -> Void) throws {
    while pending >= window { try handle(next()) }
    let slot = Slot(capacity: 1)
    slots.append(slot)
    DispatchQueue.global().async {
      slot.put(job())
    }
  }

  /// Waits for every job still running, handing each output to `handle` in order.
  func drain(_ handle: (Output) throws -> Void) throws {
    while pending > 0 { try handle(next()) }
  }

  private func next() -> Output {
    let slot = slots[head]
    head += 1
    if head > 64 {
      slots.removeFirst(head)
      head = 0
    }
    // Never closed or cancelled: take returns the job's output once it is there.
    return try! slot.take()!
  }
}
