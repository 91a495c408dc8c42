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

/// Runs `work(worker, index)` for every index of `0..<count` on up to `threads` threads
/// (the calling thread is worker 0), each taking the next index not yet taken, so items
/// of uneven cost even out. When `work` returns false no thread takes another index.
/// Returns once every thread is done.
package func forEachIndexOnThreads(
  _ count: Int, threads: Int, name: String, _ work: @escaping @Sendable (_ worker: Int, _ index: Int) -> Bool
) {
  let next = Locked(0)
  let run: @Sendable (Int) -> Void = { worker in
    while let index = next.withLock({ next -> Int? in
      guard next < count else { return nil }
      defer { next += 1 }
      return next
    }) {
      if !work(worker, index) {
        next.withLock { $0 = count }
        return
      }
    }
  }
  let helpers = (1..<max(1, min(threads, count))).map { worker in WorkerThread(name: name) { run(worker) } }
  run(0)
  helpers.joinAll()
}

/// Runs `produce` on its own thread, keeping up to `depth` results ready ahead of the
/// consumer, so producing the next item overlaps consuming this one. `produce` gets the
/// item's index (0, 1, …) and returns nil after the last. `next()` returns the items in
/// order, then nil; an error thrown by `produce` is rethrown there, in order. Call
/// `cancel()` when stopping early; the threads are joined when this is released.
///
/// With `producers` above 1, that many threads make the items in turn (thread k makes
/// items k, k + producers, …), each keeping `depth` of its own ready: one item's reads
/// wait on the disk while another's are decoded. `produce` must then be safe to call from
/// several threads at once, and must return nil for every index past the last.
package final class ReadAhead<Element: Sendable>: Sendable {
  private let lanes: [BoundedQueue<Element>]
  private let threads: [WorkerThread]
  private let taken = Locked(0)

  package init(
    name: String, depth: Int = 1, producers: Int = 1, produce: @escaping @Sendable (Int) throws -> Element?
  ) {
    precondition(producers > 0)
    lanes = (0..<producers).map { _ in BoundedQueue<Element>(capacity: depth) }
    threads = lanes.enumerated().map { lane, ready in
      WorkerThread(name: name) {
        var index = lane
        do {
          // Room first, then the item: no more than `depth` items exist ahead of the consumer.
          while ready.waitForRoom(), let element = try produce(index) {
            ready.put(element)
            index += producers
          }
          ready.close()
        } catch {
          ready.close(failure: error)
        }
      }
    }
  }

  deinit {
    for ready in lanes { ready.cancel() }
    for thread in threads { thread.join() }
  }

  package func next() throws -> Element? {
    let index = taken.withLock { $0 }
    guard let element = try lanes[index % lanes.count].take() else { return nil }
    taken.withLock { $0 += 1 }
    return element
  }

  /// Stops producing after the items in progress; later `next()` calls return nil.
  package func cancel() {
    for ready in lanes { ready.cancel() }
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
