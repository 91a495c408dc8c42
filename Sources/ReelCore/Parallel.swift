import Dispatch
import Foundation

/// Runs `transform` over `items` on `workers` threads (each gets its own index, for
/// per-worker state such as a compressor). Two suit CPU work on the machines Reel
/// targets; more help when the work waits on reads.
public func parallelMap<Item: Sendable, Result: Sendable>(
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
/// `cancel()` when stopping early.
public final class ReadAhead<Element: Sendable>: @unchecked Sendable {
  private let condition = NSCondition()
  private var ready: [Result<Element, any Error>] = []
  private var finished = false
  private var cancelled = false

  public init(name: String, depth: Int = 1, produce: @escaping @Sendable (Int) throws -> Element?) {
    let thread = Thread { [self] in
      var index = 0
      while true {
        let item: Result<Element, any Error>?
        do {
          item = try produce(index).map { .success($0) }
          index += 1
        } catch {
          item = .failure(error)
        }
        let stop: Bool = condition.withLock {
          switch item {
          case .success(let element): ready.append(.success(element))
          case .failure(let error):
            ready.append(.failure(error))
            finished = true
          case nil: finished = true
          }
          condition.broadcast()
          while !finished && !cancelled && ready.count >= depth { condition.wait() }
          if cancelled { finished = true }
          return finished
        }
        if stop { return }
      }
    }
    thread.name = name
    thread.start()
  }

  // No deinit: the producing thread holds the object until it stops, so stopping early
  // is the consumer's `cancel()`.

  public func next() throws -> Element? {
    try condition.withLock {
      while ready.isEmpty && !finished { condition.wait() }
      guard !ready.isEmpty else { return nil }
      let item = ready.removeFirst()
      condition.broadcast()
      return try item.get()
    }
  }

  /// Stops producing after the item in progress; later `next()` calls may return nil.
  public func cancel() {
    condition.withLock {
      cancelled = true
      condition.broadcast()
    }
  }
}

/// Runs `work` on its own thread from the start; `value()` waits for it and returns its
/// result or rethrows its error.
public final class BackgroundTask<Value: Sendable>: @unchecked Sendable {
  private let done = DispatchSemaphore(value: 0)
  private var result: Result<Value, any Error>?

  public init(_ work: @escaping @Sendable () throws -> Value) {
    let thread = Thread { [self] in
      result = Result { try work() }
      done.signal()
    }
    thread.start()
  }

  /// Waits for the work (every call: the semaphore is a latch, signalled again for the
  /// next caller), so `result` is only read after the thread wrote it.
  public func value() throws -> Value {
    done.wait()
    done.signal()
    return try result!.get()
  }

  /// Whether the work has ended, without waiting.
  public var isFinished: Bool {
    guard done.wait(timeout: .now()) == .success else { return false }
    done.signal()
    return true
  }
}
