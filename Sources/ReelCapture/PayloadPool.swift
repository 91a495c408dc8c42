import Foundation

/// A buffer for one request's payload (a write's data, or a read's reply), owned by one
/// thread at a time: received into, handed to a worker, given back to the pool.
final class Payload: @unchecked Sendable {
  let storage: UnsafeMutableRawBufferPointer
  var count: Int

  init(capacity: Int) {
    storage = .allocate(byteCount: max(capacity, 1), alignment: 4096)
    count = 0
  }

  deinit { storage.deallocate() }

  var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(rebasing: storage[0..<count]) }
}

/// Reuses a connection's payload buffers. Fresh memory for every request costs page
/// faults, zeroing by the kernel and the allocator returning it to the kernel again, on
/// every request; a client streaming writes needs the same few buffers over and over.
final class PayloadPool: @unchecked Sendable {
  /// Buffers come in multiples of this, so requests of similar sizes share them.
  private static let granule = 64 << 10
  private let lock = NSLock()
  private var free: [Payload] = []
  private var freeBytes = 0
  private let retainedBytes: Int

  /// Keeps at most `retainedBytes` of idle buffers.
  init(retainedBytes: Int) {
    self.retainedBytes = retainedBytes
  }

  /// A buffer of `count` bytes (contents undefined).
  func take(_ count: Int) -> Payload {
    let payload =
      lock.withLock { () -> Payload? in
        guard let index = free.lastIndex(where: { $0.storage.count >= count }) else { return nil }
        freeBytes -= free[index].storage.count
        return free.remove(at: index)
      } ?? Payload(capacity: (count + Self.granule - 1) / Self.granule * Self.granule)
    payload.count = count
    return payload
  }

  func recycle(_ payload: Payload) {
    lock.withLock {
      guard freeBytes + payload.storage.count <= retainedBytes else { return }
      freeBytes += payload.storage.count
      free.append(payload)
    }
  }
}
