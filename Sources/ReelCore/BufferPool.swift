import Foundation

/// A reusable buffer owned by one thread at a time: filled, handed on, given back to its
/// pool (an NBD request's payload, a span of pack bytes being decoded).
// Its memory is filled and read by one thread at a time, handed on with the buffer.
package final class PooledBuffer: @unchecked Sendable {
  package let storage: UnsafeMutableRawBufferPointer
  package var count: Int

  package init(capacity: Int) {
    storage = .allocate(byteCount: max(capacity, 1), alignment: 4096)
    count = 0
  }

  deinit { storage.deallocate() }

  package var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(rebasing: storage[0..<count]) }
}

/// Reuses buffers. Fresh memory for every request costs page faults, zeroing by the
/// kernel and the allocator returning it to the kernel again, every time; a client
/// streaming writes, or a restore reading spans, needs the same few buffers over and over.
package final class BufferPool: Sendable {
  /// Buffers come in multiples of this, so requests of similar sizes share them.
  private static let granule = 64 << 10
  private let free = Locked<(buffers: [PooledBuffer], bytes: Int)>(([], 0))
  private let retainedBytes: Int

  /// Keeps at most `retainedBytes` of idle buffers.
  package init(retainedBytes: Int) {
    self.retainedBytes = retainedBytes
  }

  /// A buffer of `count` bytes (contents undefined).
  package func take(_ count: Int) -> PooledBuffer {
    let payload =
      free.withLock { free -> PooledBuffer? in
        guard let index = free.buffers.lastIndex(where: { $0.storage.count >= count }) else { return nil }
        free.bytes -= free.buffers[index].storage.count
        return free.buffers.remove(at: index)
      } ?? PooledBuffer(capacity: (count + Self.granule - 1) / Self.granule * Self.granule)
    payload.count = count
    return payload
  }

  package func recycle(_ payload: PooledBuffer) {
    free.withLock { free in
      guard free.bytes + payload.storage.count <= retainedBytes else { return }
      free.bytes += payload.storage.count
      free.buffers.append(payload)
    }
  }
}
