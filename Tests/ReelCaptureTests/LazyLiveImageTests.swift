import Foundation
import ReelCore
import ReelJournal
import ReelTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// A live image that `reel serve` would have to rebuild from the live store (the journal
/// begins after seq 1) is lazy: a sparse `live.img`, a bitmap of the store blocks it holds,
/// and reads of the others from the store (docs/capture.md, "Lazy live image").
@Suite(.serialized) struct LazyLiveImageTests {
  let size = 8 << 20
  let helpers = LiveImageTests()

  /// A volume whose first journal segment is gone (ingested, then deleted as the pipeline
  /// deletes sealed segments) and whose live image is missing, as for a rehydrated volume:
  /// serving it starts from the store. Returns its contents.
  func volumeServedFromTheStore(_ store: TestStore) throws -> [UInt8] {
    try store.createVolume("vm", size: "8M")
    let server = try ServerProcess(store: store, volumes: ["vm"])
    let source = store.directory.path + "/source.img"
    try writeRandomFile(source, bytes: 6 << 20)
    try runChecked(try tool("nbdcopy"), ["--flush", source, store.uri("vm")])
    #expect(server.stop() == 0)
    // An offline bookmark is a segment of its own: the journal can begin there.
    _ = try store.bookmark("vm", "before")
    try runChecked(store.reel, ["ingest", "vm", "--store", store.root])
    let journal = store.layout.journalDirectory("vm")
    let segments = try FileManager.default.contentsOfDirectory(atPath: journal).filter { $0.hasSuffix(".rjs") }.sorted()
    try #require(segments.count == 2, "\(segments)")
    try FileManager.default.removeItem(atPath: journal + "/" + segments[0])
    for file in ["live.img", "live.state"] {
      try FileManager.default.removeItem(atPath: store.layout.volumeDirectory("vm") + "/" + file)
    }
    return try fileBytes(source) + [UInt8](repeating: 0, count: size - (6 << 20))
  }

  func allocatedBytes(_ path: String) -> Int {
    var info = stat()
    return stat(path, &info) == 0 ? Int(info.st_blocks) * 512 : -1
  }

  /// Runs `operations` through qemu-io and applies them to `model`.
  func perform(
    _ operations: [LiveImageTests.Operation], _ store: TestStore, _ model: inout [UInt8], volume: String = "vm"
  ) throws {
    let commands = operations.flatMap { ["-c", $0.command] } + ["-c", "flush"]
    try runChecked(try tool("qemu-io"), ["-f", "raw", store.uri(volume)] + commands)
    for operation in operations { operation.apply(to: &model) }
  }

  @Test func aVolumeWhoseJournalBeginsAfterSeqOneIsServedAtOnceFromTheStore() throws {
    let store = try TestStore()
    let expected = try volumeServedFromTheStore(store)
    let server = try ServerProcess(store: store, volumes: ["vm"])
    #expect(server.log.contains("rebuilt the live image lazily"), "\(server.log)")
    // Nothing was copied: the image is a hole the size of the volume.
    let image = store.layout.liveImagePath("vm")
    #expect(allocatedBytes(image) < 64 << 10, "live.img has \(allocatedBytes(image)) bytes allocated")
    let state = try store.liveState("vm")
    #expect(state["formatVersion"] as? Int == 2)
    // The store has ingested the whole journal, so nothing is left to apply over it.
    let last = try #require(try store.records("vm").last?.seq)
    #expect((state["backing"] as? [String: Any])?["seq"] as? Int == Int(last))
    helpers.expectSameBytes(try helpers.readBack(store, "vm"), expected, "volume read from the store")
    #expect(server.stop() == 0)
    #expect(allocatedBytes(image) < 64 << 10, "reads filled live.img: \(allocatedBytes(image)) bytes")
  }

