import Foundation
import ReelCodec
import ReelCore
import ReelIO

/// One member being staged as a file before it goes into the tar: frames are appended,
/// its size and SHA-256 kept as they grow.
final class StagedMember {
  let name: String
  let number: Int
  let path: String
  private let file: DirectFileWriter
  private let hasher = SHA256Hasher()
  private(set) var size: UInt64 = 0
  private(set) var frames: UInt64 = 0

  init(name: String, number: Int, path: String) throws {
    self.name = name
    self.number = number
    self.path = path
    try Durable.makeDirectory((path as NSString).deletingLastPathComponent)
    file = try DirectFileWriter(creating: path)
  }

  /// Seals `plaintext` as the member's next frame; returns the frame's offset and length.
  func appendFrame(
    _ plaintext: UnsafeRawBufferPointer, content: UInt8, archiveID: UUID, cipher: AES256GCM
  ) throws -> (offset: UInt64, length: Int) {
    let header = ArchiveFrame.Header(
      content: content, plaintextLength: plaintext.count, member: number, frameNumber: frames)
    let frame = ArchiveFrame.seal(plaintext, header: header, archiveID: archiveID, cipher: cipher)
    let offset = size
    try file.append(frame)
    hasher.update(frame)
    size += UInt64(frame.count)
    frames += 1
    return (offset, frame.count)
  }

  /// Writes what is buffered; returns the finished member's size and digest.
  func finish() throws -> ArchiveManifest.Member {
    try file.finish()
    return ArchiveManifest.Member(
      name: name, role: number == 0 ? "index" : "pack", size: size, sha256: hasher.finish().hex)
  }
}

/// Streams a staged file into the tar in 1 MiB pieces, reading ahead while the tar is
/// written.
func copyStaged(_ path: String, size: UInt64, into write: (UnsafeRawBufferPointer) throws -> Void) throws {
  let file = ReadAheadSource(try DirectArchiveSource(path: path))
  let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: ArchiveFormat.recordSize, alignment: 16)
  defer { buffer.deallocate() }
  var offset: UInt64 = 0
  while offset < size {
    try Interrupt.check()
    let want = Int(min(UInt64(buffer.count), size - offset))
    let count = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<want]))
    guard count > 0 else { throw ReelError(.io, "\(path): shorter than the \(size) bytes staged") }
    try write(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
    offset += UInt64(count)
  }
}
