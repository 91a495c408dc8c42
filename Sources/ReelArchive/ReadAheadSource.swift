import Foundation
import ReelCore

/// Reads an archive source ahead on its own thread, so the disk or tape keeps streaming
/// while frames are decrypted and checked (a bounded number of 1 MiB pieces in flight).
final class ReadAheadSource: ArchiveByteSource, @unchecked Sendable {
  private let condition = NSCondition()
  private var pieces: [[UInt8]] = []
  private var current: [UInt8] = []
  private var position = 0
  private var finished = false
  private var failure: Error?
  private var stopped = false
  private let depth: Int

  init(_ source: any ArchiveByteSource, depth: Int = 16) {
    self.depth = depth
    nonisolated(unsafe) var inner = source
    let thread = Thread { [self] in
      let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: ArchiveFormat.recordSize, alignment: 16)
      defer { buffer.deallocate() }
      while true {
        let piece: [UInt8]
        do {
          let count = try inner.read(into: buffer)
          piece = Array(buffer[0..<count])
        } catch {
          condition.withLock {
            failure = error
            finished = true
            condition.broadcast()
          }
          return
        }
        let done: Bool = condition.withLock {
          while pieces.count >= depth && !stopped { condition.wait() }
          if piece.isEmpty || stopped {
            finished = true
          } else {
            pieces.append(piece)
          }
          condition.broadcast()
          return finished
        }
        if done { return }
      }
    }
    thread.start()
  }

  deinit {
    condition.withLock {
      stopped = true
      condition.broadcast()
    }
  }

  func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    if position == current.count {
      let next: [UInt8]? = try condition.withLock {
        while pieces.isEmpty && !finished { condition.wait() }
        if !pieces.isEmpty {
          let piece = pieces.removeFirst()
          condition.broadcast()
          return piece
        }
        if let failure { throw failure }
        return nil
      }
      guard let next else { return 0 }
      current = next
      position = 0
    }
    let count = min(buffer.count, current.count - position)
    current.withUnsafeBytes {
      buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[position..<(position + count)]))
    }
    position += count
    return count
  }
}