  /// Writes of 512-byte pieces change store blocks in part: each is filled from the store
  /// first. Trims and zeroings too. Some are applied by writers at the lag limit, the rest
  /// at the clean stop; the image stays lazy across the restart.
  @Test func partialWritesTrimsAndZeroesLandOnTheStoresBytes() throws {
    let store = try TestStore()
    var model = try volumeServedFromTheStore(store)
    var server = try ServerProcess(
      store: store, volumes: ["vm"], extra: ["--defer-live-image", "--live-image-lag", "256K"])
    // The first half only: the second stays unfilled, so the image is still lazy after.
    try perform(helpers.randomOperations(count: 120, volumeSize: size / 2, seed: 17), store, &model)
    helpers.expectSameBytes(try helpers.readBack(store, "vm"), model, "volume read with records pending")
    #expect(server.stop() == 0)
    #expect(try store.liveState("vm")["clean"] as? Bool == true)
    #expect(try store.liveState("vm")["formatVersion"] as? Int == 2)
    #expect(FileManager.default.fileExists(atPath: store.layout.volumeDirectory("vm") + "/live.filled"))

    server = try ServerProcess(store: store, volumes: ["vm"])
    #expect(server.log.contains("live image up to date"), "\(server.log)")
    helpers.expectSameBytes(try helpers.readBack(store, "vm"), model, "volume read after a clean restart")
    try perform(helpers.randomOperations(count: 60, volumeSize: size, seed: 18), store, &model)
    helpers.expectSameBytes(try helpers.readBack(store, "vm"), model, "volume read after more writes")
    #expect(server.stop() == 0)
  }

  /// kill -9 with records pending and others applied since the last checkpoint: the
  /// restart replays them over the image, filling from the store what the saved bitmap
  /// does not name.
  @Test func killNineAndRestartReplaysIntoTheLazyImage() throws {
    let store = try TestStore()
    var model = try volumeServedFromTheStore(store)
    var server = try ServerProcess(
      store: store, volumes: ["vm"],
      extra: ["--defer-live-image", "--live-image-lag", "256K", "--checkpoint-bytes", "64K"])
    try perform(helpers.randomOperations(count: 150, volumeSize: size, seed: 23), store, &model)
    #expect(server.stop(SIGKILL) == 128 + SIGKILL)
    #expect(try store.liveState("vm")["clean"] as? Bool == false)

    server = try ServerProcess(store: store, volumes: ["vm"])
    #expect(server.log.contains("replayed"), "\(server.log)")
    helpers.expectSameBytes(try helpers.readBack(store, "vm"), model, "volume read after kill -9 and restart")
    #expect(server.stop() == 0)
  }

