import Foundation
import ReelCore
import ReelIO

/// What `reel serve` was asked to do.
package struct CaptureConfiguration: Sendable {
  package var layout: StoreLayout
  package var volumes: [String]
  /// Unix socket path; nil means `<store>/run/reel.sock` unless `listen` is given.
  package var socketPath: String?
  /// `PORT`, `HOST:PORT` or `[IPv6]:PORT`; the host defaults to 127.0.0.1.
  package var listen: String?
  /// NBD_OPT_STARTTLS, keys and per-export identities; TCP requires TLS unless told otherwise.
  package var tls = TLSConfiguration()
  /// Who may connect to the Unix sockets (the NBD socket and the control sockets).
  package var socketAccess: SocketAccess = .owner
  /// Receives one line per event (connections, recovery, shutdown); `reel serve` prints them to stderr.
  package var log: @Sendable (String) -> Void
  /// Past points to export read-only instead of (or beside) live volumes.
  package var pastPoints: [PastPointExport] = []
  /// Checkpoint the live image after this many bytes changed ...
  package var checkpointBytes: UInt64 = 256 << 20
  /// ... or this long after the first change since the last checkpoint.
  var checkpointInterval: Duration = .seconds(60)
  /// How far the live image may lag behind the journal (docs/capture.md).
  package var liveImage = LiveImageOptions()
  /// What clients may hold: connections, time, request memory (docs/capture.md, "Limits").
  package var limits = ServerLimits()
  /// The volume as of a seq in the live store, which a lazy live image reads what it has
  /// not been written from: needed when the journal does not begin at seq 1 (a clone, a
  /// rehydrated volume, older segments pruned once sealed); without it such a rebuild is
  /// refused.
  package var rebuildBase: (@Sendable (_ volume: VolumeDescriptor, _ seq: Seq) throws -> any VolumeSource)?
  /// The newest seq of a volume the live store has ingested: a live image rebuilt after a
  /// reboot starts lazily from there (docs/capture.md, "Lazy live image").
  package var storeNewestSeq: (@Sendable (_ volume: VolumeDescriptor) throws -> Seq)?
  /// Plans a `ROLLBACK` request on a volume's control socket: catches the store up with
  /// the journal through the seq given and says which extents go back to which seq. `reel
  /// serve` plans with ReelClones; without it rollbacks of served volumes are refused.
  package var planRollback: RollbackApplication.Planner?

  package init(
    layout: StoreLayout, volumes: [String], socketPath: String? = nil, listen: String? = nil,
    log: @escaping @Sendable (String) -> Void
  ) {
    self.layout = layout
    self.volumes = volumes
    self.socketPath = socketPath
    self.listen = listen
    self.log = log
  }

  var defaultSocketPath: String { layout.root + "/run/reel.sock" }
}

