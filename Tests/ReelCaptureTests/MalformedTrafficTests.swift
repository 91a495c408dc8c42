import Foundation
import ReelCore
import ReelJournal
import ReelTestSupport
import Testing

/// Hand-made NBD traffic that breaks the rules: the server answers with an NBD error or
/// hangs up cleanly, keeps serving others, and journals nothing it did not fully receive.
@Suite(.serialized) struct MalformedTrafficTests {
  static let optionMagic: UInt64 = 0x4948_4156_454F_5054
  static let replyMagic: UInt64 = 0x3_E889_0455_65A9
  static let requestMagic: UInt32 = 0x2560_9513
  static let simpleReplyMagic: UInt32 = 0x6744_6698
  static let invalid: UInt32 = 22  // EINVAL
  static let noSpace: UInt32 = 28  // ENOSPC

  struct OptionReply {
    var option: UInt32
    var type: UInt32
    var data: [UInt8]
  }

  /// Reads the greeting and sends client flags (fixed newstyle, no zeroes).
  func greet(_ client: RawClient, flags: UInt32 = 3) throws {
    let greeting = try #require(try client.receive(18))
    #expect(Array(greeting[0..<8]) == Array("NBDMAGIC".utf8))
    #expect(Array(greeting[8..<16]) == Array("IHAVEOPT".utf8))
    #expect(Wire.read(greeting, at: 16, as: UInt16.self) == 3)
    var wire = Wire()
    wire.u32(flags)
    try client.send(wire.bytes)
  }

  func sendOption(_ client: RawClient, _ option: UInt32, _ data: [UInt8] = [], magic: UInt64 = optionMagic) throws {
    var wire = Wire()
    wire.u64(magic)
    wire.u32(option)
    wire.u32(UInt32(data.count))
    wire.raw(data)
    try client.send(wire.bytes)
  }

  func readOptionReply(_ client: RawClient) throws -> OptionReply {
    let header = try #require(try client.receive(20), "server hung up instead of replying to an option")
    #expect(Wire.read(header, at: 0, as: UInt64.self) == Self.replyMagic)
    let length = Int(Wire.read(header, at: 16, as: UInt32.self))
    let data = length > 0 ? try #require(try client.receive(length)) : []
    return OptionReply(
      option: Wire.read(header, at: 8, as: UInt32.self), type: Wire.read(header, at: 12, as: UInt32.self), data: data)
  }

  func goData(_ name: String, requests: [UInt16]) -> [UInt8] {
    var wire = Wire()
    wire.u32(UInt32(name.utf8.count))
    wire.raw(Array(name.utf8))
    wire.u16(UInt16(requests.count))
    for request in requests { wire.u16(request) }
    return wire.bytes
  }

  /// Handshake through NBD_OPT_GO; returns the export size.
  func connect(_ socket: String, export: String, requestBlockSize: Bool = true) throws -> (RawClient, UInt64) {
    let client = try RawClient(unixPath: socket)
    try greet(client)
    try sendOption(client, 7, goData(export, requests: requestBlockSize ? [3] : []))
    var size: UInt64 = 0
    while true {
      let reply = try readOptionReply(client)
      #expect(reply.option == 7)
      if reply.type == 1 { break }
      try #require(reply.type == 3, "unexpected reply type \(reply.type)")
      if Wire.read(reply.data, at: 0, as: UInt16.self) == 0 { size = Wire.read(reply.data, at: 2, as: UInt64.self) }
    }
    return (client, size)
  }

  func request(
    _ client: RawClient, type: UInt16, flags: UInt16 = 0, handle: UInt64, offset: UInt64, length: UInt32,
    payload: [UInt8] = [], magic: UInt32 = requestMagic
  ) throws {
    var wire = Wire()
    wire.u32(magic)
    wire.u16(flags)
    wire.u16(type)
    wire.u64(handle)
    wire.u64(offset)
    wire.u32(length)
    wire.raw(payload)
    try client.send(wire.bytes)
  }

