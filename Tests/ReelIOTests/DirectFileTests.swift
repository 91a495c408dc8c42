import Foundation
import ReelCore
import ReelIO
import ReelTestSupport
import Testing

@Suite("Direct I/O files")
struct DirectFileTests {
  /// Bytes that differ at every offset, so a block written at the wrong place shows.
  static func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
    var state = seed
    return (0..<count).map { _ in
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return UInt8(truncatingIfNeeded: state >> 33)
    }
  }

  /// Folders on the disk (direct I/O) and, where there is one, on tmpfs (which may refuse
  /// it, so the page-cache path runs too).
  static func folders() -> [TemporaryDirectory] {
    var folders = [TemporaryDirectory("reel-direct")]
    if FileManager.default.isWritableFile(atPath: "/dev/shm"),
      let memory = TemporaryDirectory(in: "/dev/shm", label: "reel-direct")
    {
      folders.append(memory)
    }
    return folders
  }

  @Test(
    "appends of odd sizes across many buffers read back exactly, with the file cut to its size",
    arguments: [0, 1, 4095, 4096, 1 << 20, (5 << 20) + 12_345])
  func roundTrip(total: Int) throws {
    for folder in Self.folders() {
      let path = folder.path + "/file"
      let bytes = Self.pattern(total, seed: UInt64(total))
      let writer = try DirectFileWriter(creating: path, buffers: 2)
      var offset = 0
      var step = 1
      while offset < bytes.count {
        let end = min(bytes.count, offset + step)
        try bytes[offset..<end].withUnsafeBytes { try writer.append($0) }
        offset = end
        step = step * 7 % 300_007 + 1
      }
      try writer.finish()
      try writer.file.sync()
      #expect(writer.size == UInt64(total))
      #expect(try PosixFile.openForReading(path).size() == UInt64(total))
      #expect(FileManager.default.contents(atPath: path).map(Array.init) == bytes)

      let reader = try DirectFileReader(path: path)
      var read: [UInt8] = []
      let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 100_003, alignment: 1)
      defer { buffer.deallocate() }
      while true {
        let count = try reader.read(into: buffer)
        if count == 0 { break }
        read += buffer[0..<count]
      }
      #expect(read == bytes, "\(folder.path): direct=\(reader.direct)")
    }
  }

  @Test("a reader on another thread follows the writes as they complete and sees every byte")
  func readerFollowsWriter() throws {
    for folder in Self.folders() {
      let path = folder.path + "/file"
      let bytes = Self.pattern((3 << 20) + 777, seed: 7)
      let writer = try DirectFileWriter(creating: path, buffers: 2)
      let reader = try DirectFileReader(path: path)
      nonisolated(unsafe) var seen: [UInt8] = []
      let done = DispatchSemaphore(value: 0)
      let following = Thread {
        defer { done.signal() }
        var offset: UInt64 = 0
        while true {
          let (completed, final) = writer.waitForWrites(beyond: offset)
          while offset < completed {
            let count = Int(min(UInt64(DirectIO.blockSize), completed - offset))
            seen += (try? reader.read(exactly: count, at: offset)).map(Array.init) ?? []
            offset += UInt64(count)
          }
          if final { break }
        }
      }
      following.start()
      for start in stride(from: 0, to: bytes.count, by: 65_536) {
        try bytes[start..<min(bytes.count, start + 65_536)].withUnsafeBytes { try writer.append($0) }
      }
      try writer.finish()
      done.wait()
      #expect(seen == bytes, "\(folder.path): direct=\(reader.direct)")
      // Past the end the reader says where the file ends instead of returning less.
      let error = #expect(throws: ReelError.self) { try reader.read(exactly: 4096, at: UInt64(4 << 20)) }
      #expect(error?.message.contains(path) == true)
    }
  }

  @Test("an existing file is refused, not overwritten")
  func refusesExisting() throws {
    let folder = TemporaryDirectory("reel-direct")
    let path = folder.path + "/file"
    #expect(FileManager.default.createFile(atPath: path, contents: Data([1, 2, 3])))
    #expect(throws: (any Error).self) { try DirectFileWriter(creating: path) }
    #expect(FileManager.default.contents(atPath: path) == Data([1, 2, 3]))
  }
}
