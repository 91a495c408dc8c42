import Foundation
import ReelArchive
import ReelCore
import ReelJournal
import ReelMedia
import ReelStore
import ReelTestSupport
import Testing

/// What `reel volume delete` would lose: history with no verified archive on media.
@Suite struct HistoryNotOnMediaTests {
  @Test func onlyHistoryWithAVerifiedCopyOnMediaCountsAsExported() throws {
    let maker = try ArchiveMaker()
    let sandbox = try MediaSandbox()
    let live = maker.fixture.live
    let descriptor = maker.fixture.descriptor
    let first = try maker.seal(randomBytes: 300_000, bookmark: "a")
    let firstEnd = first.manifest.range.untilSeq
    // Sealed but on no media: everything from the first record is at stake.
    var unexported = try live.historyNotOnMedia(of: descriptor)
    #expect(unexported.windows.map(\.seqs) == [1...firstEnd])
    #expect(unexported.description.hasPrefix("seq 1…\(firstEnd) ("), "\(unexported.description)")

    #expect(try sandbox.reel("init").status == 0)
    #expect(try sandbox.reel("media", "label", "vtape:" + sandbox.library, "--name", "C1").status == 0)
    let exported = try run(
      reelExecutable, ["export", first.path, "--to", "vtape:" + sandbox.library],
      environment: ["REEL_STORE": maker.fixture.store.layout.root])
    #expect(exported.status == 0, "\(exported.output)")
    unexported = try live.historyNotOnMedia(of: descriptor)
    #expect(unexported.isEmpty && unexported.description == "nothing")

    // A second archive sealed but not exported, then records only the journal holds.
    let second = try maker.seal(randomBytes: 300_000, bookmark: "b")
    let journaled = try maker.fixture.append(.flush).seq
    unexported = try live.historyNotOnMedia(of: descriptor, newestSeq: journaled)
    #expect(unexported.windows.map(\.seqs) == [(firstEnd + 1)...journaled])
    #expect(second.manifest.range.untilSeq < journaled)
  }

  @Test func aVolumeMadeFromAnImageOwnsItsStartingState() throws {
    let base = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 / 4096) }
    let fixture = try StoreFixture(size: 1 << 20, base: base)
    let unexported = try fixture.live.historyNotOnMedia(of: fixture.descriptor)
    #expect(unexported.windows.map(\.seqs) == [0...0], "the image it was created from is at stake")
    let blank = try StoreFixture(size: 1 << 20)
    #expect(try blank.live.historyNotOnMedia(of: blank.descriptor).isEmpty, "zeros are nothing to lose")
  }

  @Test func aClonesHistoryStartsAfterItsClonePoint() throws {
    let history = try ClonedHistory()
    let live = history.fixture.live
    var clone = try history.fixture.store.layout.descriptor(of: "copy")
    #expect(try live.historyNotOnMedia(of: clone).isEmpty, "the state at the clone point is the origin's")
    let written = try history.writeToClone(changes: 3, bookmark: "mine")
    try history.closeClones()
    try live.ingest(volume: "copy")
    clone = try history.fixture.store.layout.descriptor(of: "copy")
    #expect(try live.historyNotOnMedia(of: clone).windows.map(\.seqs) == [(history.clonePoint + 1)...written])
  }

  @Test func deleteIsRefusedUntilTheHistoryIsOnMediaAndForceNamesWhatIsLost() throws {
    let maker = try ArchiveMaker()
    let sandbox = try MediaSandbox()
    let archive = try maker.seal(randomBytes: 300_000, bookmark: "a")
    try maker.fixture.closeWriter()
    let store = maker.fixture.store.layout.root
    func reel(_ arguments: String...) throws -> CommandResult {
      try run(reelExecutable, arguments, environment: ["REEL_STORE": store])
    }
    // Sealed into a folder on the same machine is not on media.
    let refused = try reel("volume", "delete", "disk", "--yes")
    #expect(refused.status != 0, "\(refused.output)")
    #expect(refused.stderr.contains("seq 1…\(archive.manifest.range.untilSeq)"), "\(refused.stderr)")
    #expect(FileManager.default.fileExists(atPath: store + "/volumes/disk"))

    #expect(try sandbox.reel("init").status == 0)
    #expect(try sandbox.reel("media", "label", "vtape:" + sandbox.library, "--name", "C1").status == 0)
    #expect(try reel("export", archive.path, "--to", "vtape:" + sandbox.library).status == 0)
    let deleted = try reel("volume", "delete", "disk", "--yes")
    #expect(deleted.status == 0, "\(deleted.output)")
    #expect(!deleted.stderr.contains("never sealed"), "nothing was lost: \(deleted.stderr)")
    #expect(!FileManager.default.fileExists(atPath: store + "/volumes/disk"))
  }
}