/// A running NBD capture server: volumes opened and recovered, sockets listening.
package final class CaptureServer: Sendable {
  package struct ServedVolumeInfo: Sendable {
    package var name: String
    package var size: UInt64
    package var blockSize: UInt32
    package var recovery: LiveImageRecovery
    package var controlSocket: String
  }

  /// Where NBD clients connect: Unix socket paths and TCP `host:port`s.
  package let endpoints: [Endpoint]
  package let volumes: [ServedVolumeInfo]
  package let pastPoints: [PastPointExport]
  /// Whether clients must, may or cannot use TLS.
  package var tlsMode: TLSMode { tls.mode }

  /// When a client last wrote, trimmed or zeroed any served volume; nil before the first time.
  package var lastChange: ContinuousClock.Instant? { served.compactMap(\.lastChange).max() }

  package enum Endpoint: Sendable, CustomStringConvertible {
    case unix(path: String)
    case tcp(address: String)

    package var description: String {
      switch self {
      case .unix(let path): "unix socket \(path)"
      case .tcp(let address): "tcp \(address)"
      }
    }

    /// An NBD URI for `name` (as qemu, nbdinfo and nbdcopy take it); `nbds` when TLS is
    /// required.
    package func uri(export name: String, tls: Bool = false) -> String {
      let scheme = tls ? "nbds" : "nbd"
      return switch self {
      case .unix(let path): "\(scheme)+unix:///\(name)?socket=\(path)"
      case .tcp(let address): "\(scheme)://\(address)/\(name)"
      }
    }
  }

  private let configuration: CaptureConfiguration
  private let served: [ServedVolume]
  private let exports: ExportTable
  private let tls: TLSPolicy
  private let listeners: [SocketListener]
  private let controls: [ControlSocket]
  private let clients = ConnectionRegistry()
  private let controlClients = ConnectionRegistry()
  private let memory: RequestMemory
  private let workers = RequestWorkers()
  private let slots: ExportSlots
  private struct State {
    var stopRequested = false
    var nextClient = 1
    /// Refusals over `--max-connections` are logged at most once a second, so a flood of
    /// connections cannot flood the log too.
    var refusalsUnlogged = 0
    var lastRefusalLogged: ContinuousClock.Instant?
  }
  private let state = Locked(State())
  private let signalPipe: Int32

  /// Opens every volume (journal lock, crash recovery of the live image) and starts
  /// listening; clients are served once `run` is called.
  package init(_ configuration: CaptureConfiguration) throws {
    self.configuration = configuration
    signalPipe = StopSignals.install()
    guard !configuration.volumes.isEmpty || !configuration.pastPoints.isEmpty else {
      throw ReelError(.usage, "no volume to serve", remedy: "name one or more volumes: `reel serve NAME...`")
    }
    let names = configuration.volumes + configuration.pastPoints.map(\.name)
    if let duplicate = Dictionary(grouping: names, by: { $0 }).first(where: { $0.value.count > 1 }) {
      throw ReelError(.usage, "volume \(duplicate.key) is named twice", remedy: "name each volume once")
    }
    tls = try TLSPolicy(configuration.tls, exports: names, listen: configuration.listen)
    try configuration.limits.validate()
    try configuration.layout.requireInitialized()
    var opened: [ServedVolume] = []
    var controls: [ControlSocket] = []
    var listeners: [SocketListener] = []
    let slots = ExportSlots(limit: configuration.limits.connectionsPerExport)
    do {
      for name in configuration.volumes {
        let volume = try ServedVolume.open(
          name: name, layout: configuration.layout, checkpointBytes: configuration.checkpointBytes,
          checkpointInterval: configuration.checkpointInterval, liveImage: configuration.liveImage,
          rebuildBase: configuration.rebuildBase, storeNewestSeq: configuration.storeNewestSeq,
          log: configuration.log)
        opened.append(volume)
        configuration.log("volume \(name): \(volume.recovery)")
      }
      for volume in opened {
        controls.append(
          try ControlSocket(
            volume: volume, registry: controlClients, access: configuration.socketAccess, log: configuration.log,
            rollback: RollbackService(
              volume: volume, slots: slots, plan: configuration.planRollback, storeSource: configuration.rebuildBase)))
      }
      if let listen = configuration.listen {
        let (host, port) = try Self.parseListen(listen)
        listeners.append(try SocketListener.tcp(host: host, port: port))
      }
      if configuration.socketPath != nil || configuration.listen == nil {
        listeners.append(
          try SocketListener.unix(
            path: configuration.socketPath ?? configuration.defaultSocketPath, access: configuration.socketAccess))
      }
    } catch {
      for listener in listeners { listener.stop() }
      for control in controls { control.listener.stop() }
      for volume in opened { try? volume.close() }
      throw error
    }
    served = opened
    self.controls = controls
    self.listeners = listeners
    let maximum = configuration.limits.maximumPayload
    let backends: [any ExportBackend] = opened + configuration.pastPoints
    exports = ExportTable(exports: backends.map { Export(backend: $0, maximumBlockSize: maximum) })
    memory = RequestMemory(capacity: configuration.limits.requestMemory)
    self.slots = slots
    endpoints = listeners.map { $0.unixPath.map { .unix(path: $0) } ?? .tcp(address: $0.address) }
    volumes = opened.map {
      ServedVolumeInfo(
        name: $0.name, size: $0.descriptor.size, blockSize: $0.descriptor.blockSize, recovery: $0.recovery,
        controlSocket: $0.controlSocketPath)
    }
    pastPoints = configuration.pastPoints
  }

  /// Serves clients until SIGINT or SIGTERM (or `stop()`), then shuts down cleanly: no new
  /// clients, requests already received are answered, journals synced and closed, live
  /// images checkpointed as clean, sockets removed.
  package func run() throws {
    let signalWatcher = WorkerThread(name: "reel signals") { [self] in
      while true {
        let number = StopSignals.next(from: signalPipe)
        if number != 0 {
          configuration.log("received \(number == SIGINT ? "SIGINT" : "SIGTERM"); shutting down")
        }
        stop()
        if number != 0 || state.withLock({ $0.stopRequested }) { return }
      }
    }
    var accepting: [WorkerThread] = []
    for listener in listeners {
      accepting.append(WorkerThread(name: "reel accept \(listener.address)") { [self] in acceptClients(listener) })
    }
    for control in controls {
      accepting.append(WorkerThread(name: "reel control \(control.volume.name)") { control.acceptLoop() })
    }
    workers.start()
    let checkpointer = WorkerThread(name: "reel checkpoint") { [self] in checkpointLoop() }
    let deadlines = WorkerThread(name: "reel deadlines") { [self] in deadlineLoop() }

    state.withLock(when: { $0.stopRequested }) { _ in }
    for listener in listeners { listener.stop() }
    for control in controls { control.listener.stop() }
    clients.stopAll()
    controlClients.stopAll()
    // Connections waiting for request memory end too; buffers in use are still given back.
    memory.close()
    // Accepting ends with the listeners; then no connection can start, and every one
    // that did is joined.
    accepting.joinAll()
    clients.waitUntilEmpty()
    controlClients.waitUntilEmpty()
    workers.stop()
    checkpointer.join()
    deadlines.join()
    signalWatcher.join()

    var firstError: Error?
    for volume in served {
      do {
        try volume.close()
        configuration.log(
          "volume \(volume.name): journal closed at seq \(volume.journal.lastAppendedSeq), live image checkpointed")
      } catch {
        configuration.log("volume \(volume.name): clean shutdown failed: \(error)")
        firstError = firstError ?? error
      }
    }
    if let firstError { throw firstError }
  }

  /// Asks `run` to shut down; safe from any thread.
  package func stop() {
    let first = state.withLock { state in
      defer { state.stopRequested = true }
      return !state.stopRequested
    }
    state.broadcast()
    if first { StopSignals.wake() }
  }

  private func acceptClients(_ listener: SocketListener) {
    let transport = listener.unixPath == nil ? "tcp" : "unix"
    let limits = configuration.limits
    while let stream = listener.accept() {
      let number = state.withLock { state in
        defer { state.nextClient += 1 }
        return state.nextClient
      }
      let label = "client \(number) (\(transport))"
      // Every receive and send is bounded from the first byte; the deadline bounds the
      // whole handshake, which a client could otherwise dribble one byte at a time.
      stream.setTimeouts(receive: limits.handshakeTimeout, send: limits.sendTimeout)
      let deadline = ContinuousClock.now + limits.handshakeTimeout
      let admission = clients.serve(stream, limit: limits.connections, deadline: deadline) { [self] id in
        serveClient(stream, id: id, label: label, handshakeDeadline: deadline)
      }
      if case .full(let limit) = admission {
        let unlogged: Int? = state.withLock { state in
          let now = ContinuousClock.now
          if let last = state.lastRefusalLogged, now - last < .seconds(1) {
            state.refusalsUnlogged += 1
            return nil
          }
          defer { state.refusalsUnlogged = 0 }
          state.lastRefusalLogged = now
          return state.refusalsUnlogged
        }
        if let unlogged {
          let more = unlogged > 0 ? " (and \(unlogged) more since the last such line)" : ""
          configuration.log(
            "\(label): refused: \(limit) connections are open, the most --max-connections allows; closed before the handshake\(more)"
          )
        }
      }
    }
  }

  private func serveClient(
    _ stream: SocketStream, id: Int, label: String, handshakeDeadline: ContinuousClock.Instant
  ) {
    let outcome: HandshakeOutcome
    let limits = configuration.limits
    let overdue =
      "did not finish the handshake within \(ServerLimits.describe(limits.handshakeTimeout)) (--handshake-timeout); disconnected"
    do {
      var handshake = NBDHandshake(stream: stream, exports: exports, tls: tls, slots: slots)
      handshake.note = { [configuration] in configuration.log("\(label): \($0)") }
      outcome = try handshake.run()
    } catch let closed as ConnectionClosed {
      if ContinuousClock.now >= handshakeDeadline {
        configuration.log("\(label): \(overdue)")
      } else {
        configuration.log("\(label): went away during the handshake (after \(closed.received) bytes of a message)")
      }
      return
    } catch let failure as SocketFailure where failure.timedOut {
      configuration.log("\(label): \(overdue)")
      return
    } catch {
      configuration.log("\(label): handshake failed: \(error); disconnected")
      return
    }
    switch outcome {
    case .ended(let reason):
      configuration.log("\(label): \(reason)")
    case .transmission(let export, let agreed):
      defer { slots.give(export.name) }
      slots.attach(export.name, id: id, stream: stream)
      defer { slots.detach(export.name, id: id) }
      clients.setDeadline(id, nil)
      stream.setTimeouts(receive: limits.idleTimeout, send: limits.sendTimeout)
      let secured = stream.tlsSession.map { " over \($0.summary)" } ?? ""
      configuration.log("\(label) connected to export \"\(export.name)\"\(secured)")
      let connection = NBDConnection(
        stream: stream, export: export, enforceAlignment: agreed, memory: memory, workers: workers, limits: limits,
        log: configuration.log)
      let reason = connection.serve()
      configuration.log("\(label) disconnected from export \"\(export.name)\": \(reason)")
    }
  }

  /// Cuts off handshakes that overran their deadline, checking a few times a second, and
  /// reports refused connections that were not logged one by one.
  private func deadlineLoop() {
    while true {
      let stopping = state.withLock(when: { $0.stopRequested }, timeout: .milliseconds(250)) { $0.stopRequested }
      if stopping { return }
      clients.enforceDeadlines()
      let unlogged = state.withLock { state -> Int in
        guard state.refusalsUnlogged > 0, let last = state.lastRefusalLogged, ContinuousClock.now - last >= .seconds(1)
        else { return 0 }
        defer {
          state.refusalsUnlogged = 0
          state.lastRefusalLogged = ContinuousClock.now
        }
        return state.refusalsUnlogged
      }
      if unlogged > 0 {
        configuration.log(
          "\(unlogged) more connections refused: \(configuration.limits.connections) were open, the most --max-connections allows"
        )
      }
    }
  }

  private func checkpointLoop() {
    while true {
      let stopping = state.withLock(when: { $0.stopRequested }, timeout: .seconds(1)) { $0.stopRequested }
      if stopping { return }
      for volume in served {
        do {
          try volume.checkpointIfDue()
        } catch {
          configuration.log("volume \(volume.name): checkpoint failed: \(error)")
        }
      }
    }
  }

  /// `PORT`, `HOST:PORT` or `[IPv6]:PORT`.
  static func parseListen(_ text: String) throws -> (host: String, port: UInt16) {
    let invalid = ReelError(
      .usage, "cannot read --listen \"\(text)\"",
      remedy: "give PORT, HOST:PORT or [IPv6]:PORT, e.g. 10809 or 0.0.0.0:10809")
    if let port = UInt16(text) { return ("127.0.0.1", port) }
    if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
      let host = String(text[text.index(after: text.startIndex)..<close])
      let rest = text[text.index(after: close)...]
      guard rest.hasPrefix(":"), let port = UInt16(rest.dropFirst()), !host.isEmpty else { throw invalid }
      return (host, port)
    }
    guard let colon = text.lastIndex(of: ":"), let port = UInt16(text[text.index(after: colon)...]) else {
      throw invalid
    }
    let host = String(text[..<colon])
    return (host.isEmpty ? "127.0.0.1" : host, port)
  }
}