  /// After an unclean stop in another boot the image cannot be trusted: it is started
  /// afresh, lazily, over what the store has ingested; scribbles on the old image are gone.
  @Test func anUncleanStopInAnotherBootStartsAFreshLazyImageOverTheStore() throws {
    let store = try TestStore()
    var model = try volumeServedFromTheStore(store)
    var server = try ServerProcess(store: store, volumes: ["vm"])
    try perform(helpers.randomOperations(count: 80, volumeSize: size, seed: 29), store, &model)
    #expect(server.stop(SIGKILL) == 128 + SIGKILL)
    try runChecked(store.reel, ["ingest", "vm", "--store", store.root])

    let statePath = store.layout.volumeDirectory("vm") + "/live.state"
    var state = try store.liveState("vm")
    state["bootID"] = "00000000-0000-0000-0000-000000000000"
    try JSONSerialization.data(withJSONObject: state).write(to: URL(fileURLWithPath: statePath))
    let image = try #require(FileHandle(forWritingAtPath: store.layout.liveImagePath("vm")))
    for offset in stride(from: 0, to: size, by: 1 << 20) {
      try image.seek(toOffset: UInt64(offset))
      image.write(Data(repeating: 0xEE, count: 4096))
    }
    try image.close()

    server = try ServerProcess(store: store, volumes: ["vm"])
    let last = try #require(try store.records("vm").last?.seq)
    #expect(
      server.log.contains(
        "rebuilt the live image lazily over the live store as of seq \(last), with 0 journal records"),
      "\(server.log)")
    helpers.expectSameBytes(try helpers.readBack(store, "vm"), model, "volume read after the reboot")
    #expect(server.stop() == 0)
  }

  /// Prune holds its cut back to the seq a lazy image still reads from the store, and
  /// says so; the image reads the same bytes afterwards.
  @Test func pruneKeepsTheSeqALazyImageReads() throws {
    let store = try TestStore()
    var model = try volumeServedFromTheStore(store)
    var server = try ServerProcess(store: store, volumes: ["vm"])
    let backing = try #require((try store.liveState("vm")["backing"] as? [String: Any])?["seq"] as? Int)
    try perform(helpers.randomOperations(count: 20, volumeSize: size / 2, seed: 31), store, &model)
    #expect(server.stop() == 0)
    try runChecked(store.reel, ["ingest", "vm", "--store", store.root])

    let prune = try runChecked(store.reel, ["prune", "vm", "--keep-within", "0s", "--store", store.root])
    #expect(prune.stdout.contains("history kept from seq \(backing)"), "\(prune.stdout)")
    #expect(prune.stdout.contains("seq \(backing) kept for the lazy live image"), "\(prune.stdout)")
    server = try ServerProcess(store: store, volumes: ["vm"])
    helpers.expectSameBytes(try helpers.readBack(store, "vm"), model, "volume read after prune")
    #expect(server.stop() == 0)
  }

  /// `reel serve` of a fresh clone copies nothing: its image is lazy over the origin at the
  /// clone point. Writes on either side stay on that side, across a restart too.
  @Test func aCloneIsServedAtOnceAndWritesStayOnTheirSide() throws {
    let store = try TestStore()
    try store.createVolume("vm", size: "8M")
    var server = try ServerProcess(store: store, volumes: ["vm"])
    let source = store.directory.path + "/source.img"
    try writeRandomFile(source, bytes: size)
    try runChecked(try tool("nbdcopy"), ["--flush", source, store.uri("vm")])
    let good = try store.bookmark("vm", "good")
    var origin = try fileBytes(source)
    var clone = origin
    try perform([.write(offset: 1 << 20, length: 2 << 20, pattern: 0x77)], store, &origin)
    #expect(server.stop() == 0)

    try runChecked(store.reel, ["clone", "vm", "--at", "good", "--as", "c1", "--store", store.root])
    server = try ServerProcess(store: store, volumes: ["vm", "c1"])
    #expect(
      server.log.contains("volume c1: rebuilt the live image lazily over the live store as of seq \(good)"),
      "\(server.log)")
    #expect(allocatedBytes(store.layout.liveImagePath("c1")) < 64 << 10)
    helpers.expectSameBytes(try helpers.readBack(store, "c1"), clone, "clone read at the clone point")
    try perform(helpers.randomOperations(count: 40, volumeSize: size, seed: 41), store, &clone, volume: "c1")
    try perform(helpers.randomOperations(count: 40, volumeSize: size, seed: 43), store, &origin)
    helpers.expectSameBytes(try helpers.readBack(store, "c1"), clone, "clone after writes on both sides")
    helpers.expectSameBytes(try helpers.readBack(store, "vm"), origin, "origin after writes on both sides")
    #expect(server.stop() == 0)

    server = try ServerProcess(store: store, volumes: ["vm", "c1"])
    helpers.expectSameBytes(try helpers.readBack(store, "c1"), clone, "clone after a restart")
    helpers.expectSameBytes(try helpers.readBack(store, "vm"), origin, "origin after a restart")
    #expect(server.stop() == 0)
  }

  /// A rollback of a lazy image, served (the server copies the extents into the image)
  /// and offline (the next start replays the record): the regions it writes count as
  /// filled, and the volume reads as it was at the target.
  @Test func rollbacksLandInALazyImage() throws {
    let store = try TestStore()
    var model = try volumeServedFromTheStore(store)
    var server = try ServerProcess(store: store, volumes: ["vm"])
    let target = model
    _ = try store.bookmark("vm", "target")
    try perform(helpers.randomOperations(count: 40, volumeSize: size / 2, seed: 51), store, &model)
    let served = try store.reelCommand(["rollback", "vm", "--to", "target"])
    #expect(served.succeeded, "\(served.stderr)")
    helpers.expectSameBytes(try helpers.readBack(store, "vm"), target, "volume read after a served rollback")

    model = target
    try perform(helpers.randomOperations(count: 40, volumeSize: size, seed: 53), store, &model)
    #expect(server.stop() == 0)
    let offline = try store.reelCommand(["rollback", "vm", "--to", "target"])
    #expect(offline.succeeded, "\(offline.stderr)")
    server = try ServerProcess(store: store, volumes: ["vm"])
    #expect(server.log.contains("replayed"), "\(server.log)")
    helpers.expectSameBytes(try helpers.readBack(store, "vm"), target, "volume read after an offline rollback")
    #expect(server.stop() == 0)
  }
}
