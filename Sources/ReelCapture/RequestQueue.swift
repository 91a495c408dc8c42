import Foundation

/// Hands received requests from a connection's receiving thread to its workers. Bounded
/// by count and by payload bytes, so a fast client cannot make the server buffer without
/// limit: `put` blocks until there is room.
final class RequestQueue<Item: Sendable>: @unchecked Sendable {
  private let state = NSCondition()
  private var items: [(item: Item, bytes: Int)] = []
  private var queuedBytes = 0
  private var finished = false
  private let capacity: Int
  private let byteCapacity: Int

  init(capacity: Int, byteCapacity: Int) {
    self.capacity = capacity
    self.byteCapacity = byteCapacity
  }

  func put(_ item: Item, bytes: Int) {
    state.withLock {
      while !items.isEmpty && (items.count >= capacity || queuedBytes + bytes > byteCapacity) { state.wait() }
      items.append((item, bytes))
      queuedBytes += bytes
      state.broadcast()
    }
  }

  /// The next item; nil once `finish` was called and everything was taken.
  func take() -> Item? {
    state.withLock {
      while items.isEmpty && !finished { state.wait() }
      guard !items.isEmpty else { return nil }
      let (item, bytes) = items.removeFirst()
      queuedBytes -= bytes
      state.broadcast()
      return item
    }
  }

  func finish() {
    state.withLock {
      finished = true
      state.broadcast()
    }
  }
}
