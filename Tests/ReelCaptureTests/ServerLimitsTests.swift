import Foundation
import ReelCore
import ReelTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// `reel serve` under clients that try to hold more than their share: too many
/// connections, handshakes that never end, large reads whose replies are never read.
/// Limits are set small by flag so the tests stay MiB-sized (docs/capture.md, "Limits").
@Suite(.serialized) struct ServerLimitsTests {
  let nbd = MalformedTrafficTests()

  /// A line of /proc/PID/status as a number (kB for memory, a count for Threads).
  func status(_ pid: Int32, _ field: String) throws -> Int {
    let text = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
    let line = try #require(text.split(separator: "\n").first { $0.hasPrefix(field + ":") }, "no \(field) in status")
    return try #require(Int(line.split(whereSeparator: \.isWhitespace).dropFirst().first ?? ""), "\(line)")
  }

  /// memcmp: comparing 32 MiB element by element is slow in a debug build.
  func same(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    a.count == b.count
      && a.withUnsafeBytes { a in b.withUnsafeBytes { memcmp(a.baseAddress!, $0.baseAddress!, a.count) == 0 } }
  }

  @Test func connectionsOverTheCapsAreRefusedWithoutAThread() throws {
    let store = try TestStore()
    try store.createVolume("vm", size: "8M")
    let server = try ServerProcess(
      store: store, volumes: ["vm"], extra: ["--max-connections", "3", "--max-connections-per-export", "2"])

    let (first, _) = try nbd.connect(store.socketPath, export: "vm")
    let (second, _) = try nbd.connect(store.socketPath, export: "vm")
    // A third client for the same export is told why, and may go on haggling.
    let third = try RawClient(unixPath: store.socketPath)
    try nbd.greet(third)
    try nbd.sendOption(third, 7, nbd.goData("vm", requests: []))
    let refusal = try nbd.readOptionReply(third)
    #expect(refusal.type == 0x8000_0002, "NBD_REP_ERR_POLICY")
    #expect(String(decoding: refusal.data, as: UTF8.self).contains("--max-connections-per-export"))
    try nbd.sendOption(third, 3)
    #expect(try nbd.readOptionReply(third).type == 2, "NBD_OPT_LIST still answered")
    #expect(try nbd.readOptionReply(third).type == 1)

    // Three connections are open: more are closed before the greeting, and cost no thread.
    // A reply on each connection in transmission first: its workers (16) are started
    // before it receives requests, and may still be starting when NBD_OPT_GO is answered.
    for (handle, client) in [first, second].enumerated() {
      try nbd.request(client, type: 0, handle: UInt64(handle), offset: 0, length: 0)
      #expect(try nbd.replyError(client, handle: UInt64(handle)) == 0)
    }
    let threads = try status(server.pid, "Threads")
    var refused: [RawClient] = []
    for _ in 0..<20 {
      let extra = try RawClient(unixPath: store.socketPath)
      #expect(try extra.isClosedByServer(), "a connection over --max-connections got a greeting")
      refused.append(extra)
    }
    #expect(try status(server.pid, "Threads") <= threads, "refused connections left threads behind")
    #expect(server.log.contains("refused: 3 connections are open, the most --max-connections allows"))
    #expect(server.log.contains("the most --max-connections-per-export allows"))

    // Room again once clients leave: a real client gets in.
    try nbd.request(first, type: 2, handle: 1, offset: 0, length: 0)
    try nbd.sendOption(third, 2)
    #expect(try nbd.readOptionReply(third).type == 1)
    #expect(try first.isClosedByServer() && third.isClosedByServer())
    try server.waitUntil("both clients are gone") {
      server.log.components(separatedBy: "disconnected from export").count == 2
        && server.log.contains("client aborted the handshake")
    }
    try runChecked(try tool("nbdinfo"), [store.uri("vm")])
    _ = second
    #expect(server.stop() == 0)
  }

  @Test func silentDribblingAndIdleClientsAreCutOff() throws {
    let store = try TestStore()
    try store.createVolume("vm", size: "8M")
    let server = try ServerProcess(
      store: store, volumes: ["vm"], extra: ["--handshake-timeout", "1", "--idle-timeout", "1"])

    // Connects, reads the greeting, says nothing.
    let silent = try RawClient(unixPath: store.socketPath)
    _ = try #require(try silent.receive(18))
    #expect(try silent.isClosedByServer())

    // Sends its option a byte at a time, each byte well within the timeout: the whole
    // handshake still has to end in time.
    let dribbler = try RawClient(unixPath: store.socketPath)
    try nbd.greet(dribbler)
    var option = Wire()
    option.u64(MalformedTrafficTests.optionMagic)
    option.u32(3)
    option.u32(4000)
    let bytes = option.bytes + [UInt8](repeating: 0x41, count: 4000)
    var sent = 0
    while sent < bytes.count, dribbler.trySend([bytes[sent]]) {
      sent += 1
      usleep(200_000)
    }
    #expect(sent < bytes.count, "the server took \(sent) bytes of a dribbled handshake")
    #expect(try dribbler.isClosedByServer())
    #expect(server.log.components(separatedBy: "within 1 s (--handshake-timeout)").count - 1 == 2, "\(server.log)")

    // In transmission, silence longer than --idle-timeout ends the connection.
    let (idle, _) = try nbd.connect(store.socketPath, export: "vm")
    #expect(try idle.isClosedByServer())
    #expect(server.log.contains("client sent nothing for 1 s (--idle-timeout); disconnected"))
    #expect(server.stop() == 0)
  }

