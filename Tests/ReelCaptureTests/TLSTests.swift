import Foundation
import ReelCore
import ReelJournal
import ReelTestSupport
import Testing

/// Keys for TLS tests, made with the real tools: psktool for pre-shared keys, certtool for
/// a throwaway CA with a server and a client certificate.
struct TLSKeys {
  let folder: String

  init(in directory: TemporaryDirectory) throws {
    folder = directory.path + "/keys"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
  }

  /// A psktool file with a fresh key per identity; also `dir/keys.psk`, where qemu looks.
  func psk(_ identities: [String], named name: String) throws -> String {
    let directory = folder + "/" + name
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let file = directory + "/keys.psk"
    for identity in identities { try runChecked(try tool("psktool"), ["-u", identity, "-p", file]) }
    return file
  }

  /// A CA in `name`/ca-*.pem; with `server`, server-cert.pem and server-key.pem for
  /// 127.0.0.1; with `client`, client-cert.pem and client-key.pem. Returns the folder.
  @discardableResult
  func certificates(_ name: String, server: Bool = false, client: Bool = false) throws -> String {
    let directory = folder + "/" + name
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    let certtool = try tool("certtool")
    func template(_ text: String) throws -> String {
      let path = directory + "/template-\(UUID().uuidString.prefix(8))"
      try text.write(toFile: path, atomically: true, encoding: .utf8)
      return path
    }
    try runChecked(certtool, ["--generate-privkey", "--outfile", directory + "/ca-key.pem"])
    try runChecked(
      certtool,
      [
        "--generate-self-signed", "--load-privkey", directory + "/ca-key.pem", "--outfile", directory + "/ca-cert.pem",
        "--template", try template("cn = Reel test CA \(name)\nca\ncert_signing_key\nexpiration_days = 2\n"),
      ])
    for (role, wanted, usage) in [("server", server, "tls_www_server"), ("client", client, "tls_www_client")]
    where wanted {
      try runChecked(certtool, ["--generate-privkey", "--outfile", directory + "/\(role)-key.pem"])
      try runChecked(
        certtool,
        [
          "--generate-certificate", "--load-privkey", directory + "/\(role)-key.pem",
          "--load-ca-certificate", directory + "/ca-cert.pem", "--load-ca-privkey", directory + "/ca-key.pem",
          "--outfile", directory + "/\(role)-cert.pem",
          "--template",
          try template(
            "cn = \(role)\ndns_name = localhost\nip_address = 127.0.0.1\n\(usage)\nencryption_key\nsigning_key\n"
              + "expiration_days = 2\n"),
        ])
    }
    return directory
  }
}

/// The TCP port `reel serve --listen 127.0.0.1:0` printed.
func tcpPort(of server: ServerProcess) throws -> String {
  try server.waitUntil("the TCP address is printed") { server.output.contains("Listening on tcp") }
  let line = try #require(server.output.split(separator: "\n").first { $0.contains("Listening on tcp") })
  let address = try #require(line.split(separator: " ").first { $0.hasPrefix("127.0.0.1:") })
  return try #require(address.split(separator: ":").last.map { String($0) })
}

/// `qemu-io` against export `export` on 127.0.0.1:`port` with a TLS credentials object.
func qemuIO(port: String, export: String, credentials: String, _ command: String) throws -> CommandResult {
  try run(
    try tool("qemu-io"),
    [
      "--object", credentials, "--image-opts",
      "driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=\(port),export=\(export),tls-creds=tls0",
      "-c", command,
    ])
}

func journaledWrites(_ store: TestStore, _ volume: String) throws -> Int {
  try store.records(volume).filter { $0.kind == .write }.count
}

/// Starts `reel serve` expecting it to refuse (status 64, usage, or 66, a file missing);
/// returns what it said. One that starts anyway fails the test instead of hanging it.
func refusedStart(_ store: TestStore, _ volumes: [String], _ extra: [String]) throws -> String {
  let server = try ServerProcess(store: store, volumes: volumes, extra: extra, waitForSocket: false)
  let deadline = Date(timeIntervalSinceNow: 60)
  while server.child.isRunning && Date() < deadline { usleep(20_000) }
  let status = server.child.isRunning ? server.stop(SIGKILL) : server.child.wait()
  #expect(
    [64, 66].contains(status), "reel serve \(extra.joined(separator: " ")) must refuse to start:\n\(server.output)")
  return server.log
}

