import ReelCore
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

  @Test func hardwareAndTablePathsAgree() {
    var state: UInt64 = 0x1234_5678
    let data = (0..<4099).map { _ -> UInt8 in
      state = state &* 6_364_136_223_846_793_005 &+ 1
      return UInt8(truncatingIfNeeded: state >> 33)
    }
    for length in [0, 1, 7, 8, 9, 63, 64, 767, 768, 769, 1000, 4099] {
      var software = CRC32C(softwareOnly: true)
      software.update(Array(data[..<length]))
      var fastest = CRC32C()
      fastest.update(Array(data[..<length]))
      #expect(software.value == fastest.value, "length \(length)")
    }
  }

  /// Long payloads go through three parallel chains per block, joined by zero-shift
  /// tables; every length around the block edges must match the table path.
  @Test func parallelChainsAgreeWithTheTablePath() {
    var state: UInt64 = 0x9E37_79B9
    let data = (0..<(3 * 8192 * 2 + 5000)).map { _ -> UInt8 in
      state = state &* 6_364_136_223_846_793_005 &+ 1
      return UInt8(truncatingIfNeeded: state >> 33)
    }
    for length in [3 * 8192 - 1, 3 * 8192, 3 * 8192 + 1, 3 * 8192 + 768 + 17, 2 * 3 * 8192, data.count] {
      for start in [0, 3] {
        let slice = Array(data[start..<(start + length - start)])
        var software = CRC32C(softwareOnly: true)
        software.update(slice)
        var fastest = CRC32C()
        fastest.update(slice)
        var split = CRC32C()
        split.update(Array(slice[..<(slice.count / 3)]))
        split.update(Array(slice[(slice.count / 3)...]))
        #expect(software.value == fastest.value && split.value == fastest.value, "length \(length), start \(start)")
      }
    }
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

  /// Checksums of two parts combine into the whole's at every split of a short string, and
  /// at random splits of megabytes (an upload's parts), including empty parts.
  @Test func partChecksumsCombineIntoTheWhole() {
    let short = (0..<100).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
    for split in 0...short.count {
      let combined = CRC32C.combine(
        CRC32C.checksum(Array(short[..<split])), CRC32C.checksum(Array(short[split...])),
        secondLength: UInt64(short.count - split))
      #expect(combined == CRC32C.checksum(short), "split at \(split)")
    }
    var generator = SystemRandomNumberGenerator()
    let long = (0..<(3 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) }
    for _ in 0..<8 {
      var cuts = (0..<3).map { _ in Int.random(in: 0...long.count, using: &generator) }.sorted()
      cuts = [0] + cuts + [long.count]
      var combined = CRC32C.checksum([UInt8]())
      for (start, end) in zip(cuts, cuts.dropFirst()) {
        combined = CRC32C.combine(
          combined, CRC32C.checksum(Array(long[start..<end])), secondLength: UInt64(end - start))
      }
      #expect(combined == CRC32C.checksum(long), "cuts at \(cuts)")
    }
    #expect(CRC32C.combine(0x1234_5678, CRC32C.checksum([UInt8]()), secondLength: 0) == 0x1234_5678)
  }
}

@Suite struct DigestAndCompressionTests {
  @Test func sha256KnownVectors() {
    #expect(SHA256Digest.hash([UInt8]()).hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    #expect(
      SHA256Digest.hash(Array("abc".utf8)).hex == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    let digest = SHA256Digest.hash(Array("abc".utf8))
    #expect(SHA256Digest(hex: digest.hex) == digest)
    #expect(SHA256Digest(hex: "xyz") == nil)
  }

  @Test func zstdRoundTripAndDamage() throws {
    let input = (0..<100_000).map { UInt8(truncatingIfNeeded: $0 % 251 &* 7) }
    let compressor = ZstdCompressor()
    let packed = compressor.compress(input)
    #expect(packed.count < input.count / 10)
    #expect(try Zstd.decompress(packed, expectedSize: input.count, what: "test") == input)
    var damaged = packed
    damaged[damaged.count / 2] ^= 0xFF
    damaged[4] ^= 0xFF
    #expect(throws: ReelError.self) { try Zstd.decompress(damaged, expectedSize: input.count, what: "test") }
    #expect(throws: ReelError.self) { try Zstd.decompress(packed, expectedSize: input.count - 1, what: "test") }
  }
}
