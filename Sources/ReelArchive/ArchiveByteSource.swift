import Foundation
import ReelCore
import ReelIO

/// Where the bytes of a sealed archive come from when it is read as a stream: a file, a
/// tape file being read back, a pipe. `read` fills up to `buffer.count` bytes and returns
/// how many; 0 means the end of the archive.
package protocol ArchiveByteSource {
  mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
}

/// Bytes already in memory (a peeked prefix, a test or fuzz input), ending where they do.
package struct InMemoryArchiveSource: ArchiveByteSource {
  private let bytes: [UInt8]
  private var offset = 0

  package init(_ bytes: [UInt8]) { self.bytes = bytes }

  package mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    let count = min(buffer.count, bytes.count - offset)
    guard count > 0 else { return 0 }
    bytes.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + offset, byteCount: count) }
    offset += count
    return count
  }
}

/// An archive file read from its start.
package struct FileArchiveSource: ArchiveByteSource {
  private let file: PosixFile
  private var offset: UInt64 = 0

  package init(path: String) throws {
    file = try PosixFile.openForReading(path)
  }

  package mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    let count = try file.read(into: buffer, at: offset)
    offset += UInt64(count)
    return count
  }
}

/// An archive file read from its start with direct I/O: what the disk holds, not what the
/// page cache remembers (the seal's read-back).
struct DirectArchiveSource: ArchiveByteSource {
  private let reader: DirectFileReader

  init(path: String) throws {
    reader = try DirectFileReader(path: path)
  }

  func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    try reader.read(into: buffer)
  }
}
