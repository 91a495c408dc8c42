import ReelCore
import Testing

struct Failure: Error, Equatable {
  var code: Int
}

/// What a producer and a consumer saw, compared under one lock: the queue's limits hold if
/// what was put and not yet taken never exceeds them (plus the one element in the
/// consumer's hand). No timings: a queue that let the producer run ahead breaks the count.
private struct Flow {
  var outstanding = 0
  var outstandingCost = 0
  var worstOverCount = 0
  var worstOverCost = 0
}

@Suite struct BoundedQueueTests {
  @Test func elementsComeOutInTheOrderTheyWentIn() throws {
    let queue = BoundedQueue<Int>(capacity: 4)
    let producer = WorkerThread(name: "test producer") {
      for value in 0..<10_000 { queue.put(value) }
      queue.close()
    }
    var taken: [Int] = []
    while let value = try queue.take() { taken.append(value) }
    producer.join()
    #expect(taken == Array(0..<10_000))
  }

  @Test func aProducerWaitsAtTheCountLimit() throws {
    let capacity = 3
    let queue = BoundedQueue<Int>(capacity: capacity)
    let flow = Locked(Flow())
    let producer = WorkerThread(name: "test producer") {
      for value in 0..<20_000 {
        queue.put(value)
        flow.withLock { $0.outstanding += 1 }
      }
      queue.close()
    }
    while try queue.take() != nil {
      flow.withLock { flow in
        // The element just taken was counted by the producer, and is out of the queue.
        flow.worstOverCount = max(flow.worstOverCount, flow.outstanding - (capacity + 1))
        flow.outstanding -= 1
      }
    }
    producer.join()
    #expect(flow.withLock { $0.worstOverCount } <= 0)
  }

  @Test func aProducerWaitsAtTheByteLimit() throws {
    let costCapacity = 1000
    let queue = BoundedQueue<Int>(capacity: .max, costCapacity: costCapacity)
    let flow = Locked(Flow())
    let producer = WorkerThread(name: "test producer") {
      var state: UInt64 = 7
      for _ in 0..<20_000 {
        state = state &* 6_364_136_223_846_793_005 &+ 1
        let cost = Int(state >> 33) % 300 + 1
        queue.put(cost, cost: cost)
        flow.withLock { $0.outstandingCost += cost }
      }
      queue.close()
    }
    while let cost = try queue.take() {
      flow.withLock { flow in
        flow.worstOverCost = max(flow.worstOverCost, flow.outstandingCost - (costCapacity + cost))
        flow.outstandingCost -= cost
      }
    }
    producer.join()
    #expect(flow.withLock { $0.worstOverCost } <= 0)
  }

  @Test func anElementOverTheByteLimitGoesIntoAnEmptyQueue() throws {
    let queue = BoundedQueue<String>(capacity: 4, costCapacity: 10)
    #expect(queue.put("large", cost: 100))
    #expect(try queue.take() == "large")
  }

  @Test func closingLetsTheConsumerDrainThenEnds() throws {
    let queue = BoundedQueue<Int>(capacity: 8)
    for value in 1...5 { queue.put(value) }
    queue.close()
    #expect(!queue.put(6))
    var taken: [Int] = []
    while let value = try queue.take() { taken.append(value) }
    #expect(taken == [1, 2, 3, 4, 5])
    #expect(try queue.take() == nil)
  }

  @Test func anErrorComesAfterTheElementsQueuedBeforeIt() throws {
    let queue = BoundedQueue<Int>(capacity: 8)
    for value in 1...3 { queue.put(value) }
    queue.close(failure: Failure(code: 9))
    #expect(try queue.take() == 1)
    #expect(try queue.take() == 2)
    #expect(try queue.take() == 3)
    #expect(throws: Failure(code: 9)) { try queue.take() }
    #expect(throws: Failure(code: 9)) { try queue.poll() }
  }

  @Test func cancellingFromTheConsumerWakesABlockedProducer() throws {
    let queue = BoundedQueue<Int>(capacity: 1)
    let refused = Locked(false)
    let producer = WorkerThread(name: "test producer") {
      var value = 0
      while queue.put(value) { value += 1 }
      refused.withLock { $0 = true }
    }
    for _ in 0..<5 { _ = try queue.take() }
    queue.cancel()
    producer.join()
    #expect(refused.withLock { $0 })
    #expect(try queue.take() == nil)
    #expect(queue.isCancelled)
  }

  @Test func cancellingFromTheProducerWakesAWaitingConsumer() throws {
    let queue = BoundedQueue<Int>(capacity: 4)
    let result = Locked<Int??>(nil)
    let consumer = WorkerThread(name: "test consumer") {
      let value = try? queue.take()
      result.withLock { $0 = .some(value) }
    }
    queue.cancel()
    consumer.join()
    #expect(result.withLock { $0 } == .some(nil))
    #expect(!queue.put(1))
  }

  @Test func cancellingDropsWhatIsQueued() throws {
    let queue = BoundedQueue<Int>(capacity: 4)
    queue.put(1)
    queue.put(2)
    queue.cancel()
    #expect(try queue.take() == nil)
    #expect(try queue.poll() == nil)
  }

  @Test func pollDoesNotWait() throws {
    let queue = BoundedQueue<Int>(capacity: 4)
    #expect(try queue.poll() == nil)
    queue.put(3)
    #expect(try queue.poll() == 3)
  }

  @Test func manyProducersAndConsumersShutDownWithoutLosingAnything() throws {
    for round in 0..<300 {
      let queue = BoundedQueue<Int>(capacity: 1 + round % 7, costCapacity: 64)
      let perProducer = 200
      let producers = WorkerThread.group(4, name: { "test producer \($0)" }) { index in
        for value in 0..<perProducer { queue.put(index * perProducer + value, cost: value % 16) }
      }
      let sums = Locked((count: 0, sum: 0))
      let consumers = WorkerThread.group(4, name: { "test consumer \($0)" }) { _ in
        var count = 0
        var sum = 0
        while let value = try? queue.take() {
          count += 1
          sum += value
        }
        sums.withLock {
          $0.count += count
          $0.sum += sum
        }
      }
      producers.joinAll()
      queue.close()
      consumers.joinAll()
      let total = 4 * perProducer
      #expect(sums.withLock { $0.count } == total, "round \(round)")
      #expect(sums.withLock { $0.sum } == total * (total - 1) / 2, "round \(round)")
    }
  }

  @Test func cancellingUnderLoadStopsEveryThread() {
    for round in 0..<300 {
      let queue = BoundedQueue<Int>(capacity: 1 + round % 5)
      let producers = WorkerThread.group(3, name: { "test producer \($0)" }) { _ in
        while queue.put(round) {}
      }
      let consumers = WorkerThread.group(3, name: { "test consumer \($0)" }) { _ in
        while (try? queue.take()) != nil {}
      }
      queue.cancel()
      producers.joinAll()
      consumers.joinAll()
    }
  }
}
