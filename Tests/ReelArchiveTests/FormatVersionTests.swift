import Foundation
import ReelCodec
import ReelCore
import ReelIO
import ReelStore
import ReelTestSupport
import Testing

@testable import ReelArchive

/// The frame headers of a framed member: content type and offset of each frame.
func frameHeaders(_ member: ArraySlice<UInt8>) -> [(content: UInt8, offset: Int, length: Int)] {
  var result: [(UInt8, Int, Int)] = []
  var offset = member.startIndex
  while offset + ArchiveFrame.headerSize <= member.endIndex {
    let header = Array(member[offset..<(offset + ArchiveFrame.headerSize)]).withUnsafeBytes {
      ArchiveFrame.decodeHeader($0)
    }
    guard let header else { break }
    let length = ArchiveFrame.headerSize + header.sealedLength
    result.append((header.content, offset - member.startIndex, length))
    offset += length
  }
  return result
}

/// Restores every bookmark and every 7th seq from `archives` imported into a new store and
/// compares with the fixture's model and its own store.
func expectRestoresEverything(_ chain: SealedChain, archives: [String], store name: String) throws {
  let live = LiveStore(store: try Store.initialize(StoreLayout(root: chain.fixture.root + "/" + name)).store)
  for path in archives {
    #expect(try ArchiveImporter.importArchive(path: path, masterKeys: [chain.key], into: live).imported)
  }
  try chain.expectSameHistory(in: live, through: chain.fixture.bookmarks.values.max() ?? 0, every: 7)
}

