import Testing

@testable import ReelCodec

@Suite struct CRC32CTests {
  @Test func knownVectors() {
    // RFC 3720 B.4 test vectors and the classic "123456789" check value.
    #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
    #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
    #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
    #expect(CRC32C.checksum((0..<32).map { UInt8(31 - $0) }) == 0x113F_DB5C)
  }

  @Test func incrementalEqualsWholeAtEverySplit() {
    let data = (0..<100).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
    let whole = CRC32C.checksum(data)
    for split in 0...data.count {
      var crc = CRC32C()
      crc.update(Array(data[..<split]))
      crc.update(Array(data[split...]))
      #expect(crc.value == whole, "split at \(split)")
    }
  }
}
