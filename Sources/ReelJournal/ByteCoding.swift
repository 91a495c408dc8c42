/// Little-endian field encoding for the on-disk formats.
struct ByteWriter {
  var bytes: [UInt8]

  init(capacity: Int = 64) {
    bytes = []
    bytes.reserveCapacity(capacity)
  }

  mutating func put(_ value: UInt8) { bytes.append(value) }
  mutating func put(_ value: UInt16) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
  mutating func put(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
  mutating func put(_ value: UInt64) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
  mutating func put(_ value: Int64) { withUnsafeBytes(of: value.littleEndian) { bytes += $0 } }
  mutating func put(_ raw: [UInt8]) { bytes += raw }
  mutating func zeros(_ count: Int) { bytes += repeatElement(0, count: count) }
}

struct ByteReader {
  let bytes: UnsafeRawBufferPointer
  var position = 0

  init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

  mutating func u8() -> UInt8 { defer { position += 1 }; return bytes[position] }
  mutating func u16() -> UInt16 {
    defer { position += 2 }
    return UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt16.self))
  }
  mutating func u32() -> UInt32 {
    defer { position += 4 }
    return UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt32.self))
  }
  mutating func u64() -> UInt64 {
    defer { position += 8 }
    return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self))
  }
  mutating func i64() -> Int64 { Int64(bitPattern: u64()) }
  mutating func raw(_ count: Int) -> [UInt8] {
    defer { position += count }
    return Array(bytes[position..<(position + count)])
  }
  mutating func skip(_ count: Int) { position += count }
}
