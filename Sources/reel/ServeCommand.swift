import ArgumentParser
import Foundation
import ReelCapture
import ReelClones
import ReelCore
import ReelIO
import ReelStore

struct ServeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "serve",
    abstract: "Serve volumes over NBD, journaling every write before it is acknowledged.",
    discussion: """
      Any NBD client (qemu, nbdcopy, nbdfuse, nbd-client) reads and writes the volumes; the
      export name is the volume name (an empty name picks the only volume served).
      Listens on a Unix socket, by default <store>/run/reel.sock, and with --listen on TCP.
      The Unix sockets (NBD and each volume's control socket) are 0600, only its owner may
      connect; --socket-group G makes them 0660 with group G.
      TCP needs TLS (--tls-psk FILE or --tls-certificates DIR) unless --insecure-no-tls is
      given; clients then connect with nbds:// URIs (docs/capture.md, "TLS").
      SIGINT or SIGTERM stops it cleanly. Client connects and disconnects are logged to stderr.
      While serving, the live store ingests the journals every few seconds.
      With --at POINT --read-only the volumes are served as they were at POINT, from the
      live store, without restoring them; writes are refused with EPERM.
      """)

  @OptionGroup var options: StoreOption
  @Argument(help: "Volumes to serve.") var names: [String]
  @Option(help: "Unix socket path (default: <store>/run/reel.sock when --listen is not given).")
  var socket: String?
  @Option(
    help: ArgumentHelp(
      "Let this group connect to the Unix sockets too (mode 0660 instead of 0600).",
      discussion: "The folders above the sockets must let the group in: the store folder is private (0700).",
      valueName: "group"))
  var socketGroup: String?
  @Option(help: "Also listen on TCP: PORT, HOST:PORT or [IPv6]:PORT (host defaults to 127.0.0.1).")
  var listen: String?
  @Option(help: "Serve the volumes as of this point: RFC 3339 time, bookmark label, seq:N or latest.")
  var at: String?
  @Flag(help: "Serve read-only from the live store (required with --at).") var readOnly = false
  @Option(help: ArgumentHelp("TLS: off, on (offered) or require (the default once keys are given).", valueName: "MODE"))
  var tls: TLSMode?
  @Option(
    name: .customLong("tls-psk"),
    help: ArgumentHelp("Pre-shared keys: IDENTITY:HEXKEY lines, as `psktool -p FILE` writes.", valueName: "FILE"))
  var tlsPSK: String?
  @Option(
    name: .customLong("tls-certificates"),
    help: ArgumentHelp("X.509: a folder with ca-cert.pem, server-cert.pem, server-key.pem.", valueName: "DIR"))
  var tlsCertificates: String?
  @Flag(name: .customLong("tls-verify-peer"), help: "Require client certificates signed by ca-cert.pem.")
  var tlsVerifyPeer = false
  @Option(
    name: .customLong("allow"),
    help: ArgumentHelp(
      "Only these PSK identities open VOLUME (repeatable; then needed for every volume).",
      valueName: "VOLUME=IDENTITY"))
  var allow: [String] = []
  @Flag(name: .customLong("insecure-no-tls"), help: "Allow --listen without TLS (anyone reaching the port can write).")
  var insecureNoTLS = false
  // Limits (docs/capture.md, "Limits").
  @Option(help: "Most NBD connections open at once, handshakes included; more are closed at once.")
  var maxConnections = ServerLimits().connections
  @Option(help: "Most connections to one export; more are refused when they ask for it.")
  var maxConnectionsPerExport = ServerLimits().connectionsPerExport
  @Option(help: "A client must finish the NBD handshake within this (e.g. 10s).")
  var handshakeTimeout = "10s"
  @Option(help: "Disconnect a client that sends nothing for this long (e.g. 15m); off by default.")
  var idleTimeout = "off"
  @Option(help: "Disconnect a client that takes no reply for this long (e.g. 60s).")
  var sendTimeout = "60s"
  @Option(help: "Memory for request buffers of all clients together (e.g. 256M); requests wait for room.")
  var requestMemory = "256M"
  // Tuning and test hooks (docs/capture.md, "Live image"), not shown in --help.
  @Option(name: .customLong("live-image-lag"), help: .hidden) var liveImageLag: String?
  @Flag(name: .customLong("defer-live-image"), help: .hidden) var deferLiveImage = false
  @Option(name: .customLong("checkpoint-bytes"), help: .hidden) var checkpointBytes: String?
  @Option(name: .customLong("ingest-interval"), help: .hidden) var ingestInterval: Double?

  func validate() throws {
    if at != nil && !readOnly {
      throw ValidationError("a past point can only be served read-only: add --read-only")
    }
    for entry in allow where !entry.contains("=") {
      throw ValidationError("--allow \(entry): write VOLUME=IDENTITY, e.g. --allow vm1=alice")
    }
  }

  func run() throws {
    let layout = StoreLayout.resolve(options.store)
    let log: @Sendable (String) -> Void = { line in
      FileHandle.standardError.write(Data("reel serve: \(line)\n".utf8))
    }
    var configuration = CaptureConfiguration(
      layout: layout, volumes: readOnly ? [] : names, socketPath: socket, listen: listen, log: log)
    if let socketGroup { configuration.socketAccess = try SocketAccess.group(named: socketGroup) }
    if let liveImageLag { configuration.liveImage.lagBytes = max(1, try ByteSize.parse(liveImageLag)) }
    configuration.liveImage.deferApply = deferLiveImage
    configuration.tls.mode = tls
    configuration.tls.pskFile = tlsPSK
    configuration.tls.certificateDirectory = tlsCertificates
    configuration.tls.verifyPeer = tlsVerifyPeer
    configuration.tls.plainTCP = insecureNoTLS
    for entry in allow {
      let parts = entry.split(separator: "=", maxSplits: 1)
      configuration.tls.allowedIdentities[String(parts[0]), default: []].insert(String(parts.count > 1 ? parts[1] : ""))
    }
    if let checkpointBytes { configuration.checkpointBytes = max(1, try ByteSize.parse(checkpointBytes)) }
    configuration.limits = try limits()
    let store = try Store.open(layout)
    if !readOnly {
      // A rehydrated volume's journal is empty: new writes continue its imported history.
      let live = LiveStore(store: store)
      for name in names { try live.continueJournal(of: try layout.descriptor(of: name)) }
    }
    configuration.rebuildBase = { descriptor, seq in
      let live = LiveStore(store: store)
      try live.ingest(volume: descriptor.name, upTo: seq)
      return try VolumeView(live: live, volume: descriptor.name, at: .seq(seq))
    }
    configuration.storeNewestSeq = { descriptor in try LiveStore(store: store).historyBounds(of: descriptor).ingested }
    configuration.planRollback = { descriptor, point, through in
      try RollbackPlanner.plan(live: LiveStore(store: store), volume: descriptor.name, to: point, through: through)
    }
    if readOnly {
      let live = LiveStore(store: store)
      let point = Point(parsing: at ?? "latest")
      configuration.pastPoints = try names.map { name in
        try live.ingest(volume: name)
        let view = try VolumeView(live: live, volume: name, at: point)
        return PastPointExport(
          name: name, source: view, blockSize: view.descriptor.blockSize,
          point: "\(view.resolved.point) (seq \(view.resolved.seq), \(view.resolved.time.rfc3339))")
      }
    }
    let server = try CaptureServer(configuration)
    for volume in server.volumes {
      say("Serving \(volume.name) (\(ByteSize.describe(volume.size)), \(volume.blockSize)-byte blocks)")
    }
    for past in server.pastPoints {
      say("Serving \(past.name) as of \(past.point), read-only")
    }
    for endpoint in server.endpoints {
      let exports = server.volumes.map(\.name) + server.pastPoints.map(\.name)
      let uris = exports.map { endpoint.uri(export: $0, tls: server.tlsMode == .require) }
      say("Listening on \(endpoint)\(tlsNote(server.tlsMode)): \(uris.joined(separator: " "))")
    }
    fflush(nil)  // scripts wait for these lines before connecting
    let ingestor =
      readOnly
      ? nil
      : LiveIngestor(
        store: store, volumes: names, interval: .milliseconds(Int64((ingestInterval ?? 5) * 1000)),
        activity: WriteActivity(lastChange: { server.lastChange }), report: log)
    ingestor?.start()
    do {
      defer { ingestor?.stop() }
      try server.run()
    }
    say(readOnly ? "Stopped." : "Stopped; journals closed.")
  }

  private func tlsNote(_ mode: TLSMode) -> String {
    switch mode {
    case .off: ""
    case .on: " (TLS offered)"
    case .require: " (TLS required)"
    }
  }

  private func limits() throws -> ServerLimits {
    var limits = ServerLimits()
    limits.connections = maxConnections
    limits.connectionsPerExport = maxConnectionsPerExport
    limits.handshakeTimeout = try Self.duration(handshakeTimeout, flag: "--handshake-timeout")
    limits.idleTimeout = idleTimeout == "off" ? nil : try Self.duration(idleTimeout, flag: "--idle-timeout")
    limits.sendTimeout = try Self.duration(sendTimeout, flag: "--send-timeout")
    let memory = try ByteSize.parse(requestMemory)
    limits.requestMemory = Int(min(memory, UInt64(Int.max)))
    try limits.validate()
    return limits
  }

  /// `10s`, `15m`, or a bare number of seconds (`0.5` for tests).
  private static func duration(_ text: String, flag: String) throws -> Duration {
    if let seconds = Double(text), seconds > 0, seconds < 1e9 { return .milliseconds(Int64(seconds * 1000)) }
    do {
      return try DurationText.parse(text)
    } catch let error as ReelError {
      throw ReelError(.usage, "\(flag): \(error.message)", remedy: error.remedy)
    }
  }
}

extension TLSMode: ExpressibleByArgument {}