  /// The finding: three clients sending 32 MiB reads and never reading a reply took the
  /// server from 30 to 325 MiB. With one request memory for all connections, the peak
  /// stays within it (plus what the server needs anyway), and every reply still comes.
  @Test func clientsThatDoNotReadRepliesHoldNoMoreThanTheRequestMemory() throws {
    let store = try TestStore()
    try store.createVolume("vm", size: "64M")
    let budget = 64
    let server = try ServerProcess(store: store, volumes: ["vm"], extra: ["--request-memory", "\(budget)M"])
    // Nothing written: replies are zeros from the image's holes, which fill the buffers
    // all the same, and the stop has nothing to ingest.
    let baseline = try status(server.pid, "VmRSS")

    let clients = try (0..<3).map { _ in try nbd.connect(store.socketPath, export: "vm").0 }
    let perClient = 8
    for (number, client) in clients.enumerated() {
      for index in 0..<perClient {
        try nbd.request(
          client, type: 0, handle: UInt64(number * 100 + index), offset: UInt64(index % 2) << 25, length: 32 << 20)
      }
    }
    // Time for the server to take whatever memory it will; nothing is read meanwhile.
    Thread.sleep(forTimeInterval: 3)
    let held = try status(server.pid, "VmHWM")

    // Every reply arrives once the clients read, with the right bytes. They read at the
    // same time: memory held for one client's replies is free only once it reads them.
    // (A thread each: concurrentPerform may run fewer at once than asked.)
    let good = Locked(0)
    let expected = [UInt8](repeating: 0, count: 32 << 20)
    let readers = clients.map { client in
      WorkerThread(name: "reader") {
        for _ in 0..<perClient {
          guard let header = try? client.receive(16), Wire.read(header, at: 4, as: UInt32.self) == 0,
            let payload = try? client.receive(32 << 20), same(payload, expected)
          else { return }
          good.withLock { $0 += 1 }
        }
      }
    }
    readers.joinAll()
    #expect(good.withLock { $0 } == clients.count * perClient, "replies that arrived right\n\(server.log)")
    let peak = try status(server.pid, "VmHWM")
    let margin = 48 << 10  // kB: code, the journal's and the image's buffers, thread stacks
    #expect(
      held - baseline <= budget << 10 + margin,
      "RSS grew from \(baseline / 1024) to \(held / 1024) MiB while the clients did not read")
    #expect(peak - baseline <= budget << 10 + margin, "RSS peaked at \(peak / 1024) MiB (from \(baseline / 1024))")
    #expect(server.stop() == 0)
  }

  @Test func aClientThatTakesNoRepliesIsDisconnectedAndFreesItsMemory() throws {
    let store = try TestStore()
    try store.createVolume("vm", size: "64M")
    let server = try ServerProcess(
      store: store, volumes: ["vm"], extra: ["--request-memory", "64M", "--send-timeout", "1"])
    let (stuck, _) = try nbd.connect(store.socketPath, export: "vm")
    for index in 0..<8 {
      try nbd.request(stuck, type: 0, handle: UInt64(index), offset: 0, length: 32 << 20)
    }
    try server.waitUntil("the server gives up on the client that does not read") {
      server.log.contains("client took no reply for 1 s (--send-timeout); disconnected")
    }
    // The whole request memory is free again for a client that reads.
    try runChecked(try tool("nbdcopy"), [store.uri("vm"), "null:"])
    _ = stuck
    #expect(server.stop() == 0)
  }

  @Test func requestsLargerThanTheRequestMemoryAreRefusedNotWaitedFor() throws {
    let store = try TestStore()
    try store.createVolume("vm", size: "8M")
    let small = try store.reelCommand(["serve", "vm", "--request-memory", "512K", "--socket", store.socketPath])
    #expect(small.status != 0 && small.stderr.contains("--request-memory must be at least 1 MiB"), "\(small.stderr)")

    let server = try ServerProcess(store: store, volumes: ["vm"], extra: ["--request-memory", "1M"])
    let client = try RawClient(unixPath: store.socketPath)
    try nbd.greet(client)
    try nbd.sendOption(client, 7, nbd.goData("vm", requests: [3]))
    var maximum: UInt32 = 0
    while true {
      let reply = try nbd.readOptionReply(client)
      if reply.type == 1 { break }
      if Wire.read(reply.data, at: 0, as: UInt16.self) == 3 { maximum = Wire.read(reply.data, at: 10, as: UInt32.self) }
    }
    #expect(maximum == 1 << 20, "NBD_INFO_BLOCK_SIZE advertises the request memory as the largest request")
    try nbd.request(client, type: 0, handle: 1, offset: 0, length: 2 << 20)
    #expect(try nbd.replyError(client, handle: 1) == MalformedTrafficTests.invalid)
    let big = [UInt8](repeating: 9, count: 2 << 20)
    try nbd.request(client, type: 1, handle: 2, offset: 0, length: 2 << 20, payload: big)
    #expect(try nbd.replyError(client, handle: 2) == MalformedTrafficTests.invalid)
    // Still in step, and requests that fit work.
    let fits = [UInt8](repeating: 0x3c, count: 1 << 20)
    try nbd.request(client, type: 1, handle: 3, offset: 1 << 20, length: 1 << 20, payload: fits)
    #expect(try nbd.replyError(client, handle: 3) == 0)
    try nbd.request(client, type: 0, handle: 4, offset: 1 << 20, length: 1 << 20)
    #expect(try nbd.replyError(client, handle: 4) == 0)
    let readBack = try client.receive(1 << 20) == fits
    #expect(readBack)
    #expect(try store.records("vm").filter { $0.kind == .write }.count == 1, "the refused write was journaled")
    #expect(server.stop() == 0)
  }
}
