import Foundation
import ReelCore
import ReelIO
import ReelTestSupport
import Testing

@testable import ReelMedia

/// A damaged stretch of a vtape cartridge costs only the records it covers: the drive
/// reports them unreadable and goes on at the next intact record or filemark, as a real
/// drive does after a media error (docs/tape-format.md, "Damage").
@Suite struct TapeDamageTests {
  static let block = 64 << 10
  static let record = UInt64(block + 8)
  /// Blocks per tape file: 0 the "label", then four more files.
  static let layout = [1, 5, 3, 2, 1]

  /// A cartridge with `layout`'s files; every block is filled with `file * 16 + number`.
  /// Returns the file offset of each block's framing, by file.
  func cartridge(_ sandbox: MediaSandbox) throws -> (path: String, blocks: [[UInt64]]) {
    let path = sandbox.cartridge("D")
    try VirtualTapeDrive.create(path: path, capacity: 8 << 20)
    let drive = try VirtualTapeDrive(path: path)
    try drive.setBlockSize(Self.block)
    var offset = VirtualTapeDrive.headerSize
    var blocks: [[UInt64]] = []
    for (file, count) in Self.layout.enumerated() {
      var starts: [UInt64] = []
      for number in 0..<count {
        let bytes = [UInt8](repeating: UInt8(file * 16 + number), count: Self.block)
        _ = try bytes.withUnsafeBytes { try drive.write($0) }
        starts.append(offset)
        offset += Self.record
      }
      try drive.writeFilemark()
      offset += 4
      blocks.append(starts)
    }
    return (path, blocks)
  }

  /// What reading every file from the start gives, one token per record: the block's fill
  /// byte, `U<bytes>` for an unreadable stretch, `|` for a filemark.
  func readAll(_ path: String) throws -> String {
    let drive = try VirtualTapeDrive(path: path)
    try drive.setBlockSize(0)
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    var tokens: [String] = []
    while true {
      let result = try buffer.withUnsafeMutableBytes { try drive.read(into: $0) }
      switch result {
      case .endOfData: return tokens.joined(separator: " ")
      case .filemark: tokens.append("|")
      case .unreadable(let bytes): tokens.append("U\(bytes ?? -1)")
      case .data(let count):
        #expect(count == Self.block && Set(buffer[0..<count]).count == 1, "a block comes back whole or not at all")
        tokens.append(String(buffer[0], radix: 16))
      }
    }
  }

  func damage(_ path: String, at offset: UInt64, _ bytes: [UInt8]) throws {
    let file = try PosixFile(path: path, flags: O_WRONLY)
    try file.write(bytes, at: offset)
  }

  @Test func intactCartridgeReadsEveryRecord() throws {
    let sandbox = try MediaSandbox()
    let (path, _) = try cartridge(sandbox)
    #expect(try readAll(path) == "0 | 10 11 12 13 14 | 20 21 22 | 30 31 | 40 |")
  }

  @Test func aDamagedLengthWordCostsItsRecordOnly() throws {
    let sandbox = try MediaSandbox()
    let (path, blocks) = try cartridge(sandbox)
    // The length word after block 2 of file 1 no longer echoes the one before it.
    try damage(path, at: blocks[1][2] + 4 + UInt64(Self.block) + 1, [0x5A])
    #expect(try readAll(path) == "0 | 10 11 U65536 13 14 | 20 21 22 | 30 31 | 40 |")
    // Spacing and the end of data still count every file.
    let drive = try VirtualTapeDrive(path: path)
    try drive.seekEndOfData()
    #expect(try drive.status().fileNumber == 5)
    try drive.spaceBack(files: 3)
    try drive.spaceForward(files: 1)
    try drive.setBlockSize(0)
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    #expect(try buffer.withUnsafeMutableBytes { try drive.read(into: $0) } == .data(Self.block))
    #expect(buffer[0] == 0x30)
  }

  @Test func aZeroedStretchAcrossRecordsAndAFilemarkResumesAtTheNextIntactOne() throws {
    let sandbox = try MediaSandbox()
    let (path, blocks) = try cartridge(sandbox)
    // From the middle of block 3 of file 1 into block 4's data: two records, and their
    // framing reads as zeros (which must not pass for thousands of filemarks).
    try damage(path, at: blocks[1][3] + 1000, [UInt8](repeating: 0, count: Self.block))
    #expect(try readAll(path) == "0 | 10 11 12 U131072 | 20 21 22 | 30 31 | 40 |")

    // Whole records zeroed, their last length word included, right up to the filemark.
    let secondSandbox = try MediaSandbox()
    let (second, secondBlocks) = try cartridge(secondSandbox)
    try damage(second, at: secondBlocks[1][3], [UInt8](repeating: 0, count: Int(2 * Self.record)))
    #expect(try readAll(second) == "0 | 10 11 12 U131072 | 20 21 22 | 30 31 | 40 |")

    // Random bytes over the end of file 2, its filemark and file 3's first block: the
    // filemark is counted from the stretch's length (the lost records all go to file 2).
    let thirdSandbox = try MediaSandbox()
    let (third, thirdBlocks) = try cartridge(thirdSandbox)
    var rng = SystemRandomNumberGenerator()
    let start = thirdBlocks[2][2] + 100
    let noise = (0..<Int(thirdBlocks[3][1] - start - 50)).map { _ in UInt8.random(in: 1...255, using: &rng) }
    try damage(third, at: start, noise)
    #expect(try readAll(third) == "0 | 10 11 12 13 14 | 20 21 U131072 | 31 | 40 |")
  }

  @Test func aCartridgeCutShortEndsAtItsLastWholeRecord() throws {
    let sandbox = try MediaSandbox()
    let (path, blocks) = try cartridge(sandbox)
    let file = try PosixFile(path: path, flags: O_WRONLY)
    try file.truncate(to: blocks[3][1] + 5000)
    #expect(try readAll(path) == "0 | 10 11 12 13 14 | 20 21 22 | 30")
    // Writing appends after the last whole record, as after a crash.
    do {
      let drive = try VirtualTapeDrive(path: path)
      try drive.seekEndOfData()
      try drive.writeFilemark()
    }
    #expect(try readAll(path) == "0 | 10 11 12 13 14 | 20 21 22 | 30 |")
  }
}
