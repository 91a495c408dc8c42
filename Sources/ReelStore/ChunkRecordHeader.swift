import ReelCodec

/// The 56-byte header of a chunk record (docs/store-format.md): the one place its layout
/// is written and read. The store's packs and sealed archives carry the same records.
///
/// Bytes 0..<4 magic `RCH1`; 4 encoding (0 raw, 1 zstd, 2 zstd delta: the base chunk's
/// name, then a frame referring to the base's plaintext); 5..<8 zero; 8..<12 plaintext length and 12..<16
/// stored length (u32 LE); 16..<48 SHA-256 of the plaintext, the chunk's name; 48..<52
/// CRC-32C over bytes 0..<48 and the stored bytes (u32 LE); 52..<56 zero.
package struct ChunkRecordHeader: Sendable, Equatable {
  package static let size = 56
  package static let encodingRaw: UInt8 = 0
  package static let encodingZstd: UInt8 = 1
  package static let encodingDelta: UInt8 = 2
  static let magic: [UInt8] = Array("RCH1".utf8)
  static let checksummedBytes = 0..<48
  static let hashBytes = 16..<48

  package var encoding: UInt8
  package var plaintextLength: Int
  package var storedLength: Int

  /// The header and the stored bytes after it.
  package var recordLength: Int { Self.size + storedLength }

  /// The header at the start of `record`; nil when the bytes are too few or lack the magic.
  package init?(_ record: UnsafeRawBufferPointer) {
    guard record.count >= Self.size, record.prefix(Self.magic.count).elementsEqual(Self.magic) else { return nil }
    encoding = record[4]
    plaintextLength = Int(UInt32(littleEndian: record.loadUnaligned(fromByteOffset: 8, as: UInt32.self)))
    storedLength = Int(UInt32(littleEndian: record.loadUnaligned(fromByteOffset: 12, as: UInt32.self)))
  }

  package init?(_ record: [UInt8]) {
    guard let header = record.withUnsafeBytes({ Self($0) }) else { return nil }
    self = header
  }

  /// The SHA-256 name a record's header claims, not checked against anything.
  package static func claimedHash(_ record: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
    UnsafeRawBufferPointer(rebasing: record[hashBytes])
  }

  /// Whether the CRC-32C in a whole record's header matches its header and stored bytes.
  static func checksumMatches(_ record: UnsafeRawBufferPointer) -> Bool {
    var crc = CRC32C()
    crc.update(UnsafeRawBufferPointer(rebasing: record[checksummedBytes]))
    crc.update(UnsafeRawBufferPointer(rebasing: record[size...]))
    return crc.value == UInt32(littleEndian: record.loadUnaligned(fromByteOffset: 48, as: UInt32.self))
  }

  /// Writes the header of a record whose stored bytes are `stored` (which need not follow
  /// it in memory yet) into the `size` bytes of `header`.
  package static func write(
    into header: UnsafeMutableRawBufferPointer, encoding: UInt8, plaintextLength: Int, hash: UnsafeRawBufferPointer,
    stored: UnsafeRawBufferPointer
  ) {
    precondition(header.count == size && hash.count == hashBytes.count)
    writeLeadingFields(into: header, magic: magic, kind: encoding, plaintextLength, stored.count)
    UnsafeMutableRawBufferPointer(rebasing: header[hashBytes]).copyMemory(from: hash)
    var crc = CRC32C()
    crc.update(UnsafeRawBufferPointer(rebasing: header[checksummedBytes]))
    crc.update(stored)
    header.storeBytes(of: crc.value.littleEndian, toByteOffset: 48, as: UInt32.self)
    header.storeBytes(of: 0, toByteOffset: 52, as: UInt32.self)
  }
}

/// The first 16 bytes that chunk records and compression groups share in layout: a
/// 4-byte magic, a kind byte (a record's encoding, a group's layout version), 3 zero
/// bytes, and two lengths (u32 LE).
func writeLeadingFields(
  into header: UnsafeMutableRawBufferPointer, magic: [UInt8], kind: UInt8, _ first: Int, _ second: Int
) {
  magic.withUnsafeBytes { header.copyMemory(from: $0) }
  header.storeBytes(of: kind, toByteOffset: 4, as: UInt8.self)
  header.storeBytes(of: 0, toByteOffset: 5, as: UInt8.self)
  header.storeBytes(of: 0, toByteOffset: 6, as: UInt16.self)
  header.storeBytes(of: UInt32(first).littleEndian, toByteOffset: 8, as: UInt32.self)
  header.storeBytes(of: UInt32(second).littleEndian, toByteOffset: 12, as: UInt32.self)
}
