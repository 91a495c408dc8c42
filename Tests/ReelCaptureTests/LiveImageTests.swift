import Foundation
import ReelCore
import ReelJournal
import ReelTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// The live image lags behind the journal: writes are acknowledged once journaled, and
/// `live.img` gets them later. These tests hold the background applier back
/// (`--defer-live-image`) so that every read below hits ranges whose apply is pending.
@Suite(.serialized) struct LiveImageTests {
  /// One client operation and what it does to a byte model of the volume.
  enum Operation {
    case write(offset: Int, length: Int, pattern: UInt8)
    case zeroes(offset: Int, length: Int)
    case discard(offset: Int, length: Int)

    var command: String {
      switch self {
      case .write(let offset, let length, let pattern): "write -P \(pattern) \(offset) \(length)"
      case .zeroes(let offset, let length): "write -z \(offset) \(length)"
      case .discard(let offset, let length): "discard \(offset) \(length)"
      }
    }

    func apply(to model: inout [UInt8]) {
      switch self {
      case .write(let offset, let length, let pattern):
        model.replaceSubrange(offset..<(offset + length), with: repeatElement(pattern, count: length))
      case .zeroes(let offset, let length), .discard(let offset, let length):
        model.replaceSubrange(offset..<(offset + length), with: repeatElement(0, count: length))
      }
    }
  }

  /// Random operations on 512-byte boundaries, many of them overlapping earlier ones in
  /// part, some crossing the pending map's 1 MiB zones.
  func randomOperations(count: Int, volumeSize: Int, seed: UInt64) -> [Operation] {
    var random = SplitMix(seed: seed)
    return (0..<count).map { _ in
      let sectors = volumeSize / 512
      let start = Int.random(in: 0..<sectors, using: &random)
      let length = Int.random(in: 1...min(sectors - start, Bool.random(using: &random) ? 8 : 600), using: &random)
      switch Int.random(in: 0..<6, using: &random) {
      case 0: return .zeroes(offset: start * 512, length: length * 512)
      case 1: return .discard(offset: start * 512, length: length * 512)
      default:
        return .write(offset: start * 512, length: length * 512, pattern: UInt8.random(in: 1...255, using: &random))
      }
    }
  }

  /// The whole volume as nbdcopy reads it (four connections, requests in parallel).
  func readBack(_ store: TestStore, _ name: String) throws -> [UInt8] {
    let copy = store.directory.path + "/read-back-\(UUID().uuidString.prefix(8)).img"
    defer { unlink(copy) }
    try runChecked(try tool("nbdcopy"), [store.uri(name), copy])
    return try fileBytes(copy)
  }

  /// Compares volume-sized byte arrays, naming the first difference; `#expect(a == b)`
  /// would print both arrays in full.
  func expectSameBytes(
    _ actual: [UInt8], _ expected: [UInt8], _ what: String, sourceLocation: SourceLocation = #_sourceLocation
  ) {
    guard actual.count == expected.count else {
      Issue.record("\(what): \(actual.count) bytes, expected \(expected.count)", sourceLocation: sourceLocation)
      return
    }
    let same = actual.withUnsafeBytes { a in
      expected.withUnsafeBytes { b in memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0 }
    }
    if !same, let index = actual.indices.first(where: { actual[$0] != expected[$0] }) {
      Issue.record(
        "\(what): byte \(index) is \(actual[index]), expected \(expected[index])", sourceLocation: sourceLocation)
    }
  }

  /// The volume reads as `expected`; then a clean stop, which applies everything pending,
  /// leaves exactly that in live.img.
  func expectServedThenStoredOnStop(
    _ server: ServerProcess, _ store: TestStore, _ expected: [UInt8], _ when: String,
    sourceLocation: SourceLocation = #_sourceLocation
  ) throws {
    expectSameBytes(try readBack(store, "vm"), expected, "volume read \(when)", sourceLocation: sourceLocation)
    #expect(server.stop() == 0, sourceLocation: sourceLocation)
    expectSameBytes(
      try fileBytes(store.layout.liveImagePath("vm")), expected, "live.img after a clean stop",
      sourceLocation: sourceLocation)
  }