/// `reel serve` over TCP with TLS (NBD_OPT_STARTTLS), against the real clients: nbdinfo,
/// nbdcopy (libnbd), qemu-io and qemu-img. Refused clients leave the journal untouched.
@Suite(.serialized) struct TLSTests {
  @Test func tcpWithoutTLSIsRefusedUnlessAskedForPlainly() throws {
    let store = try TestStore()
    try store.createVolume("v", size: "8M")
    let refused = try refusedStart(store, ["v"], ["--listen", "127.0.0.1:0"])
    #expect(refused.contains("without TLS"), "\(refused)")
    #expect(refused.contains("--tls-psk FILE") && refused.contains("--insecure-no-tls"))
    #expect(try journaledWrites(store, "v") == 0)

    let server = try ServerProcess(
      store: store, volumes: ["v"], extra: ["--listen", "127.0.0.1:0", "--insecure-no-tls"])
    defer { server.stop() }
    let info = try runChecked(try tool("nbdinfo"), ["--size", "nbd://127.0.0.1:\(try tcpPort(of: server))/v"])
    #expect(info.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == String(8 << 20))
  }

  @Test func badTLSSettingsAreRefusedBeforeServing() throws {
    let store = try TestStore()
    try store.createVolume("v", size: "8M")
    try store.createVolume("w", size: "8M")
    let keys = try TLSKeys(in: store.directory)
    let psk = try keys.psk(["alice"], named: "alice")
    let garbled = keys.folder + "/garbled.psk"
    try "alice:not-hex\n".write(toFile: garbled, atomically: true, encoding: .utf8)
    let cases: [([String], String)] = [
      (["--tls", "require"], "needs keys"),
      (["--tls-psk", keys.folder + "/missing.psk"], "cannot read the pre-shared key file"),
      (["--tls-psk", garbled], "line 1 of \(garbled) is not IDENTITY:HEXKEY"),
      (["--tls-psk", psk, "--allow", "v=mallory", "--allow", "w=alice"], "identity mallory, which has no key"),
      (["--tls-psk", psk, "--allow", "v=alice"], "volume w has no --allow"),
      (["--tls-certificates", keys.folder, "--tls-verify-peer"], "has no readable server-cert.pem"),
      (["--listen", "127.0.0.1:0", "--tls", "on", "--tls-psk", psk], "--tls on still lets plain clients in"),
    ]
    for (extra, message) in cases {
      let log = try refusedStart(store, ["v", "w"], extra + ["--socket", store.directory.path + "/s.sock"])
      #expect(log.contains(message), "reel serve \(extra.joined(separator: " ")):\n\(log)")
    }
  }

  @Test func pskClientsReadAndWriteThroughTLS() throws {
    let store = try TestStore()
    try store.createVolume("v", size: "16M")
    let keys = try TLSKeys(in: store.directory)
    let psk = try keys.psk(["alice"], named: "alice")
    let server = try ServerProcess(store: store, volumes: ["v"], extra: ["--listen", "127.0.0.1:0", "--tls-psk", psk])
    defer { server.stop() }
    let port = try tcpPort(of: server)
    #expect(server.output.contains("nbds://127.0.0.1:\(port)/v"))
    let uri = "nbds://alice@127.0.0.1:\(port)/v?tls-psk-file=\(psk)"

    let info = try runChecked(try tool("nbdinfo"), [uri])
    #expect(info.stdout.contains("with TLS"), "\(info.stdout)")
    let source = store.directory.path + "/random.img"
    let back = store.directory.path + "/back.img"
    try writeRandomFile(source, bytes: 16 << 20)
    try runChecked(try tool("nbdcopy"), ["--flush", source, uri])
    try runChecked(try tool("nbdcopy"), [uri, back])
    #expect(try sha256(back) == (try sha256(source)))

    let credentials = "tls-creds-psk,id=tls0,endpoint=client,dir=\(keys.folder)/alice,username=alice"
    let write = try qemuIO(port: port, export: "v", credentials: credentials, "write -P 0x5a 13M 1M")
    #expect(write.succeeded && !write.output.contains("failed"), "\(write.output)")
    let read = try qemuIO(port: port, export: "v", credentials: credentials, "read -P 0x5a 13M 1M")
    #expect(read.succeeded && !read.output.contains("failed"), "\(read.output)")
    let size = try runChecked(
      try tool("qemu-img"),
      [
        "info", "--object", credentials, "--image-opts",
        "driver=nbd,server.type=inet,server.host=127.0.0.1,server.port=\(port),export=v,tls-creds=tls0",
      ])
    #expect(size.stdout.contains("16 MiB"), "\(size.stdout)")
    #expect(server.log.contains("PSK identity alice"))
    #expect(server.log.contains("-GCM"), "AES-GCM is preferred:\n\(server.log)")

    #expect(server.stop() == 0)
    var expected = try fileBytes(source)
    expected.replaceSubrange((13 << 20)..<(14 << 20), with: repeatElement(0x5a, count: 1 << 20))
    #expect(try store.replay("v") == expected)
  }

