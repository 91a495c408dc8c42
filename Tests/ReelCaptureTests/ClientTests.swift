import Foundation
import ReelCore
import ReelJournal
import ReelTestSupport
import Testing

/// Real NBD clients (qemu-io, nbdinfo, nbdcopy) against `reel serve`.
@Suite(.serialized) struct ClientTests {
  @Test func qemuIOWritesReadsZeroesAndDiscardsThroughTheJournal() throws {
    let store = try TestStore()
    try store.createVolume("vm1", size: "16M")
    let server = try ServerProcess(store: store, volumes: ["vm1"])
    let qemu = try runChecked(
      try tool("qemu-io"),
      [
        "-f", "raw", store.uri("vm1"),
        "-c", "write -P 0xab 0 64k",
        "-c", "read -P 0xab 0 64k",
        "-c", "write -P 0xcd 1M 128k",
        "-c", "write -z 1M 64k",
        "-c", "read -P 0 1M 64k",
        "-c", "read -P 0xcd 1088k 64k",
        "-c", "discard 0 4k",
        "-c", "read -P 0 0 4k",
        "-c", "read -P 0xab 4k 60k",
        "-c", "flush",
      ])
    #expect(!qemu.stdout.contains("Pattern verification failed"), "\(qemu.stdout)")
    #expect(server.stop() == 0)

    let records = try store.records("vm1")
    let kinds = records.map(\.kind)
    #expect(kinds.filter { $0 == .write }.count == 2)
    #expect(kinds.contains(.writeZeroes))
    #expect(kinds.contains(.trim))
    #expect(kinds.contains(.flush))
    let zeroes = try #require(records.first { $0.kind == .writeZeroes })
    #expect(zeroes.offset == 1 << 20 && zeroes.length == 64 << 10)
    let live = try fileBytes(store.layout.liveImagePath("vm1"))
    #expect(live == (try store.replay("vm1")))
    #expect(server.log.contains("connected to export \"vm1\""))
    #expect(server.log.contains("disconnected from export \"vm1\""))
  }

  @Test func nbdinfoShowsSizeFlagsAndBlockSizes() throws {
    let store = try TestStore()
    try store.createVolume("disk", size: "24M", blockSize: 512)
    let server = try ServerProcess(store: store, volumes: ["disk"])
    defer { server.stop() }
    let info = try runChecked(try tool("nbdinfo"), ["--json", store.uri("disk")])
    let json = try #require(try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any])
    let exports = try #require(json["exports"] as? [[String: Any]])
    let export = try #require(exports.first)
    #expect(export["export-name"] as? String == "disk")
    #expect((export["export-size"] as? NSNumber)?.uint64Value == 24 << 20)
    #expect((export["block_size_minimum"] as? NSNumber)?.intValue == 512)
    #expect((export["block_size_preferred"] as? NSNumber)?.intValue == 512)
    #expect((export["block_size_maximum"] as? NSNumber)?.intValue == 32 << 20)
    #expect(export["can_flush"] as? Bool == true)
    #expect(export["can_fua"] as? Bool == true)
    #expect(export["can_trim"] as? Bool == true)
    #expect(export["can_zero"] as? Bool == true)
    #expect(export["can_multi_conn"] as? Bool == true)
    #expect(export["is_read_only"] as? Bool == false)
  }

  @Test func nbdcopyInAndOutKeepsEveryByte() throws {
    let store = try TestStore()
    try store.createVolume("vm", size: "32M")
    let source = store.directory.path + "/random.img"
    let back = store.directory.path + "/back.img"
    try writeRandomFile(source, bytes: 32 << 20)
    let server = try ServerProcess(store: store, volumes: ["vm"])
    try runChecked(try tool("nbdcopy"), ["--flush", source, store.uri("vm")])
    try runChecked(try tool("nbdcopy"), [store.uri("vm"), back])
    #expect(try sha256(back) == (try sha256(source)))
    #expect(server.stop() == 0)
    #expect(try sha256(store.layout.liveImagePath("vm")) == (try sha256(source)))
    #expect(try store.replay("vm") == (try fileBytes(source)))
  }

  @Test func servesSeveralVolumesAndOverTCP() throws {
    let store = try TestStore()
    try store.createVolume("alpha", size: "8M")
    try store.createVolume("beta", size: "16M")
    let server = try ServerProcess(
      store: store, volumes: ["alpha", "beta"], extra: ["--listen", "127.0.0.1:0", "--insecure-no-tls"])
    defer { server.stop() }
    try server.waitUntil("the TCP address is printed") { server.output.contains("Listening on tcp") }
    let line = try #require(server.output.split(separator: "\n").first { $0.contains("Listening on tcp") })
    let address = try #require(line.split(separator: " ").first { $0.hasPrefix("127.0.0.1:") })
    let port = try #require(address.split(separator: ":").last.map { String($0) })
    #expect(!FileManager.default.fileExists(atPath: store.layout.root + "/run/reel.sock"), "TCP only unless --socket")

    let list = try runChecked(try tool("nbdinfo"), ["--list", "--json", "nbd://127.0.0.1:\(port)"])
    #expect(list.stdout.contains("\"alpha\"") && list.stdout.contains("\"beta\""))
    try runChecked(try tool("qemu-io"), ["-f", "raw", "nbd://127.0.0.1:\(port)/alpha", "-c", "write -P 0x11 0 1M"])
    try runChecked(try tool("qemu-io"), ["-f", "raw", "nbd://127.0.0.1:\(port)/beta", "-c", "write -P 0x22 0 1M"])
    let check = try runChecked(
      try tool("qemu-io"), ["-f", "raw", "nbd://127.0.0.1:\(port)/alpha", "-c", "read -P 0x11 0 1M"])
    #expect(!check.stdout.contains("failed"))
    // With two volumes there is no default export.
    let unnamed = try run(try tool("nbdinfo"), ["nbd://127.0.0.1:\(port)/"])
    #expect(!unnamed.succeeded)
    #expect(try store.records("alpha").filter { $0.kind == .write }.count == 1)
    #expect(try store.records("beta").filter { $0.kind == .write }.count == 1)
  }

  @Test func emptyExportNameMeansTheOnlyVolume() throws {
    let store = try TestStore()
    try store.createVolume("solo", size: "8M")
    let server = try ServerProcess(store: store, volumes: ["solo"])
    defer { server.stop() }
    let info = try runChecked(try tool("nbdinfo"), ["--size", "nbd+unix:///?socket=\(store.socketPath)"])
    #expect(info.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == String(8 << 20))
  }

  @Test func defaultSocketIsInTheStoreAndSecondServerIsRefused() throws {
    let store = try TestStore()
    try store.createVolume("one", size: "8M")
    try store.createVolume("two", size: "8M")
    let defaultSocket = store.root + "/run/reel.sock"
    let server = try ServerProcess(store: store, volumes: ["one"], socket: defaultSocket)
    defer { server.stop() }
    // Same volume again: the journal's writer lock refuses it.
    let again = try run(
      store.reel, ["serve", "one", "--store", store.root, "--socket", store.directory.path + "/x.sock"])
    #expect(again.status != 0)
    #expect(again.stderr.contains("being written by another process"))
    // Another volume on the socket in use: refused, the running server untouched.
    let busy = try run(store.reel, ["serve", "two", "--store", store.root])
    #expect(busy.status != 0)
    #expect(busy.stderr.contains("already listening"))
    try runChecked(try tool("nbdinfo"), ["nbd+unix:///one?socket=\(defaultSocket)"])
  }
}
