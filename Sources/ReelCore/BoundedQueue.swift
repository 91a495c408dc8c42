#if canImport(Glibc)
  import Glibc
#endif

/// Hands elements from producing threads to consuming ones in order, bounded by count and
/// by cost (an element's bytes), so a fast producer cannot make memory grow without limit:
/// `put` blocks until there is room. An element larger than the whole byte limit still
/// goes in when the queue is empty.
///
/// `close` ends the stream (consumers drain it, then get nil, or the error it was closed
/// with); `cancel` stops both sides at once and drops what is queued. Consumers and
/// producers wait on separate conditions and each change wakes one thread that can use
/// it, not every waiting one.
// The state is touched only with `mutex` held; two conditions share it, which `Locked` lacks.
package final class BoundedQueue<Element: Sendable>: @unchecked Sendable {
  private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
  private let notEmpty = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
  private let hasRoom = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
  /// Taken slots before `head` are nil, so a consumed element is released at once.
  private var slots: [(element: Element, cost: Int)?] = []
  private var head = 0
  private var queuedCost = 0
  private var closed = false
  private var failure: (any Error)?
  private var cancelled = false
  private let capacity: Int
  private let costCapacity: Int

  package init(capacity: Int, costCapacity: Int = .max) {
    precondition(capacity > 0 && costCapacity > 0)
    self.capacity = capacity
    self.costCapacity = costCapacity
    pthread_mutex_init(mutex, nil)
    pthread_cond_init(notEmpty, nil)
    pthread_cond_init(hasRoom, nil)
  }

  deinit {
    pthread_cond_destroy(hasRoom)
    pthread_cond_destroy(notEmpty)
    pthread_mutex_destroy(mutex)
    hasRoom.deallocate()
    notEmpty.deallocate()
    mutex.deallocate()
  }

  private var count: Int { slots.count - head }

  /// Queues `element`, waiting while the queue is full. Returns false, dropping it, once
  /// the queue is cancelled or closed.
  @discardableResult
  package func put(_ element: Element, cost: Int = 0) -> Bool {
    pthread_mutex_lock(mutex)
    defer { pthread_mutex_unlock(mutex) }
    while !cancelled && !closed && count > 0 && (count >= capacity || queuedCost + cost > costCapacity) {
      pthread_cond_wait(hasRoom, mutex)
    }
    guard !cancelled && !closed else { return false }
    slots.append((element, cost))
    queuedCost += cost
    pthread_cond_signal(notEmpty)
    return true
  }

  /// Waits until a `put` would not block (for a producer that makes an element only when it
  /// can go in at once). Returns false once the queue is cancelled or closed.
  package func waitForRoom() -> Bool {
    pthread_mutex_lock(mutex)
    defer { pthread_mutex_unlock(mutex) }
    while !cancelled && !closed && count >= capacity { pthread_cond_wait(hasRoom, mutex) }
    return !cancelled && !closed
  }

  /// The next element, waiting for one; nil once the queue is cancelled, or closed and
  /// drained. A queue closed with an error throws it after the last element, every time.
  package func take() throws -> Element? {
    pthread_mutex_lock(mutex)
    defer { pthread_mutex_unlock(mutex) }
    while count == 0 && !closed && !cancelled { pthread_cond_wait(notEmpty, mutex) }
    return try next()
  }

  /// The next element if one is queued now, without waiting; otherwise like `take` at
  /// the end of the stream, or nil.
  package func poll() throws -> Element? {
    pthread_mutex_lock(mutex)
    defer { pthread_mutex_unlock(mutex) }
    guard count > 0 || closed || cancelled else { return nil }
    return try next()
  }

  /// Called with `mutex` held and something to report.
  private func next() throws -> Element? {
    if cancelled { return nil }
    guard count > 0, let slot = slots[head] else {
      if let failure { throw failure }
      return nil
    }
    slots[head] = nil
    head += 1
    if head == slots.count {
      slots.removeAll(keepingCapacity: true)
      head = 0
    } else if head >= 1024 && head * 2 >= slots.count {
      slots.removeFirst(head)
      head = 0
    }
    queuedCost -= slot.cost
    pthread_cond_signal(hasRoom)
    return slot.element
  }

  /// No more elements: consumers take what is queued, then get nil, or `failure` thrown.
  package func close(failure: (any Error)? = nil) {
    pthread_mutex_lock(mutex)
    defer { pthread_mutex_unlock(mutex) }
    guard !closed else { return }
    closed = true
    self.failure = failure
    pthread_cond_broadcast(notEmpty)
    pthread_cond_broadcast(hasRoom)
  }

  /// Stops both sides now: waiting producers and consumers return, queued elements are
  /// dropped, later `put`s return false and `take`s nil.
  package func cancel() {
    pthread_mutex_lock(mutex)
    cancelled = true
    let dropped = slots
    slots = []
    head = 0
    queuedCost = 0
    pthread_cond_broadcast(notEmpty)
    pthread_cond_broadcast(hasRoom)
    pthread_mutex_unlock(mutex)
    // Released without the lock: an element's deinit may be slow or use the queue.
    _ = dropped
  }

  package var isCancelled: Bool {
    pthread_mutex_lock(mutex)
    defer { pthread_mutex_unlock(mutex) }
    return cancelled
  }
}