  @Test func readsOfPendingRangesSeeTheNewestWritesZeroesAndTrims() throws {
    let size = 8 << 20
    let store = try TestStore()
    try store.createVolume("vm", size: "8M")
    let server = try ServerProcess(store: store, volumes: ["vm"], extra: ["--defer-live-image"])
    var model = [UInt8](repeating: 0, count: size)

    // One qemu-io session: each operation, then a read of its range with the expected
    // pattern, and reads of ranges that later operations cut into.
    let operations = randomOperations(count: 160, volumeSize: size, seed: 7)
    var commands: [String] = []
    for operation in operations {
      operation.apply(to: &model)
      commands += ["-c", operation.command]
      if case .write(let offset, let length, let pattern) = operation {
        commands += ["-c", "read -P \(pattern) \(offset) \(length)"]
      }
    }
    // Reads of 4 KiB blocks that ended up uniform, whatever wrote them last.
    var checked = 0
    for block in stride(from: 0, to: size, by: 4096) where checked < 300 {
      let bytes = model[block..<(block + 4096)]
      if bytes.allSatisfy({ $0 == bytes.first }) {
        commands += ["-c", "read -P \(bytes.first!) \(block) 4096"]
        checked += 1
      }
    }
    let qemu = try run(try tool("qemu-io"), ["-f", "raw", store.uri("vm")] + commands)
    #expect(qemu.succeeded && !qemu.stdout.contains("verification failed"), "\(qemu.stdout.prefix(2000))")
    #expect(qemu.stdout.components(separatedBy: "read ").count - 1 > 300)

    // The journal has every operation, nbdcopy sees the model, and the image has nothing
    // yet: all of it came from the pending map.
    expectSameBytes(try store.replay("vm"), model, "journal replay")
    expectSameBytes(try readBack(store, "vm"), model, "volume read while everything is pending")
    let image = try fileBytes(store.layout.liveImagePath("vm"))
    expectSameBytes(image, [UInt8](repeating: 0, count: size), "live.img, although applying was deferred")

    // Parallel writes over the pending ranges (nbdcopy, four connections), read back;
    // a clean stop applies everything.
    let source = store.directory.path + "/source.img"
    try writeRandomFile(source, bytes: 3 << 20)
    try runChecked(try tool("nbdcopy"), ["--flush", source, store.uri("vm")])
    model.replaceSubrange(0..<(3 << 20), with: try fileBytes(source))
    try expectServedThenStoredOnStop(server, store, model, "after parallel writes")
    #expect(try store.liveState("vm")["clean"] as? Bool == true)
    #expect(try store.liveState("vm")["appliedSeq"] as? Int == (try store.records("vm").last?.seq).map(Int.init))
  }

  @Test func killNineWhileTheImageLagsBehindLosesNothingAcknowledged() throws {
    let chunk = 256 << 10
    let store = try TestStore()
    try store.createVolume("vm", size: "128M")
    // Checkpoints come every second while writes arrive; none may claim more than the
    // image has.
    var server = try ServerProcess(
      store: store, volumes: ["vm"], extra: ["--defer-live-image", "--checkpoint-bytes", "1M"])
    let startSeq = try #require(store.liveState("vm")["appliedSeq"] as? Int)
    let statePath = store.layout.volumeDirectory("vm") + "/live.state"
    // Rewritten through a new file each time: its modification time tells checkpoints apart.
    func stateWritten() -> Int {
      var info = stat()
      return stat(statePath, &info) == 0 ? info.st_mtim.tv_sec * 1_000_000_000 + info.st_mtim.tv_nsec : 0
    }
    let firstState = stateWritten()

    // Each write covers the second half of the one before, and every tenth write has
    // part of its second half zeroed before the next write covers it again: overlapping
    // records, all of them pending.
    func pattern(_ index: Int) -> Int { 0x20 + index % 200 }
    var commands: [String] = []
    for index in 0..<960 {
      commands += ["-c", "write -P \(pattern(index)) \(index * chunk / 2) \(chunk)"]
      if index % 10 == 9 { commands += ["-c", "write -z \(index * chunk / 2 + chunk / 2 + 4096) 8192"] }
      // A pause after each flush keeps the writer going for at least 3 s: checkpoints come
      // once a second, and a fast disk took all 240 MiB in less.
      if index % 8 == 7 { commands += ["-c", "flush", "-c", "sleep 25"] }
    }
    let output = store.directory.path + "/qemu-io.out"
    let writer = try ChildProcess(
      try tool("qemu-io"), ["-f", "raw", store.uri("vm")] + commands, stdout: output, stderr: output)
    try server.waitUntil("12 MiB reach the journal and a checkpoint is written") {
      (store.journalBytes("vm") >= 12 << 20 && stateWritten() != firstState) || !writer.isRunning
    }
    let acknowledged = try killServer(server, amid: writer, output: output, chunk: chunk).map { $0 / (chunk / 2) }
    // The image lagged: a checkpoint was written, and it did not move past the start.
    #expect(stateWritten() != firstState)
    #expect(try store.liveState("vm")["appliedSeq"] as? Int == startSeq)

    server = try ServerProcess(store: store, volumes: ["vm"])
    let replayed = try #require(
      server.log.split(separator: "\n").first { $0.contains("replayed") }, "no replay at restart:\n\(server.log)")
    let records = try store.records("vm")
    #expect(replayed.contains("replayed \(records.count) journal records"), "\(replayed)")

