import Foundation
import ReelCore
import ReelJournal
import ReelTestSupport
import Testing

/// `reel rollback`, offline and served, through the real binary and real NBD clients.
@Suite(.serialized) struct RollbackTests {
  /// The volume as `reel restore` gives it at `point`.
  func restored(_ store: TestStore, _ name: String, at point: String) throws -> [UInt8] {
    let output = store.directory.path + "/restore-\(UUID().uuidString.prefix(8)).img"
    defer { unlink(output) }
    let result = try store.reelCommand(["restore", name, "--at", point, "--output", output])
    try #require(result.succeeded, "restore --at \(point) failed: \(result.stderr)")
    return Array(try #require(FileManager.default.contents(atPath: output)))
  }

  /// The whole volume read through NBD from the server that has it.
  func servedBytes(_ store: TestStore, _ name: String) throws -> [UInt8] {
    let output = store.directory.path + "/nbd-\(UUID().uuidString.prefix(8)).img"
    defer { unlink(output) }
    try runChecked(try tool("nbdcopy"), [store.uri(name), output])
    return Array(try #require(FileManager.default.contents(atPath: output)))
  }

  func qemuIO(_ store: TestStore, _ name: String, _ commands: [String]) throws {
    try runChecked(
      try tool("qemu-io"), ["-f", "raw", "-t", "writeback", store.uri(name)] + commands.flatMap { ["-c", $0] })
  }

  func rollback(_ store: TestStore, _ name: String, to point: String, _ extra: [String] = []) throws -> [String: Any] {
    let result = try store.reelCommand(["rollback", name, "--to", point, "--json"] + extra)
    try #require(result.succeeded, "rollback --to \(point) failed (\(result.status)): \(result.stderr)")
    return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
  }

  /// Writes that change whole store blocks, parts of blocks and zeroed ranges, before and
  /// after a bookmark.
  func history(_ store: TestStore, _ name: String) throws -> Seq {
    try qemuIO(store, name, ["write -P 0x11 0 3M", "write -P 0x12 5M 64k", "write -P 0x13 6000k 4k"])
    let good = try store.bookmark(name, "good")
    try qemuIO(
      store, name,
      ["write -P 0x21 1M 2M", "write -P 0x22 4100k 12k", "write -z 0 64k", "discard 5M 64k", "write -P 0x23 7M 1M"])
    return good
  }

  @Test func offlineRollbackReadsAsTheTargetAndKeepsEveryEarlierPoint() throws {
    let store = try TestStore()
    try store.createVolume("vm", size: "8M")
    var server = try ServerProcess(store: store, volumes: ["vm"])
    let good = try history(store, "vm")
    #expect(server.stop() == 0)
    let before = try restored(store, "vm", at: "latest")
    let atGood = try restored(store, "vm", at: "good")
    #expect(before != atGood)

    let report = try rollback(store, "vm", to: "good")
    #expect(report["through_server"] as? Bool == false)
    #expect((report["target_seq"] as? NSNumber)?.uint64Value == good)
    let rollbackSeq = try #require((report["seq"] as? NSNumber)?.uint64Value)
    // Only what changed since the bookmark is in the record: 5 store blocks of 64 KiB here
    // and the 1 MiB at 7M, not the 8 MiB volume.
    let bytes = try #require((report["bytes"] as? NSNumber)?.uint64Value)
    #expect(bytes < 8 << 20)
    #expect(try restored(store, "vm", at: "latest") == atGood)
    #expect(try restored(store, "vm", at: "seq:\(rollbackSeq - 1)") == before)
    #expect(try restored(store, "vm", at: "good") == atGood)
    let record = try #require(try store.records("vm").last)
    #expect(record.kind == .rollback && record.seq == rollbackSeq)
    #expect(try store.replay("vm") == atGood)
    let dump = try store.reelCommand(["journal", "dump", "vm", "--from", String(rollbackSeq)])
    #expect(dump.stdout.contains("rollback\tto=\(good)"))
    #expect(try store.reelCommand(["journal", "verify", "vm"]).succeeded)

    // Serving replays the rollback into the live image from the store.
    server = try ServerProcess(store: store, volumes: ["vm"])
    #expect(try servedBytes(store, "vm") == atGood)
    #expect(server.stop() == 0)

    // Rolling back the rollback gives back the state before it.
    let undo = try rollback(store, "vm", to: "seq:\(rollbackSeq - 1)")
    #expect((undo["target_seq"] as? NSNumber)?.uint64Value == rollbackSeq - 1)
    #expect(try restored(store, "vm", at: "latest") == before)
    server = try ServerProcess(store: store, volumes: ["vm"])
    #expect(try servedBytes(store, "vm") == before)
    #expect(server.stop() == 0)
    let check = try store.reelCommand(["store", "check", "--read-data"])
    #expect(check.succeeded, "\(check.stdout)\(check.stderr)")
  }

  @Test func servedRollbackIsRefusedWithClientsAndCutsThemWithDisconnect() throws {
    let store = try TestStore()
    try store.createVolume("vm", size: "8M")
    let server = try ServerProcess(store: store, volumes: ["vm"])
    _ = try history(store, "vm")
    let atGood = try restored(store, "vm", at: "good")
    let mount = try KernelMount(in: store.directory.path + "/kernel")
    try mount.connect(store.uri("vm"), servedBy: server)
    let recordsBefore = try store.records("vm").count

    let refused = try store.reelCommand(["rollback", "vm", "--to", "good"])
    #expect(refused.status == 64)
    #expect(refused.stderr.contains("volume vm has 1 client connection open"), "\(refused.stderr)")
    #expect(refused.stderr.contains("--disconnect"))
    #expect(try store.records("vm").count == recordsBefore)
    #expect(!(try store.records("vm").contains { $0.kind == .rollback }))

    let report = try rollback(store, "vm", to: "good", ["--disconnect"])
    #expect(report["through_server"] as? Bool == true)
    #expect((report["disconnected"] as? NSNumber)?.intValue == 1)
    // The client was cut: reads through nbdfuse fail from now on.
    let read = try run("/usr/bin/dd", ["if=\(mount.device)", "of=/dev/null", "bs=64k", "count=1", "iflag=direct"])
    #expect(!read.succeeded)
    #expect(try servedBytes(store, "vm") == atGood)
    #expect(try restored(store, "vm", at: "latest") == atGood)
    #expect(server.log.contains("rolled back to"))
    #expect(server.stop() == 0)
  }

  @Test func badRollbacksAreRefusedAndChangeNothing() throws {
    let store = try TestStore()
    try store.createVolume("vm", size: "8M")
    let server = try ServerProcess(store: store, volumes: ["vm"])
    _ = try history(store, "vm")
    #expect(server.stop() == 0)
    let records = try store.records("vm")
    for (point, status) in [("no-such-bookmark", 66), ("seq:999999", 66)] {
      let result = try store.reelCommand(["rollback", "vm", "--to", point])
      #expect(!result.succeeded && result.status == status, "\(point): \(result.status) \(result.stderr)")
    }
    let missing = try store.reelCommand(["rollback", "nope", "--to", "latest"])
    #expect(missing.status == 66)
    #expect(try store.records("vm") == records)
  }
}
