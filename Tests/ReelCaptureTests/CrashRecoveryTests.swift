import Foundation
import ReelCore
import ReelJournal
import ReelTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// `kill -9` of the server and restarts: nothing acknowledged is lost, and the live image
/// always ends up equal to the journal's replay.
@Suite(.serialized) struct CrashRecoveryTests {
  static let chunk = 256 << 10

  func pattern(_ index: Int) -> Int { 0x20 + index % 200 }

  @Test func killNineInAWriteStreamLosesNothingAcknowledged() throws {
    let store = try TestStore()
    try store.createVolume("vm", size: "64M")
    var server = try ServerProcess(store: store, volumes: ["vm"])

    // qemu-io's default cache mode sends every write with FUA; flushes in between too.
    var commands: [String] = []
    for index in 0..<200 {
      commands += ["-c", "write -P \(pattern(index)) \(index * Self.chunk) \(Self.chunk)"]
      // The pauses keep the writer going past the kill on a fast disk (0.5 s at least).
      if index % 8 == 7 { commands += ["-c", "flush", "-c", "sleep 20"] }
    }
    let output = store.directory.path + "/qemu-io.out"
    let writer = try ChildProcess(
      try tool("qemu-io"), ["-f", "raw", store.uri("vm")] + commands, stdout: output, stderr: output)
    try server.waitUntil("8 MiB reach the journal") { store.journalBytes("vm") >= 8 << 20 || !writer.isRunning }
    let acknowledged = try killServer(server, amid: writer, output: output, chunk: Self.chunk).map { $0 / Self.chunk }
    #expect(try store.liveState("vm")["clean"] as? Bool == false)

    // Every acknowledged write is in the journal with its bytes.
    let writes = try store.records("vm").filter { $0.kind == .write }
    for index in acknowledged {
      let record = try #require(writes.first { $0.offset == UInt64(index * Self.chunk) }, "write \(index) lost")
      #expect(record.flags.contains(.forceUnitAccess))
      #expect(record.payload == [UInt8](repeating: UInt8(pattern(index)), count: Self.chunk))
    }

    // The restarted server recovers the image and serves every acknowledged write.
    server = try ServerProcess(store: store, volumes: ["vm"])
    #expect(server.log.contains("replayed") || server.log.contains("up to date"), "\(server.log)")
    let reads = acknowledged.flatMap {
      ["-c", "read -P \(pattern($0)) \($0 * Self.chunk) \(Self.chunk)"]
    }
    let check = try runChecked(try tool("qemu-io"), ["-f", "raw", store.uri("vm")] + reads)
    #expect(!check.stdout.contains("verification failed"), "\(check.stdout)")
    #expect(check.stdout.components(separatedBy: "read \(Self.chunk)/\(Self.chunk)").count - 1 == acknowledged.count)
    #expect(server.stop() == 0)
    #expect(try fileBytes(store.layout.liveImagePath("vm")) == (try store.replay("vm")))
    #expect(try store.liveState("vm")["clean"] as? Bool == true)
  }

  @Test func anUncleanStopInAnotherBootRebuildsTheImage() throws {
    let store = try TestStore()
    try store.createVolume("vm", size: "16M")
    // Nothing ingested: the image is rebuilt from the journal (with an ingested store it
    // would start lazily over the store, LazyLiveImageTests).
    var server = try ServerProcess(store: store, volumes: ["vm"], extra: ["--ingest-interval", "3600"])
    try runChecked(
      try tool("qemu-io"),
      ["-f", "raw", store.uri("vm"), "-c", "write -P 0x61 0 1M", "-c", "write -z 256k 64k", "-c", "flush"])
    server.stop(SIGKILL)

    // As after a power cut: another boot, and image pages that reached the disk although
    // their journal records did not.
    let statePath = store.layout.volumeDirectory("vm") + "/live.state"
    var state = try store.liveState("vm")
    state["bootID"] = "00000000-0000-0000-0000-000000000000"
    try JSONSerialization.data(withJSONObject: state).write(to: URL(fileURLWithPath: statePath))
    let image = try #require(FileHandle(forWritingAtPath: store.layout.liveImagePath("vm")))
    try image.seek(toOffset: 8 << 20)
    image.write(Data(repeating: 0xEE, count: 4096))
    try image.close()

    server = try ServerProcess(store: store, volumes: ["vm"])
    #expect(server.log.contains("rebuilt the live image"), "\(server.log)")
    let check = try runChecked(
      try tool("qemu-io"),
      ["-f", "raw", store.uri("vm"), "-c", "read -P 0 8M 4k", "-c", "read -P 0x61 0 256k", "-c", "read -P 0 256k 64k"])
    #expect(!check.stdout.contains("verification failed"), "\(check.stdout)")
    #expect(server.stop() == 0)
    #expect(try fileBytes(store.layout.liveImagePath("vm")) == (try store.replay("vm")))
  }

  @Test func aVolumeWithABaseIsRebuiltFromItsBase() throws {
    let store = try TestStore()
    let base = store.directory.path + "/base.img"
    try writeRandomFile(base, bytes: 8 << 20)
    try runChecked(store.reel, ["volume", "create", "vb", "--from", base, "--store", store.root])
    var server = try ServerProcess(store: store, volumes: ["vb"], extra: ["--ingest-interval", "3600"])
    try runChecked(try tool("qemu-io"), ["-f", "raw", store.uri("vb"), "-c", "write -P 0x42 1M 64k"])
    server.stop(SIGKILL)
    try FileManager.default.removeItem(atPath: store.layout.volumeDirectory("vb") + "/live.state")

    server = try ServerProcess(store: store, volumes: ["vb"])
    #expect(server.log.contains("rebuilt the live image"), "\(server.log)")
    #expect(server.stop() == 0)
    var expected = try fileBytes(base)
    expected.replaceSubrange((1 << 20)..<((1 << 20) + (64 << 10)), with: repeatElement(0x42, count: 64 << 10))
    #expect(try fileBytes(store.layout.liveImagePath("vb")) == expected)
  }

  @Test func sigtermWithAClientConnectedClosesEverythingCleanly() throws {
    let store = try TestStore()
    try store.createVolume("vm", size: "8M")
    let server = try ServerProcess(store: store, volumes: ["vm"])
    let traffic = MalformedTrafficTests()
    let (client, _) = try traffic.connect(store.socketPath, export: "vm")
    try traffic.request(
      client, type: 1, handle: 1, offset: 0, length: 4096, payload: [UInt8](repeating: 3, count: 4096))
    #expect(try traffic.replyError(client, handle: 1) == 0)

    #expect(server.stop(SIGTERM) == 0)
    #expect(try client.isClosedByServer())
    #expect(server.log.contains("SIGTERM"))
    #expect(!FileManager.default.fileExists(atPath: store.socketPath))
    #expect(!FileManager.default.fileExists(atPath: store.layout.volumeDirectory("vm") + "/control.sock"))
    let journal = try store.journal("vm")
    #expect(!journal.segments.isEmpty)
    #expect(journal.segments.allSatisfy { $0.summary != nil }, "every segment closed with its footer")
    #expect(journal.segments.last?.summary != nil)
    #expect(try store.liveState("vm")["clean"] as? Bool == true)
    #expect(try store.records("vm").contains { $0.kind == .write && $0.offset == 0 })
  }
}