  /// SELECTIVETLS: TLS offered on the Unix socket, plain clients still welcome.
  @Test func offeredTLSIsOptional() throws {
    let store = try TestStore()
    try store.createVolume("v", size: "8M")
    let psk = try TLSKeys(in: store.directory).psk(["alice"], named: "alice")
    let server = try ServerProcess(store: store, volumes: ["v"], extra: ["--tls", "on", "--tls-psk", psk])
    defer { server.stop() }
    let plain = try runChecked(try tool("nbdinfo"), [store.uri("v")])
    #expect(plain.stdout.contains("without TLS"), "\(plain.stdout)")
    let secured = try runChecked(
      try tool("nbdinfo"), ["nbds+unix://alice@/v?socket=\(store.socketPath)&tls-psk-file=\(psk)"])
    #expect(secured.stdout.contains("with TLS"), "\(secured.stdout)")
    #expect(server.log.contains("PSK identity alice"))
  }

  @Test func refusedClientsWriteNothing() throws {
    let store = try TestStore()
    try store.createVolume("v", size: "8M")
    try store.createVolume("w", size: "8M")
    let keys = try TLSKeys(in: store.directory)
    let psk = try keys.psk(["alice", "bob"], named: "server")
    let forged = try keys.psk(["alice"], named: "forged")
    let server = try ServerProcess(
      store: store, volumes: ["v", "w"],
      extra: ["--listen", "127.0.0.1:0", "--tls-psk", psk, "--allow", "v=alice", "--allow", "w=bob"])
    defer { server.stop() }
    let port = try tcpPort(of: server)
    let source = store.directory.path + "/random.img"
    try writeRandomFile(source, bytes: 1 << 20)
    let nbdcopy = try tool("nbdcopy")

    let wrongKey = try run(nbdcopy, [source, "nbds://alice@127.0.0.1:\(port)/v?tls-psk-file=\(forged)"])
    #expect(!wrongKey.succeeded)
    let plain = try run(nbdcopy, [source, "nbd://127.0.0.1:\(port)/v"])
    #expect(!plain.succeeded)
    let otherIdentity = try run(nbdcopy, [source, "nbds://bob@127.0.0.1:\(port)/v?tls-psk-file=\(psk)"])
    #expect(!otherIdentity.succeeded)
    #expect(otherIdentity.stderr.contains("policy"), "NBD_REP_ERR_POLICY: \(otherIdentity.stderr)")
    let credentials = "tls-creds-psk,id=tls0,endpoint=client,dir=\(keys.folder)/server,username=bob"
    let qemu = try qemuIO(port: port, export: "v", credentials: credentials, "write -P 0x66 0 64k")
    #expect(!qemu.succeeded)
    // Bob's own volume takes his writes: the refusals above are about identity, not keys.
    try runChecked(nbdcopy, [source, "nbds://bob@127.0.0.1:\(port)/w?tls-psk-file=\(psk)"])
    let list = try runChecked(
      try tool("nbdinfo"), ["--list", "--json", "nbds://bob@127.0.0.1:\(port)?tls-psk-file=\(psk)"])
    #expect(list.stdout.contains("\"w\"") && !list.stdout.contains("\"v\""), "\(list.stdout)")

    #expect(server.stop() == 0)
    #expect(try journaledWrites(store, "v") == 0)
    #expect(try journaledWrites(store, "w") > 0)
    #expect(server.log.contains("handshake failed"), "the forged key fails in the TLS handshake:\n\(server.log)")
  }

