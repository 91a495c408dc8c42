import Foundation
import Testing

@testable import ReelJournal

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
    if FileManager.default.isWritableFile(atPath: "/dev/shm") {
      var template = Array("/dev/shm/reel-direct-XXXXXX".utf8CString)
      if template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil {
        folders.append(
          TemporaryDirectory(
            adopting: String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)))
      }
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

  @Test("an existing file is refused, not overwritten")
  func refusesExisting() throws {
    let folder = TemporaryDirectory("reel-direct")
    let path = folder.path + "/file"
    #expect(FileManager.default.createFile(atPath: path, contents: Data([1, 2, 3])))
    #expect(throws: (any Error).self) { try DirectFileWriter(creating: path) }
    #expect(FileManager.default.contents(atPath: path) == Data([1, 2, 3]))
  }
}
