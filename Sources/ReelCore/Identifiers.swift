import Foundation

/// The identity of a protected volume; stable across renames and written into every
/// journal segment so a segment can never be replayed onto the wrong volume.
package struct VolumeID: Hashable, Sendable, Codable, CustomStringConvertible {
  package let uuid: UUID

  package init(_ uuid: UUID = UUID()) { self.uuid = uuid }

  package init?(string: String) {
    guard let uuid = UUID(uuidString: string) else { return nil }
    self.uuid = uuid
  }

  package init(bytes: [UInt8]) {
    precondition(bytes.count == 16)
    uuid = UUID(
      uuid: (
        bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
        bytes[8], bytes[9], bytes[10], bytes[11], bytes[12], bytes[13], bytes[14], bytes[15]
      ))
  }

  package var bytes: [UInt8] {
    withUnsafeBytes(of: uuid.uuid) { Array($0) }
  }

  package var description: String { uuid.uuidString.lowercased() }
}

/// A journal sequence number: strictly increasing across all segments of a volume,
/// starting at 1. Zero means "before the first record".
package typealias Seq = UInt64
