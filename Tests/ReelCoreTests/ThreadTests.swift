import ReelCore
import Testing

@Suite struct LockedTests {
  @Test func changesFromManyThreadsAllCount() {
    let counter = Locked(0)
    let threads = WorkerThread.group(4, name: { "test adder \($0)" }) { _ in
      for _ in 0..<10_000 { counter.withLock { $0 += 1 } }
    }
    threads.joinAll()
    #expect(counter.withLock { $0 } == 40_000)
  }

  @Test func aWaiterRunsOnceWhatItWaitsForHolds() {
    let stage = Locked(0)
    let waiter = WorkerThread(name: "test waiter") {
      stage.withLock(when: { $0 == 1 }) { $0 = 2 }
      stage.broadcast()
    }
    stage.withLock { $0 = 1 }
    stage.broadcast()
    stage.withLock(when: { $0 == 2 }) { _ in }
    waiter.join()
    #expect(stage.withLock { $0 } == 2)
  }

  @Test func aWaitWithATimeoutEndsWithoutTheCondition() {
    let never = Locked(false)
    let ran = never.withLock(when: { $0 }, timeout: .milliseconds(5)) { $0 }
    #expect(ran == false)
  }
}

@Suite struct WorkerThreadTests {
  @Test func joinReturnsAfterTheBodyHasRun() {
    let done = Locked(false)
    let thread = WorkerThread(name: "test worker") { done.withLock { $0 = true } }
    thread.join()
    #expect(done.withLock { $0 })
    thread.join()
  }

  @Test func aGroupGivesEachThreadItsIndex() {
    let seen = Locked<Set<Int>>([])
    WorkerThread.group(5, name: { "test \($0)" }) { index in seen.withLock { _ = $0.insert(index) } }.joinAll()
    #expect(seen.withLock { $0 } == Set(0..<5))
  }
}

@Suite struct ReadAheadTests {
  @Test func itemsComeInOrderThenNil() throws {
    let reader = ReadAhead<Int>(name: "test read-ahead", depth: 3) { index in index < 100 ? index : nil }
    var items: [Int] = []
    while let item = try reader.next() { items.append(item) }
    #expect(items == Array(0..<100))
    #expect(try reader.next() == nil)
  }

  @Test func anErrorComesAfterTheItemsBeforeIt() throws {
    let reader = ReadAhead<Int>(name: "test read-ahead", depth: 2) { index in
      if index == 3 { throw Failure(code: 3) }
      return index
    }
    #expect(try reader.next() == 0)
    #expect(try reader.next() == 1)
    #expect(try reader.next() == 2)
    #expect(throws: Failure(code: 3)) { try reader.next() }
  }

  @Test func theProducerStaysAtMostDepthItemsAhead() throws {
    let depth = 2
    let produced = Locked(0)
    let reader = ReadAhead<Int>(name: "test read-ahead", depth: depth) { index in
      guard index < 1000 else { return nil }
      produced.withLock { $0 = index + 1 }
      return index
    }
    var taken = 0
    var worstAhead = 0
    while try reader.next() != nil {
      taken += 1
      // An item is made only once there is room for it: queued and in the making
      // together stay within `depth`.
      worstAhead = max(worstAhead, produced.withLock { $0 } - taken - depth)
    }
    #expect(worstAhead <= 0)
  }

  @Test func severalProducersStillGiveTheItemsInOrderThenNil() throws {
    let reader = ReadAhead<Int>(name: "test read-ahead", producers: 3) { index in index < 100 ? index : nil }
    var items: [Int] = []
    while let item = try reader.next() { items.append(item) }
    #expect(items == Array(0..<100))
    #expect(try reader.next() == nil)
  }

  @Test func severalProducersMakeItemsAtTheSameTime() throws {
    // Item 0 is held back until item 1 has begun: one producer would wait the full timeout
    // and see item 1 never start.
    let started = Locked<Set<Int>>([])
    let overlapped = Locked(false)
    let reader = ReadAhead<Int>(name: "test read-ahead", producers: 2) { index in
      guard index < 4 else { return nil }
      started.withLock { _ = $0.insert(index) }
      started.broadcast()
      if index == 0 {
        let sawTheNext = started.withLock(when: { $0.contains(1) }, timeout: .seconds(10)) { $0.contains(1) }
        overlapped.withLock { $0 = sawTheNext }
      }
      return index
    }
    var items: [Int] = []
    while let item = try reader.next() { items.append(item) }
    #expect(items == [0, 1, 2, 3])
    #expect(overlapped.withLock { $0 })
  }

  @Test func withSeveralProducersAnErrorStillComesAfterTheItemsBeforeIt() throws {
    let reader = ReadAhead<Int>(name: "test read-ahead", depth: 2, producers: 2) { index in
      if index == 5 { throw Failure(code: 5) }
      return index
    }
    for expected in 0..<5 { #expect(try reader.next() == expected) }
    #expect(throws: Failure(code: 5)) { try reader.next() }
  }

  @Test func releasingItEarlyStopsAndJoinsTheProducer() {
    let produced = Locked(0)
    for _ in 0..<50 {
      let reader = ReadAhead<Int>(name: "test read-ahead") { index in
        produced.withLock { $0 += 1 }
        return index
      }
      _ = try? reader.next()
      reader.cancel()
    }
    #expect(produced.withLock { $0 } >= 50)
  }
}

@Suite struct ForEachIndexOnThreadsTests {
  @Test func everyIndexRunsOnceAcrossTheThreads() {
    let seen = Locked<[Int: Int]>([:])
    let workers = Locked<Set<Int>>([])
    forEachIndexOnThreads(500, threads: 3, name: "test threads") { worker, index in
      seen.withLock { $0[index, default: 0] += 1 }
      workers.withLock { _ = $0.insert(worker) }
      return true
    }
    #expect(seen.withLock { $0 } == Dictionary(uniqueKeysWithValues: (0..<500).map { ($0, 1) }))
    #expect(workers.withLock { $0 }.isSubset(of: [0, 1, 2]))
  }

  @Test func falseStopsEveryThreadFromTakingMore() {
    let ran = Locked(0)
    forEachIndexOnThreads(10_000, threads: 2, name: "test threads") { _, index in
      ran.withLock { $0 += 1 }
      return index != 3
    }
    // Index 3 stops the run; the other thread may finish the index it holds.
    #expect(ran.withLock { $0 } < 10)
  }

  @Test func noIndicesRunNothing() {
    let ran = Locked(0)
    forEachIndexOnThreads(0, threads: 4, name: "test threads") { _, _ in
      ran.withLock { $0 += 1 }
      return true
    }
    #expect(ran.withLock { $0 } == 0)
  }
}

@Suite struct BackgroundTaskTests {
  @Test func valueWaitsForTheWork() throws {
    let task = BackgroundTask { (1...100).reduce(0, +) }
    #expect(try task.value() == 5050)
    #expect(try task.value() == 5050)
    #expect(task.isFinished)
  }

  @Test func valueRethrowsTheWorksError() {
    let task = BackgroundTask { () throws -> Int in throw Failure(code: 1) }
    #expect(throws: Failure(code: 1)) { try task.value() }
  }
}