  /// The error of the simple reply to `handle`; nil when the server hung up.
  func replyError(_ client: RawClient, handle: UInt64) throws -> UInt32? {
    guard let reply = try client.receive(16) else { return nil }
    #expect(Wire.read(reply, at: 0, as: UInt32.self) == Self.simpleReplyMagic)
    #expect(Wire.read(reply, at: 8, as: UInt64.self) == handle)
    return Wire.read(reply, at: 4, as: UInt32.self)
  }

  @Test func badHandshakesAreRefusedAndTheServerCarriesOn() throws {
    let store = try TestStore()
    try store.createVolume("vm", size: "8M")
    let server = try ServerProcess(store: store, volumes: ["vm"])

    // Client flags the server never offered: hang up.
    let oddFlags = try RawClient(unixPath: store.socketPath)
    try greet(oddFlags, flags: 0x80)
    #expect(try oddFlags.isClosedByServer())

    // Bad option magic: hang up.
    let badMagic = try RawClient(unixPath: store.socketPath)
    try greet(badMagic)
    try sendOption(badMagic, 7, goData("vm", requests: []), magic: 0x1234)
    #expect(try badMagic.isClosedByServer())

    // Unknown options, structured replies and TLS are refused, the session continues;
    // LIST names the export; a GO for an unknown export fails softly; then GO works.
    let haggler = try RawClient(unixPath: store.socketPath)
    try greet(haggler)
    for option: UInt32 in [99, 8, 5] {
      try sendOption(haggler, option)
      let reply = try readOptionReply(haggler)
      #expect(reply.option == option)
      #expect(reply.type == 0x8000_0001, "option \(option) should be NBD_REP_ERR_UNSUP")
    }
    try sendOption(haggler, 3)
    let server1 = try readOptionReply(haggler)
    #expect(server1.type == 2)
    #expect(Array(server1.data[4...]) == Array("vm".utf8))
    #expect(try readOptionReply(haggler).type == 1)
    try sendOption(haggler, 3, [1, 2, 3])
    #expect(try readOptionReply(haggler).type == 0x8000_0003)
    try sendOption(haggler, 7, [0, 0, 0, 9, 1])
    #expect(try readOptionReply(haggler).type == 0x8000_0003, "truncated GO data is NBD_REP_ERR_INVALID")
    try sendOption(haggler, 7, goData("nope", requests: []))
    #expect(try readOptionReply(haggler).type == 0x8000_0006)
    try sendOption(haggler, 2)
    #expect(try readOptionReply(haggler).type == 1)
    #expect(try haggler.isClosedByServer())

    // NBD_OPT_EXPORT_NAME: an unknown name ends the session (it cannot carry an error).
    let unknownName = try RawClient(unixPath: store.socketPath)
    try greet(unknownName)
    try sendOption(unknownName, 1, Array("missing".utf8))
    #expect(try unknownName.isClosedByServer())

    // NBD_OPT_EXPORT_NAME without NO_ZEROES: size, flags and 124 zero bytes.
    let oldStyle = try RawClient(unixPath: store.socketPath)
    try greet(oldStyle, flags: 1)
    try sendOption(oldStyle, 1, Array("vm".utf8))
    let reply = try #require(try oldStyle.receive(8 + 2 + 124))
    #expect(Wire.read(reply, at: 0, as: UInt64.self) == 8 << 20)
    #expect(Wire.read(reply, at: 8, as: UInt16.self) & 1 == 1)
    #expect(reply[10...].allSatisfy { $0 == 0 })
    try request(oldStyle, type: 2, handle: 1, offset: 0, length: 0)
    #expect(try oldStyle.isClosedByServer())

    try runChecked(try tool("nbdinfo"), [store.uri("vm")])
    #expect(server.stop() == 0)
    #expect(server.log.contains("handshake failed"))
  }

