/// Something that can be read as a volume: the live store's point-in-time view, and what
/// the capture server exports read-only. Lives here so capture and store, which do not
/// depend on each other, can meet through it.
package protocol VolumeSource: Sendable {
  var size: UInt64 { get }
  /// The bytes of `offset..<offset+length`; the range lies inside the volume.
  func read(offset: UInt64, length: Int) throws -> [UInt8]
}
