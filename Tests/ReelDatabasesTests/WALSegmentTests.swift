import ReelDatabases
import Testing

/// Which WAL segment files `reel pg` leaves out of its copy: those whose first page header
/// names another address than their name (recycled ahead of the insert position).
struct WALSegmentTests {
  @Test func aSegmentNameGivesItsStartAddressForTheSegmentSize() {
    let sixteen: UInt64 = 16 << 20
    #expect(WALSegment.startAddress(name: Array("000000010000000000000031".utf8), size: sixteen) == 0x3100_0000)
    #expect(WALSegment.startAddress(name: Array("0000000200000003000000FF".utf8), size: sixteen) == 0x3_FF00_0000)
    #expect(WALSegment.startAddress(name: Array("000000010000000000000003".utf8), size: 1 << 30) == 0xC000_0000)
    // Not segments: history files, partial segments, lower-case or short names, a number
    // past the end of its half, sizes that are no segment size.
    for name in [
      "00000002.history", "000000010000000000000031.partial", "00000001000000000000003a", "0000000100000000",
    ] {
      #expect(WALSegment.startAddress(name: Array(name.utf8), size: sixteen) == nil, "\(name)")
    }
    #expect(WALSegment.startAddress(name: Array("000000010000000000000100".utf8), size: sixteen) == nil)
    for size: UInt64 in [0, 8192, (16 << 20) + 8192, 2 << 30] {
      #expect(WALSegment.startAddress(name: Array("000000010000000000000031".utf8), size: size) == nil, "\(size)")
    }
  }

  @Test func onlyAFirstPageOfAnotherAddressMarksASegmentUnwritten() {
    func header(address: UInt64) -> [UInt8] {
      [0x10, 0xD1, 0x02, 0x00, 0x01, 0x00, 0x00, 0x00] + (0..<8).map { UInt8(truncatingIfNeeded: address >> ($0 * 8)) }
        + [UInt8](repeating: 0, count: 24)
    }
    #expect(!WALSegment.isUnwritten(firstBytes: header(address: 0x3100_0000), start: 0x3100_0000))
    // Recycled: the content of segment 0x1F, renamed to 0x31.
    #expect(WALSegment.isUnwritten(firstBytes: header(address: 0x1F00_0000), start: 0x3100_0000))
    // Zero-filled (made ahead and never written), or too short to tell.
    #expect(WALSegment.isUnwritten(firstBytes: [UInt8](repeating: 0, count: 40), start: 0x3100_0000))
    #expect(WALSegment.isUnwritten(firstBytes: [0x10, 0xD1], start: 0x3100_0000))
  }
}
