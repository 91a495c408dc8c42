import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Hands received requests from a connection's receiving thread to its workers. Bounded
/// by count and by payload bytes, so a fast client cannot make the server buffer without
/// limit: `put` blocks until there is room. Takers and the putter wait on separate
/// conditions and each change wakes one thread that can use it, not every waiting one.
final class RequestQueue<Item: Sendable>: @unchecked Sendable {
  private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
  private let notEmpty = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
  private let hasRoom = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
  private var items: [(item: Item, bytes: Int)] = []
  private var queuedBytes = 0
  private var finished = false
  private let capacity: Int
  private let byteCapacity: Int

  init(capacity: Int, byteCapacity: Int) {
    self.capacity = capacity
    self.byteCapacity = byteCapacity
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

  func put(_ item: Item, bytes: Int) {
    pthread_mutex_lock(mutex)
    while !items.isEmpty && (items.count >= capacity || queuedBytes + bytes > byteCapacity) {
      pthread_cond_wait(hasRoom, mutex)
    }
    items.append((item, bytes))
    queuedBytes += bytes
    pthread_cond_signal(notEmpty)
    pthread_mutex_unlock(mutex)
  }

  /// The next item; nil once `finish` was called and everything was taken.
  func take() -> Item? {
    pthread_mutex_lock(mutex)
    defer { pthread_mutex_unlock(mutex) }
    while items.isEmpty && !finished { pthread_cond_wait(notEmpty, mutex) }
    guard !items.isEmpty else { return nil }
    let (item, bytes) = items.removeFirst()
    queuedBytes -= bytes
    // One putter per queue: the receiving thread. Each put signalled one taker already.
    pthread_cond_signal(hasRoom)
    return item
  }

  func finish() {
    pthread_mutex_lock(mutex)
    finished = true
    pthread_cond_broadcast(notEmpty)
    pthread_cond_broadcast(hasRoom)
    pthread_mutex_unlock(mutex)
  }
}
