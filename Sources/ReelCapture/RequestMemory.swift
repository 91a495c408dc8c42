import Foundation
import ReelCore

/// The memory every connection of one server draws its request buffers from (write
/// payloads and read replies), bounded as a whole: a buffer is handed out only while the
/// bytes in use plus the idle ones kept for reuse stay within `capacity`; otherwise the
/// taker waits. So any number of clients that send large requests and never read the
/// replies hold at most `capacity` bytes between them.
///
/// A connection takes a buffer before it receives a payload or queues a read, so a
/// connection that waits here stops reading its socket: its client is slowed down
/// instead of being served from memory the server does not have.
final class RequestMemory: Sendable {
  /// Buffers come in multiples of this, so requests of similar sizes share them.
  static let granule = 64 << 10

  /// Whole granules, at least one.
  let capacity: Int
  /// Idle buffers kept for reuse: enough for a few large requests; a quiet server gives
  /// the rest back to the system.
  private let idleLimit: Int

  private struct State {
    var idle: [PooledBuffer] = []
    var idleBytes = 0
    var inUseBytes = 0
    var closed = false
  }
  private let state = Locked(State())

  init(capacity: Int) {
    self.capacity = max(Self.granule, capacity / Self.granule * Self.granule)
    idleLimit = min(self.capacity, 64 << 20)
  }

  static func rounded(_ count: Int) -> Int { max(granule, (count + granule - 1) / granule * granule) }

  /// A buffer of `count` bytes (contents undefined), waiting while the memory is taken.
  /// Nil when `abandoned` holds (checked whenever `wakeWaiters` is called) or once the
  /// server closed the memory. `count` must be at most `capacity`.
  func take(_ count: Int, unless abandoned: () -> Bool = { false }) -> PooledBuffer? {
    let size = Self.rounded(count)
    precondition(size <= capacity, "a request of \(count) bytes is larger than the request memory")
    var released: [PooledBuffer] = []
    defer { released.removeAll() }  // freed outside the lock
    enum Grant {
      case refused
      case reused(PooledBuffer)
      case fresh
    }
    let grant: Grant = state.withLock(when: {
      $0.closed || $0.inUseBytes + size <= capacity || abandoned()
    }) { state in
      guard !state.closed, state.inUseBytes + size <= capacity else { return .refused }
      // A buffer much larger than asked would hold memory another request could use.
      if let index = state.idle.lastIndex(where: { $0.storage.count >= size && $0.storage.count <= 2 * size }) {
        let buffer = state.idle.remove(at: index)
        state.idleBytes -= buffer.storage.count
        state.inUseBytes += buffer.storage.count
        return .reused(buffer)
      }
      // Idle buffers give way to a fresh one when the total would pass the capacity.
      while state.inUseBytes + state.idleBytes + size > capacity, let dropped = state.idle.popLast() {
        state.idleBytes -= dropped.storage.count
        released.append(dropped)
      }
      state.inUseBytes += size
      return .fresh
    }
    let buffer: PooledBuffer
    switch grant {
    case .refused: return nil
    case .reused(let reused): buffer = reused
    case .fresh: buffer = PooledBuffer(capacity: size)
    }
    buffer.count = count
    return buffer
  }

  /// Gives a buffer back; it is kept for reuse while the total stays within `capacity`
  /// and the idle ones within `idleLimit`.
  func recycle(_ buffer: PooledBuffer) {
    state.withLock { state in
      state.inUseBytes -= buffer.storage.count
      guard !state.closed, state.idleBytes + buffer.storage.count <= idleLimit,
        state.inUseBytes + state.idleBytes + buffer.storage.count <= capacity
      else { return }
      state.idleBytes += buffer.storage.count
      state.idle.append(buffer)
    }
    state.broadcast()
  }

  /// Makes every waiting `take` check its `abandoned` condition again.
  func wakeWaiters() {
    state.withLock { _ in }
    state.broadcast()
  }

  /// Shutdown: waiting and later `take`s return nil; buffers in use can still be recycled.
  func close() {
    var idle: [PooledBuffer] = []
    state.withLock { state in
      state.closed = true
      swap(&idle, &state.idle)
      state.idleBytes = 0
    }
    state.broadcast()
    idle.removeAll()  // freed outside the lock
  }

  /// Bytes handed out and not recycled yet (for the log and tests).
  var inUseBytes: Int { state.withLock { $0.inUseBytes } }
}
