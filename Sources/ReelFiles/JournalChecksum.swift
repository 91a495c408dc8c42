import Foundation
import ReelCodec

/// The two checksums jbd2 uses, as raw registers (no inversion in or out), the way the
/// kernel chains them: crc32c for checksum v2/v3 and the superblock, and the big-endian
/// CRC-32 (polynomial 0x04C11DB7, most significant bit first) of checksum v1.
enum JournalChecksum {
  static func crc32c(_ register: UInt32, _ bytes: some ContiguousBytes) -> UInt32 {
    var crc = CRC32C(register: register)
    crc.update(bytes)
    return crc.register
  }

  private static let bigEndianTable: [UInt32] = (0..<256).map { byte in
    var crc = UInt32(byte) << 24
    for _ in 0..<8 { crc = crc & 0x8000_0000 != 0 ? (crc << 1) ^ 0x04C1_1DB7 : crc << 1 }
    return crc
  }

  static func crc32BigEndian(_ register: UInt32, _ bytes: [UInt8]) -> UInt32 {
    var crc = register
    bigEndianTable.withUnsafeBufferPointer { table in
      for byte in bytes { crc = (crc << 8) ^ table[Int((crc >> 24) ^ UInt32(byte))] }
    }
    return crc
  }
}
