import Foundation
import ReelCore
import ReelTestSupport
import Testing

@testable import ReelJournal

@Suite struct RollbackRecordTests {
  @Test func payloadLayoutMatchesTheFormatDoc() throws {
    let payload = RollbackPayload(
      targetSeq: 0x0102_0304_0506_0708,
      extents: [.init(offset: 0x10000, length: 0x20000), .init(offset: 0x40000, length: 0x10000)])
    let bytes = payload.encoded()
    #expect(bytes.count == 16 + 2 * 16)
    #expect(Array(bytes[0..<8]) == [8, 7, 6, 5, 4, 3, 2, 1])
    #expect(Array(bytes[8..<12]) == [2, 0, 0, 0])
    #expect(Array(bytes[12..<16]) == [0, 0, 0, 0])
    #expect(Array(bytes[16..<24]) == [0, 0, 1, 0, 0, 0, 0, 0])
    #expect(Array(bytes[24..<32]) == [0, 0, 2, 0, 0, 0, 0, 0])
    #expect(try RollbackPayload.decode(bytes) == payload)
  }

  @Test(arguments: [
    ([RollbackPayload.Extent(offset: 0, length: 8192), .init(offset: 4096, length: 4096)], "overlaps"),
    ([.init(offset: 8192, length: 4096), .init(offset: 0, length: 4096)], "precedes"),
    ([.init(offset: 0, length: 0)], "empty"),
    ([.init(offset: UInt64.max - 10, length: 4096)], "overflows"),
  ])
  func badExtentsAreRefused(extents: [RollbackPayload.Extent], reason: String) throws {
    let bytes = RollbackPayload(targetSeq: 1, extents: extents).encoded()
    let error = #expect(throws: RollbackPayloadError.self) { try RollbackPayload.decode(bytes) }
    #expect(error?.reason.contains(reason) == true, "\(error?.reason ?? "")")
  }

  @Test func truncatedOrPaddedPayloadsAreRefused() throws {
    let bytes = RollbackPayload(targetSeq: 3, extents: [.init(offset: 0, length: 4096)]).encoded()
    #expect(throws: RollbackPayloadError.self) { try RollbackPayload.decode(Array(bytes.dropLast())) }
    #expect(throws: RollbackPayloadError.self) { try RollbackPayload.decode(bytes + [0]) }
    #expect(throws: RollbackPayloadError.self) { try RollbackPayload.decode(Array(bytes.prefix(10))) }
  }

  @Test func extentsAreCheckedAgainstTheVolume() throws {
    let inside = RollbackPayload(targetSeq: 2, extents: [.init(offset: 65536, length: 65536 + 4096)])
    // A volume of 135168 bytes ends inside its last store block: the extent may end there.
    try inside.check(volumeSize: 65536 * 2 + 4096, storeBlockSize: 65536, recordSeq: 3)
    #expect(throws: RollbackPayloadError.self) {
      try inside.check(volumeSize: 65536 * 3, storeBlockSize: 65536, recordSeq: 3)
    }
    #expect(throws: RollbackPayloadError.self) {
      try inside.check(volumeSize: 65536 * 2, storeBlockSize: 65536, recordSeq: 3)
    }
    #expect(throws: RollbackPayloadError.self) {
      try inside.check(volumeSize: 65536 * 2 + 4096, storeBlockSize: 65536, recordSeq: 2)
    }
  }

  @Test func rollbackRecordsRoundTripThroughTheJournal() throws {
    let dir = TemporaryDirectory()
    let volume = VolumeID()
    let (writer, _) = try JournalWriter.open(directory: dir.path, volume: volume)
    try writer.append(.write(offset: 0, data: pattern(1, count: 4096)))
    let payload = RollbackPayload(targetSeq: 1, extents: [.init(offset: 0, length: 65536)])
    let appended = try writer.append(.rollback(payload))
    try writer.sync()
    try writer.close()
    let records = try readAll(dir.path, volume)
    #expect(records.count == 2)
    #expect(records[1].seq == appended.seq)
    #expect(records[1].kind == .rollback)
    #expect(records[1].offset == 0 && records[1].length == 0)
    #expect(records[1].rollback == payload)
    #expect(records[1].kind.description == "rollback")
  }

  /// A reader refuses a rollback record whose payload breaks the format, naming the file
  /// and offset, as it does any damaged record in a closed segment.
  @Test func malformedRollbackRecordIsDamage() throws {
    let dir = TemporaryDirectory()
    let volume = VolumeID()
    let (writer, _) = try JournalWriter.open(directory: dir.path, volume: volume)
    try writer.append(.write(offset: 0, data: pattern(1, count: 512)))
    let overlapping = RollbackPayload(
      targetSeq: 1, extents: [.init(offset: 0, length: 8192), .init(offset: 4096, length: 4096)])
    try writer.append(JournalEntry(kind: .rollback, flags: [], offset: 0, length: 0, payload: overlapping.encoded()))
    try writer.close()
    let error = #expect(throws: ReelError.self) { _ = try readAll(dir.path, volume) }
    #expect(error?.kind == .corrupt)
    #expect(error?.message.contains("overlaps") == true)
    #expect(error?.message.contains(".rjs") == true)
  }
}
