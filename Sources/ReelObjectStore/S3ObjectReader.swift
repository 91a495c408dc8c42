import Foundation
import ReelCore

/// An object (or a range of it) read front to back by ranged GETs of `chunkSize` bytes,
/// fetched ahead on a thread with its own connection, so the consumer (an archive scan)
/// and the network overlap. `read(into:)` fits ReelArchive's `ArchiveByteSource`.
package final class S3ObjectReader {
  package let bucket: String
  package let key: String
  /// The bytes this reader gives in all.
  package let length: UInt64
  private let chunks: ReadAhead<[UInt8]>
  private var current: [UInt8] = []
  private var offset = 0
  private var given: UInt64 = 0

  /// Reads `range` of the object (all of it when nil; its size then comes from a HEAD
  /// through `client`, which is only used here, on the caller's thread).
  package init(
    settings: S3Settings, bucket: String, key: String, range: Range<UInt64>? = nil, knownSize: UInt64? = nil,
    chunkSize: Int = 8 << 20, depth: Int = 2
  ) throws {
    self.bucket = bucket
    self.key = key
    let whole: Range<UInt64>
    if let range {
      whole = range
    } else if let knownSize {
      whole = 0..<knownSize
    } else {
      guard let info = try S3Client(settings: settings).head(bucket: bucket, key: key) else {
        throw ReelError(.notFound, "s3://\(bucket)/\(key) does not exist")
      }
      whole = 0..<info.size
    }
    length = UInt64(whole.count)
    let step = UInt64(max(1, chunkSize))
    let connection = ReaderConnection(settings: settings)
    chunks = ReadAhead(name: "reel-s3-get", depth: max(1, depth)) { index in
      let start = whole.lowerBound + UInt64(index) * step
      guard start < whole.upperBound else { return nil }
      let range = start..<min(whole.upperBound, start + step)
      return try connection.client().get(bucket: bucket, key: key, range: range)
    }
  }

  /// Copies the next bytes into `buffer`; 0 at the end.
  package func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    var filled = 0
    while filled < buffer.count {
      if offset == current.count {
        guard let next = try chunks.next() else { break }
        current = next
        offset = 0
        continue
      }
      let count = min(buffer.count - filled, current.count - offset)
      current.withUnsafeBytes { source in
        (buffer.baseAddress! + filled).copyMemory(from: source.baseAddress! + offset, byteCount: count)
      }
      offset += count
      filled += count
    }
    given += UInt64(filled)
    return filled
  }

  /// Stops fetching ahead (reading ends early).
  package func cancel() { chunks.cancel() }
}

/// The read-ahead thread's own client, made there on first use.
// Used only by the one ReadAhead thread; the compiler cannot see that.
private final class ReaderConnection: @unchecked Sendable {
  private let settings: S3Settings
  private var made: S3Client?

  init(settings: S3Settings) { self.settings = settings }

  func client() throws -> S3Client {
    if let made { return made }
    let client = try S3Client(settings: settings)
    made = client
    return client
  }
}
