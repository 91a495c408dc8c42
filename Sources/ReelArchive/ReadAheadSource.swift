import Foundation
import ReelCore

/// Bytes handed from one thread to a reader on another, a bounded number of pieces at a
/// time: the reader sees them as an archive stream.
final class ArchiveBytePipe: ArchiveByteSource, Sendable {
  private let pieces: BoundedQueue<[UInt8]>
  /// The piece being read and how far; only the reading thread uses it (one lock per
  /// read call, not per byte).
  private let current = Locked<(piece: [UInt8], position: Int)>(([], 0))

  init(depth: Int = 16) {
    pieces = BoundedQueue(capacity: depth)
  }

  /// Queues a copy of `bytes`, waiting while `depth` pieces are queued. Returns false once
  /// the reader has stopped reading.
  @discardableResult
  func push(_ bytes: UnsafeRawBufferPointer) -> Bool {
    guard !bytes.isEmpty else { return true }
    return pieces.put(Array(bytes))
  }

  /// The end of the stream, or (with `failure`) the error the reader gets after the queued
  /// pieces.
  func close(failure: (any Error)? = nil) {
    pieces.close(failure: failure)
  }

  /// The reader is done: pushes stop waiting and are dropped.
  func abandon() {
    pieces.cancel()
  }

  func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    try current.withLock { current in
      if current.position == current.piece.count {
        guard let next = try pieces.take() else { return 0 }
        current = (next, 0)
      }
      let count = min(buffer.count, current.piece.count - current.position)
      let position = current.position
      current.piece.withUnsafeBytes {
        buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[position..<(position + count)]))
      }
      current.position += count
      return count
    }
  }
}

/// Reads an archive source ahead on its own thread, so the disk or tape keeps streaming
/// while frames are decrypted and checked (a bounded number of 1 MiB pieces in flight).
final class ReadAheadSource: ArchiveByteSource, Sendable {
  private let pipe: ArchiveBytePipe
  private let reading: BackgroundTask<Void>

  init(_ source: any ArchiveByteSource, depth: Int = 16) {
    let pipe = ArchiveBytePipe(depth: depth)
    self.pipe = pipe
    nonisolated(unsafe) var inner = source
    reading = BackgroundTask(name: "reel-read-ahead") {
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
