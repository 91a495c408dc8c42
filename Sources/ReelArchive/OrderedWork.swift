import Foundation

/// Runs jobs on background threads, at most `window` at a time, and hands their results
/// back on the submitting thread in submission order — so reading, the jobs (compression,
/// decryption) and writing overlap while the output stays in order. Used from one thread.
final class OrderedWork<Output: Sendable> {
  private final class Slot: @unchecked Sendable {
    let done = DispatchSemaphore(value: 0)
    var output: Output?
  }

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
    let slot = Slot()
    slots.append(slot)
    DispatchQueue.global().async {
      slot.output = job()
      slot.done.signal()
    }
  }

  /// Waits for every job still running, handing each output to `handle` in order.
  func drain(_ handle: (Output) throws -> Void) throws {
    while pending > 0 { try handle(next()) }
  }

  private func next() -> Output {
    let slot = slots[head]
    slot.done.wait()
    head += 1
    if head > 64 {
      slots.removeFirst(head)
      head = 0
    }
    return slot.output!
  }
}
