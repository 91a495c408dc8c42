/// Something that can be read as a volume: the live store's point-in-time view, and what
/// the capture server exports read-only. Lives here so capture and store, which do not
/// depend on each other, can meet through it.
package protocol VolumeSource: Sendable {
  var size: UInt64 { get }
  /// The bytes of `offset..<offset+length`; the range lies inside the volume.
  func read(offset: UInt64, length: Int) throws -> [UInt8]
  /// The bytes of `offset..<offset+buffer.count` into `buffer`, which a server can send as
  /// they are; the range lies inside the volume.
  func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws
}

extension VolumeSource {
  package func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
    let bytes = try read(offset: offset, length: buffer.count)
    bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
  }
}