  @Test func x509ClientCertificatesAreVerifiedAgainstTheCA() throws {
    let store = try TestStore()
    try store.createVolume("v", size: "8M")
    let keys = try TLSKeys(in: store.directory)
    let trusted = try keys.certificates("trusted", server: true, client: true)
    let stranger = try keys.certificates("stranger", client: true)
    let server = try ServerProcess(
      store: store, volumes: ["v"],
      extra: ["--listen", "127.0.0.1:0", "--tls-certificates", trusted, "--tls-verify-peer"])
    defer { server.stop() }
    let port = try tcpPort(of: server)

    let good = "tls-creds-x509,id=tls0,endpoint=client,dir=\(trusted)"
    let write = try qemuIO(port: port, export: "v", credentials: good, "write -P 0x33 0 1M")
    #expect(write.succeeded && !write.output.contains("failed"), "\(write.output)")
    let read = try qemuIO(port: port, export: "v", credentials: good, "read -P 0x33 0 1M")
    #expect(read.succeeded && !read.output.contains("failed"), "\(read.output)")
    let writes = try journaledWrites(store, "v")
    #expect(writes > 0)

    // A client certificate from another CA: the client trusts the server (it has the right
    // ca-cert.pem), but the server does not trust the client.
    let mixed = keys.folder + "/mixed"
    try FileManager.default.createDirectory(atPath: mixed, withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: trusted + "/ca-cert.pem", toPath: mixed + "/ca-cert.pem")
    for name in ["client-cert.pem", "client-key.pem"] {
      try FileManager.default.copyItem(atPath: stranger + "/" + name, toPath: mixed + "/" + name)
    }
    let refused = try qemuIO(
      port: port, export: "v", credentials: "tls-creds-x509,id=tls0,endpoint=client,dir=\(mixed)",
      "write -P 0x44 0 1M")
    #expect(!refused.succeeded, "\(refused.output)")
    // And a client that trusts only the other CA refuses this server.
    let distrust = try qemuIO(
      port: port, export: "v", credentials: "tls-creds-x509,id=tls0,endpoint=client,dir=\(stranger)",
      "write -P 0x55 0 1M")
    #expect(!distrust.succeeded, "\(distrust.output)")

    #expect(server.stop() == 0)
    #expect(try journaledWrites(store, "v") == writes)
    #expect(try store.replay("v").prefix(1 << 20).allSatisfy { $0 == 0x33 })
  }
}

extension MalformedTrafficTests {
  static let tlsRequired: UInt32 = 0x8000_0005
  static let unsupported: UInt32 = 0x8000_0001
  static let invalidOption: UInt32 = 0x8000_0003

  /// FORCEDTLS (proto.md): before NBD_OPT_STARTTLS every option but ABORT gets
  /// NBD_REP_ERR_TLS_REQD and NBD_OPT_EXPORT_NAME ends the session; a server without TLS
  /// says NBD_OPT_STARTTLS is unsupported.
  @Test func optionsBeforeTLSAreRefusedWhenTLSIsRequired() throws {
    let store = try TestStore()
    try store.createVolume("v", size: "8M")
    let psk = try TLSKeys(in: store.directory).psk(["alice"], named: "alice")
    let server = try ServerProcess(store: store, volumes: ["v"], extra: ["--tls", "require", "--tls-psk", psk])
    defer { server.stop() }

    let client = try RawClient(unixPath: store.socketPath)
    try greet(client)
    for (option, data) in [(UInt32(3), [UInt8]()), (7, goData("v", requests: [])), (6, goData("v", requests: []))] {
      try sendOption(client, option, data)
      let reply = try readOptionReply(client)
      #expect(reply.option == option && reply.type == Self.tlsRequired, "option \(option): \(reply.type)")
    }
    try sendOption(client, 5, [1, 2, 3])
    #expect(try readOptionReply(client).type == Self.invalidOption, "NBD_OPT_STARTTLS takes no data")
    try sendOption(client, 1, Array("v".utf8))
    #expect(try client.isClosedByServer(), "NBD_OPT_EXPORT_NAME without TLS must end the session")

    try store.createVolume("p", size: "8M")
    let plainServer = try ServerProcess(store: store, volumes: ["p"], socket: store.directory.path + "/plain.sock")
    let plainClient = try RawClient(unixPath: store.directory.path + "/plain.sock")
    try greet(plainClient)
    try sendOption(plainClient, 5)
    #expect(try readOptionReply(plainClient).type == Self.unsupported)
    _ = plainServer
    #expect(try journaledWrites(store, "v") == 0)
  }
}
