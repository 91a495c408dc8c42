import Foundation
import ReelCore

/// Bytes handed from one thread to a reader on another, a bounded number of pieces at a
/// time: the reader sees them as an archive stream.
final class ArchiveBytePipe: ArchiveByteSource, @unchecked Sendable {
  private let condition = NSCondition()
  private var pieces: [[UInt8]] = []
  private var current: [UInt8] = []
  private var position = 0
  private var finished = false
  private var failure: (any Error)?
  private var abandoned = false
  private let depth: Int

  init(depth: Int = 16) {
    self.depth = depth
  }

  /// Queues a copy of `bytes`, waiting while `depth` pieces are queued. Returns false once
  /// the reader has stopped reading.
  @discardableResult
  func push(_ bytes: UnsafeRawBufferPointer) -> Bool {
    guard !bytes.isEmpty else { return true }
    let piece = Array(bytes)
    return condition.withLock {
      while pieces.count >= depth && !abandoned { condition.wait() }
      guard !abandoned else { return false }
      pieces.append(piece)
      condition.broadcast()
      return true
    }
  }

  /// The end of the stream, or (with `failure`) the error the reader gets after the queued
  /// pieces.
  func close(failure: (any Error)? = nil) {
    condition.withLock {
      finished = true
      self.failure = failure
      condition.broadcast()
    }
  }

  /// The reader is done: pushes stop waiting and are dropped.
  func abandon() {
    condition.withLock {
      abandoned = true
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

/// Reads an archive source ahead on its own thread, so the disk or tape keeps streaming
/// while frames are decrypted and checked (a bounded number of 1 MiB pieces in flight).
final class ReadAheadSource: ArchiveByteSource, @unchecked Sendable {
  private let pipe: ArchiveBytePipe
  private let reading: BackgroundTask<Void>

  init(_ source: any ArchiveByteSource, depth: Int = 16) {
    let pipe = ArchiveBytePipe(depth: depth)
    self.pipe = pipe
    nonisolated(unsafe) var inner = source
    reading = BackgroundTask {
      let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: ArchiveFormat.recordSize, alignment: 16)
      defer { buffer.deallocate() }
      do {
        while true {
          let count = try inner.read(into: buffer)
          guard count > 0, pipe.push(UnsafeRawBufferPointer(rebasing: buffer[0..<count])) else { break }
        }
        pipe.close()
      } catch {
        pipe.close(failure: error)
      }
    }
  }

  /// Stops reading ahead and waits until the source is no longer being read: whoever owns
  /// it (a tape drive) may go on using it directly.
  deinit {
    pipe.abandon()
    try? reading.value()
  }

  func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    try pipe.read(into: buffer)
  }
}