@Suite struct FormatVersionTests {
  @Test func version2PacksAreCompressedGroupsOfRawRecordsAndRestoreEveryPoint() throws {
    let chain = try SealedChain()
    try chain.history(60, bookmark: "one")
    try chain.history(40, bookmark: "two")
    let archive = try #require(try chain.seal(parity: 0))
    #expect(archive.manifest.formatVersion == 2)
    #expect(archive.manifest.compression.frameSize == ArchiveFormat.groupTarget)
    #expect(archive.verification.problems.isEmpty && archive.verification.keyChecked)
    let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: archive.path)))
    let pack = try #require(TarMap(bytes).entry("packs/000001.pack"))
    let frames = frameHeaders(bytes[pack.dataOffset..<(pack.dataOffset + pack.size)])
    #expect(!frames.isEmpty && frames.allSatisfy { $0.content == ArchiveFrame.contentGroup })
    // Compressed: the pack holds fewer bytes than the chunks' plaintext.
    #expect(archive.manifest.contents.storedBytes < archive.manifest.contents.chunkBytes)
    let readme = String(decoding: bytes[TarMap(bytes).entry("README.txt")!.dataOffset...].prefix(8192), as: UTF8.self)
    #expect(readme.contains("version 2") && readme.contains("content type 3"))
    // `reel verify --key` re-hashes every chunk of a version 2 archive.
    let full = try ArchiveVerifier.verify(path: archive.path, masterKeys: [chain.key])
    #expect(full.problems.isEmpty && full.chunksChecked == archive.manifest.contents.chunks)
    try expectRestoresEverything(chain, archives: chain.archives, store: "v2")
  }

  @Test func version1ArchivesStayReadableAndAChainMayMixVersions() throws {
    let chain = try SealedChain()
    try chain.history(50, bookmark: "old")
    let first = try #require(try chain.seal(formatVersion: 1, parity: 0))
    #expect(first.manifest.formatVersion == 1)
    #expect(first.manifest.compression.frameSize == ArchiveFormat.frameTarget)
    let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: first.path)))
    let pack = try #require(TarMap(bytes).entry("packs/000001.pack"))
    #expect(
      frameHeaders(bytes[pack.dataOffset..<(pack.dataOffset + pack.size)]).allSatisfy {
        $0.content == ArchiveFrame.contentChunks
      })
    let verification = try ArchiveVerifier.verify(path: first.path, masterKeys: [chain.key])
    #expect(verification.problems.isEmpty && verification.chunksChecked == first.manifest.contents.chunks)
    #expect(try ArchiveVerifier.readManifest(path: first.path).formatVersion == 1)
    try chain.history(50, bookmark: "new")
    let second = try #require(try chain.seal(parity: 0))
    #expect(second.manifest.formatVersion == 2 && second.manifest.parentID == first.manifest.archiveID)
    #expect(ArchiveChain.problems(of: [first.manifest, second.manifest]).isEmpty)
    try expectRestoresEverything(chain, archives: chain.archives, store: "mixed")
  }

  @Test func aFlippedByteInsideAVersion2PackIsCaughtAndNamedByMemberAndOffset() throws {
    let chain = try SealedChain(size: 1 << 20)
    try chain.history(60, bookmark: "x")
    let archive = try #require(try chain.seal())
    let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: archive.path)))
    let pack = try #require(TarMap(bytes).entry("packs/000001.pack"))
    let frames = frameHeaders(bytes[pack.dataOffset..<(pack.dataOffset + pack.size)])
    let frame = try #require(frames.last)
    // In the ciphertext of the frame, past its header: the tag fails.
    for position in [frame.offset + ArchiveFrame.headerSize + 1, frame.offset + frame.length / 2] {
      let said = try #require(
        try verdict(of: archive.path, key: chain.key) { $0[pack.dataOffset + position] ^= 0x10 })
      #expect(said.contains("packs/000001.pack at offset \(frame.offset)"), "\(said)")
      #expect(said.contains("authentication tag"), "\(said)")
    }
  }

  @Test func damagedGroupContentIsReportedNotTrusted() throws {
    let key = String(repeating: "ab", count: 32)
    // Not a zstd frame at all.
    var opened = PackFrame.open(
      [1, 2, 3, 4, 5], content: ArchiveFrame.contentGroup, frameNumber: 3, checkContent: true, deliver: true,
      storeEncode: true)
    #expect(opened.records.isEmpty && opened.problems.first?.contains("frame 3") == true)
    // Two zstd frames back to back are not one frame.
    let compressor = ZstdCompressor(level: 3)
    let one = compressor.compress([UInt8](repeating: 7, count: 1000))
    opened = PackFrame.open(
      one + one, content: ArchiveFrame.contentGroup, frameNumber: 0, checkContent: true, deliver: false,
      storeEncode: false)
    #expect(opened.records.isEmpty && !opened.problems.isEmpty)
    // A raw record whose plaintext does not match its name, and one whose CRC is wrong.
    let plaintext = [UInt8](repeating: 9, count: 5000)
    var content: [UInt8] = []
    PackFrame.appendRaw(plaintext, hash: ArraySlice(Hex.decode(key)!), to: &content)
    var good: [UInt8] = []
    PackFrame.appendRaw(plaintext, hash: ArraySlice(SHA256Digest.hash(plaintext).bytes), to: &good)
    var flipped = good
    flipped[100] ^= 1
    opened = PackFrame.open(
      compressor.compress(content + good + flipped), content: ArchiveFrame.contentGroup, frameNumber: 0,
      checkContent: true, deliver: true, storeEncode: true)
    #expect(opened.records.count == 1 && opened.records[0].offset == content.count)
    #expect(opened.problems.count == 2, "\(opened.problems)")
    #expect(opened.problems.contains { $0.contains("SHA-256") } && opened.problems.contains { $0.contains("checksum") })
    // The good record comes out as the store keeps it: compressed, same name and plaintext.
    let stored = opened.records[0].record
    #expect(stored[4] == 1 && stored.count < good.count)
    #expect(try ChunkRecordFormat.decodeVerified(stored, key: SHA256Digest.hash(plaintext).hex) == plaintext)
  }

  @Test func aGroupBuiltFromStoreRecordsOpensToTheSameChunks() throws {
    let encoder = ChunkRecordFormat.Encoder()
    var rng = SystemRandomNumberGenerator()
    var records: [StoreRecord] = []
    for index in 0..<40 {
      // Compressible, incompressible (stored raw by the store) and empty chunks.
      let size = [65536, 4096, 0, 1000][index % 4]
      let plaintext: [UInt8] =
        index % 4 == 1
        ? (0..<size).map { _ in UInt8.random(in: 0...255, using: &rng) }
        : (0..<size).map { UInt8(truncatingIfNeeded: $0 / 7 + index) }
      let hash = SHA256Digest.hash(plaintext)
      records.append(StoreRecord(key: hash.hex, record: encoder.encode(plaintext, hash: hash)))
    }
    let built = try PackFrame.build(records, formatVersion: 2)
    #expect(built.plaintext.count < built.contentLength)
    let opened = PackFrame.open(
      built.plaintext, content: ArchiveFrame.contentGroup, frameNumber: 0, checkContent: true, deliver: true,
      storeEncode: false)
    #expect(opened.problems.isEmpty, "\(opened.problems)")
    #expect(opened.records.map(\.key) == records.map(\.key))
    #expect(opened.records.map(\.offset) == built.records.map(\.offset))
    for (record, original) in zip(opened.records, records) {
      #expect(record.record[4] == 0)
      #expect(
        try ChunkRecordFormat.decodeVerified(record.record, key: record.key)
          == ChunkRecordFormat.decodeVerified(original.record, key: original.key))
    }
    // A store record whose content does not match its name is built as it is (its checksum
    // holds) and caught by the content check the seal's verification of the written
    // archive makes.
    let plaintext = [UInt8](repeating: 1, count: 5000)
    let wrong = StoreRecord(
      key: SHA256Digest.hash([2]).hex, record: encoder.encode(plaintext, hash: SHA256Digest.hash([2])))
    let withWrong = try PackFrame.build(records + [wrong], formatVersion: 2)
    let checked = PackFrame.open(
      withWrong.plaintext, content: ArchiveFrame.contentGroup, frameNumber: 0, checkContent: true, deliver: false,
      storeEncode: false)
    #expect(checked.problems == ["chunk \(wrong.key): content does not match its SHA-256 name"])
  }

  /// Read as docs/store-format.md lays the header out, not through `ChunkRecordHeader`.
  @Test func chunkRecordsKeepTheirDocumentedLayout() throws {
    let compressible = [UInt8](repeating: 7, count: 4096)
    let random = (0..<4096).map { _ in UInt8.random(in: 0...255) }
    var raw: [UInt8] = []
    PackFrame.appendRaw(random, hash: ArraySlice(SHA256Digest.hash(random).bytes), to: &raw)
    let zstd = ChunkRecordFormat.Encoder().encode(compressible, hash: SHA256Digest.hash(compressible))
    for (record, plaintext, encoding) in [(raw, random, UInt8(0)), (zstd, compressible, UInt8(1))] {
      func u32(_ at: Int) -> UInt32 { record[at..<(at + 4)].reversed().reduce(0) { $0 << 8 | UInt32($1) } }
      #expect(Array(record[0..<8]) == Array("RCH1".utf8) + [encoding, 0, 0, 0])
      #expect(u32(8) == UInt32(plaintext.count) && Int(u32(12)) == record.count - 56)
      #expect(Array(record[16..<48]) == SHA256Digest.hash(plaintext).bytes)
      var crc = CRC32C()
      crc.update(Array(record[0..<48]))
      crc.update(Array(record[56...]))
      #expect(u32(48) == crc.value && u32(52) == 0)
      #expect(try ChunkRecordFormat.decodeVerified(record, key: SHA256Digest.hash(plaintext).hex) == plaintext)
    }
  }
}
