/// WAL segment files, as far as `reel pg` needs to know them to leave out the ones crash
/// recovery never reads: a segment recycled ahead of the insert position keeps its old
/// content under its new name until the server writes it again, and recovery stops at its
/// first page, whose header names another address (PostgreSQL checks `xlp_pageaddr` of
/// every page it reads). Such files are most of a busy cluster's `pg_wal` (up to
/// `max_wal_size`).
package enum WALSegment {
  /// Where the segment named `name` (`TTTTTTTTXXXXXXXXYYYYYYYY`: timeline, then the
  /// segment number in two halves) starts in the WAL, given its size, which is the
  /// cluster's segment size (a power of two from 1 MiB to 1 GiB); nil for any other name
  /// (history files, `.partial`, `archive_status`) or size.
  package static func startAddress(name: [UInt8], size: UInt64) -> UInt64? {
    guard name.count == 24, size >= 1 << 20, size <= 1 << 30, size & (size - 1) == 0 else { return nil }
    var halves: [UInt64] = []
    for start in stride(from: 8, to: 24, by: 8) {
      var value: UInt64 = 0
      for byte in name[start..<start + 8] {
        guard let digit = hexDigit(byte) else { return nil }
        value = value << 4 | UInt64(digit)
      }
      halves.append(value)
    }
    guard name[0..<8].allSatisfy({ hexDigit($0) != nil }), halves[0] <= UInt32.max,
      halves[1] < (1 << 32) / size
    else { return nil }
    return halves[0] << 32 + halves[1] * size
  }

  /// Whether a segment's first bytes (a page header: magic, info, timeline, then the
  /// page's WAL address as 8 little-endian bytes at offset 8) show a page of another
  /// address than `start`, or too few bytes to tell: recovery ends there without reading
  /// the file further. A header that names `start` is written WAL, whatever else it holds.
  package static func isUnwritten(firstBytes: [UInt8], start: UInt64) -> Bool {
    guard firstBytes.count >= 16 else { return true }
    let address = firstBytes[8..<16].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    return address != start
  }

  private static func hexDigit(_ byte: UInt8) -> UInt8? {
    switch byte {
    case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
    case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
    default: nil
    }
  }
}