  @Test func badRequestsGetErrorsAndPartialWritesAreNeverJournaled() throws {
    let store = try TestStore()
    try store.createVolume("vm", size: "48M")
    let server = try ServerProcess(store: store, volumes: ["vm"])
    let size: UInt64 = 48 << 20

    let (client, advertised) = try connect(store.socketPath, export: "vm")
    #expect(advertised == size)
    // Unknown command.
    try request(client, type: 42, handle: 1, offset: 0, length: 0)
    #expect(try replyError(client, handle: 1) == Self.invalid)
    // Read past the end.
    try request(client, type: 0, handle: 2, offset: size - 4096, length: 8192)
    #expect(try replyError(client, handle: 2) == Self.invalid)
    // Read larger than the 32 MiB maximum, inside the export.
    try request(client, type: 0, handle: 3, offset: 0, length: 33 << 20)
    #expect(try replyError(client, handle: 3) == Self.invalid)
    // Write past the end: the payload is consumed, ENOSPC, the stream stays in step.
    try request(
      client, type: 1, handle: 4, offset: size - 512, length: 4096, payload: [UInt8](repeating: 7, count: 4096))
    #expect(try replyError(client, handle: 4) == Self.noSpace)
    // Misaligned write after the client agreed to 512-byte blocks.
    try request(client, type: 1, handle: 5, offset: 100, length: 512, payload: [UInt8](repeating: 8, count: 512))
    #expect(try replyError(client, handle: 5) == Self.invalid)
    // A flag that does not belong to the command.
    try request(client, type: 0, flags: 1 << 2, handle: 6, offset: 0, length: 512)
    #expect(try replyError(client, handle: 6) == Self.invalid)
    // Trim past the end.
    try request(client, type: 4, handle: 7, offset: size, length: 4096)
    #expect(try replyError(client, handle: 7) == Self.invalid)
    // Still in step: a good write and its read back.
    let good = [UInt8](repeating: 0x5A, count: 4096)
    try request(client, type: 1, handle: 8, offset: 4096, length: 4096, payload: good)
    #expect(try replyError(client, handle: 8) == 0)
    try request(client, type: 0, handle: 9, offset: 4096, length: 4096)
    #expect(try replyError(client, handle: 9) == 0)
    #expect(try client.receive(4096) == good)
    // A write over 32 MiB cannot be skipped: EINVAL, then the server hangs up.
    try request(client, type: 1, handle: 10, offset: 0, length: 40 << 20)
    #expect(try replyError(client, handle: 10) == Self.invalid)
    #expect(try client.isClosedByServer())

    // Bad request magic: hang up.
    let (confused, _) = try connect(store.socketPath, export: "vm")
    try request(confused, type: 0, handle: 1, offset: 0, length: 512, magic: 0xDEAD_BEEF)
    #expect(try confused.isClosedByServer())

    // Clients that agreed to nothing may write unaligned: the journal takes any extent.
    let (loose, _) = try connect(store.socketPath, export: "vm", requestBlockSize: false)
    try request(loose, type: 1, handle: 1, offset: 3, length: 5, payload: [1, 2, 3, 4, 5])
    #expect(try replyError(loose, handle: 1) == 0)
    try request(loose, type: 2, handle: 2, offset: 0, length: 0)

    // Gone in the middle of a write's payload: nothing of it reaches the journal.
    let (quitter, _) = try connect(store.socketPath, export: "vm")
    try request(
      quitter, type: 1, handle: 1, offset: 1 << 20, length: 65536, payload: [UInt8](repeating: 9, count: 10000))
    quitter.shutdownWriting()
    #expect(try quitter.isClosedByServer())
    try server.waitUntil("the server logs the partial write") { server.log.contains("nothing of it was journaled") }

    // The server is fine and serves a real client.
    let qemu = try runChecked(try tool("qemu-io"), ["-f", "raw", store.uri("vm"), "-c", "read -P 0x5a 4k 4k"])
    #expect(!qemu.stdout.contains("failed"))
    #expect(server.stop() == 0)

    let writes = try store.records("vm").filter { $0.kind == .write }
    #expect(writes.map(\.offset) == [4096, 3], "only the two accepted writes are journaled")
    #expect(try fileBytes(store.layout.liveImagePath("vm")) == (try store.replay("vm")))
  }
}