    // The first half of every acknowledged write is still its own: the next write and
    // the zeroings cover only second halves.
    let reads = acknowledged.flatMap { ["-c", "read -P \(pattern($0)) \($0 * chunk / 2) \(chunk / 2)"] }
    let check = try run(try tool("qemu-io"), ["-f", "raw", store.uri("vm")] + reads)
    #expect(check.succeeded && !check.stdout.contains("verification failed"), "\(check.stdout.prefix(2000))")
    #expect(check.stdout.components(separatedBy: "read \(chunk / 2)/\(chunk / 2)").count - 1 == acknowledged.count)
    let expected = try store.replay("vm")
    try expectServedThenStoredOnStop(server, store, expected, "after the restart")
  }

  /// The image lagged behind records whose segment was then pruned (sealed, copied, and
  /// deleted by the pipeline; here deleted by hand after `reel ingest`): replaying what is
  /// left would skip them, so the restart starts a lazy image over the live store instead.
  @Test func aRestartAfterThePrunedJournalOvertookTheImageRebuildsIt() throws {
    let store = try TestStore()
    try store.createVolume("vm", size: "140M")
    var server = try ServerProcess(store: store, volumes: ["vm"], extra: ["--defer-live-image"])
    let source = store.directory.path + "/source.img"
    try writeRandomFile(source, bytes: 130 << 20)
    try runChecked(try tool("nbdcopy"), ["--flush", source, store.uri("vm")])
    #expect(server.stop(SIGKILL) == 128 + SIGKILL)
    #expect(try store.liveState("vm")["appliedSeq"] as? Int == 0)

    try runChecked(store.reel, ["ingest", "vm", "--store", store.root])
    let journal = store.layout.journalDirectory("vm")
    let segments = try FileManager.default.contentsOfDirectory(atPath: journal).filter { $0.hasSuffix(".rjs") }.sorted()
    try #require(segments.count >= 3, "\(segments)")
    try FileManager.default.removeItem(atPath: journal + "/" + segments[0])

    server = try ServerProcess(store: store, volumes: ["vm"])
    #expect(server.log.contains("rebuilt the live image lazily"), "\(server.log)")
    #expect(server.log.contains("older segments were pruned"), "\(server.log)")
    var expected = try fileBytes(source)
    expected += [UInt8](repeating: 0, count: (140 << 20) - expected.count)
    // Lazy: what was not written since reads from the store, so live.img alone is not the
    // volume (LazyLiveImageTests).
    expectSameBytes(try readBack(store, "vm"), expected, "volume read after the rebuild")
    #expect(server.stop() == 0)
  }

  /// live.img refuses writes (immutable) when writers at the lag limit apply: writes get
  /// an error, reads still return everything journaled (from the journal), no checkpoint
  /// claims the failed records, and once the cause is gone a restart replays the journal.
  /// (Resuming without a restart once the disk has room: DiskFullTests.)
  @Test func aFailedApplyKeepsReadsWorkingAndARestartReplays() throws {
    let store = try TestStore()
    try store.createVolume("vm", size: "16M")
    var server = try ServerProcess(
      store: store, volumes: ["vm"], extra: ["--defer-live-image", "--live-image-lag", "1M"])
    let image = store.layout.liveImagePath("vm")
    try runChecked(try tool("qemu-io"), ["-f", "raw", store.uri("vm"), "-c", "write -P 0x11 0 512k"])
    try runChecked(try tool("chattr"), ["+i", image])
    defer { _ = try? run(try tool("chattr"), ["-i", image]) }

    let source = store.directory.path + "/source.img"
    try writeRandomFile(source, bytes: 4 << 20)
    #expect(try run(try tool("nbdcopy"), ["--flush", source, store.uri("vm")]).succeeded == false)
    try server.waitUntil("the failure is logged") {
      server.log.contains("the live image cannot take journaled records")
    }
    expectSameBytes(try readBack(store, "vm"), try store.replay("vm"), "reads after the failed apply")
    #expect(server.stop() == 74, "the clean stop reports that the image missed journaled writes:\n\(server.log)")
    #expect(try store.liveState("vm")["appliedSeq"] as? Int == 0)
    #expect(try store.liveState("vm")["clean"] as? Bool == false)

    try runChecked(try tool("chattr"), ["-i", image])
    server = try ServerProcess(store: store, volumes: ["vm"])
    #expect(server.log.contains("replayed"), "\(server.log)")
    try expectServedThenStoredOnStop(server, store, try store.replay("vm"), "after the restart")
  }

  @Test func writersApplyThemselvesOnceTheLagLimitIsReached() throws {
    let store = try TestStore()
    try store.createVolume("vm", size: "16M")
    let server = try ServerProcess(
      store: store, volumes: ["vm"], extra: ["--defer-live-image", "--live-image-lag", "1M"])
    let source = store.directory.path + "/source.img"
    try writeRandomFile(source, bytes: 16 << 20)
    try runChecked(try tool("nbdcopy"), ["--flush", source, store.uri("vm")])
    let expected = try fileBytes(source)

    // With the background applier held back, only writers waiting for room can have
    // applied: at most the limit plus the requests in flight is missing from the image.
    let image = try fileBytes(store.layout.liveImagePath("vm"))
    let missing = stride(from: 0, to: expected.count, by: 4096).filter {
      image[$0..<($0 + 4096)] != expected[$0..<($0 + 4096)]
    }.count
    #expect(missing * 4096 <= 6 << 20, "\(missing) blocks of 4 KiB are not in live.img")
    try expectServedThenStoredOnStop(server, store, expected, "after the copy")
  }
}
