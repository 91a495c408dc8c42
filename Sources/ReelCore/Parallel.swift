import Dispatch

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
