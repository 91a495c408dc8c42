import Dispatch
import Foundation

/// Runs `transform` over `items` on `workers` threads (each gets its own index, for
/// per-worker state such as a compressor). Two suit CPU work on the machines Reel
/// targets; more help when the work waits on reads.
package func parallelMap<Item: Sendable, Result: Sendable>(
  _ items: [Item], workers: Int = 2, _ transform: @Sendable (Int, Item) -> Result
) -> [Result] {
  guard items.count > 1 else { return items.map { transform(0, $0) } }
  var results = [Result?](repeating: nil, count: items.count)
  results.withUnsafeMutableBufferPointer { output in
    nonisolated(unsafe) let output = output
    DispatchQueue.concurrentPerform(iterations: workers) { worker in
      var index = worker
      while index < items.count {
        output[index] = transform(worker, items[index])
        index += workers
      }
    }
  }
  return results.map { $0! }
}

/// Runs `produce` on its own thread, keeping up to `depth` results ready ahead of the
/// consumer, so producing the next item overlaps consuming this one. `produce` gets the
/// item's index (0, 1, …) and returns nil after the last. `next()` returns the items in
/// order, then nil; an error thrown by `produce` is rethrown there, in order. Call
/// `cancel()` when stopping early; the thread is joined when this is released.
package final class ReadAhead<Element: Sendable>: Sendable {
  private let ready: BoundedQueue<Element>
  private let thread: WorkerThread

  package init(name: String, depth: Int = 1, produce: @escaping @Sendable (Int) throws -> Element?) {
    let ready = BoundedQueue<Element>(capacity: depth)
    self.ready = ready
    thread = WorkerThread(name: name) {
      var index = 0
      do {
        // Room first, then the item: no more than `depth` items exist ahead of the consumer.
        while ready.waitForRoom(), let element = try produce(index) {
          ready.put(element)
          index += 1
        }
        ready.close()
      } catch {
        ready.close(failure: error)
      }
    }
  }

  deinit {
    ready.cancel()
    thread.join()
  }

  package func next() throws -> Element? {
    try ready.take()
  }

  /// Stops producing after the item in progress; later `next()` calls return nil.
  package func cancel() {
    ready.cancel()
  }
}

/// Runs `work` on its own thread from the start; `value()` waits for it and returns its
/// result or rethrows its error. The thread is joined by `value()`, or when this is released.
package final class BackgroundTask<Value: Sendable>: Sendable {
  private let result: Locked<Result<Value, any Error>?>
  private let thread: WorkerThread

  package init(name: String = "reel-background", _ work: @escaping @Sendable () throws -> Value) {
    let result = Locked<Result<Value, any Error>?>(nil)
    self.result = result
    thread = WorkerThread(name: name) {
      let outcome = Result { try work() }
      result.withLock { $0 = outcome }
    }
  }

  deinit { thread.join() }

  /// Waits for the work (every call), then returns its result.
  package func value() throws -> Value {
    thread.join()
    return try result.withLock { $0! }.get()
  }

  /// Whether the work has ended, without waiting.
  package var isFinished: Bool {
    result.withLock { $0 != nil }
  }
}
