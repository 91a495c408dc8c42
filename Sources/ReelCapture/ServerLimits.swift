import ReelCore

/// What clients of one `reel serve` may hold, together and each (docs/capture.md,
/// "Limits"). A client over a limit is refused or disconnected with a log line that names
/// the limit and the flag that sets it; clients within the limits never notice them.
package struct ServerLimits: Sendable {
  /// Open NBD connections, handshakes included (`--max-connections`). Each one costs a
  /// thread while it haggles and 17 once it transmits; over the limit a new connection
  /// is closed at once, without a thread.
  package var connections = 64
  /// Connections in transmission to one export (`--max-connections-per-export`); one more
  /// is refused when it asks for the export (NBD_REP_ERR_POLICY with a message).
  package var connectionsPerExport = 16
  /// A client must finish the handshake within this (`--handshake-timeout`), whether it
  /// sends nothing or dribbles it.
  package var handshakeTimeout: Duration = .seconds(10)
  /// A connection in transmission that sends nothing for this long is closed
  /// (`--idle-timeout`); nil, the default, keeps idle clients: a mounted, quiet file
  /// system is a normal client, and idle ones count against `connections`.
  package var idleTimeout: Duration?
  /// A reply the client does not take within this fails and ends the connection
  /// (`--send-timeout`), which frees the memory its requests held.
  package var sendTimeout: Duration = .seconds(60)
  /// Request buffers (write payloads, read replies) of all connections together, bytes
  /// (`--request-memory`); requests wait for room. Also bounds the largest read or write.
  package var requestMemory = 256 << 20

  package init() {}

  /// Refuses settings that cannot work, naming the flag.
  package func validate() throws {
    guard connections >= 1 else {
      throw ReelError(.usage, "--max-connections must be at least 1", remedy: "the default is 64")
    }
    guard connectionsPerExport >= 1 else {
      throw ReelError(.usage, "--max-connections-per-export must be at least 1", remedy: "the default is 16")
    }
    guard requestMemory >= 1 << 20 else {
      throw ReelError(
        .usage, "--request-memory must be at least 1 MiB", remedy: "the default is 256M; reads and writes need 32M")
    }
    for (flag, value) in [
      ("--handshake-timeout", handshakeTimeout), ("--send-timeout", sendTimeout),
      ("--idle-timeout", idleTimeout ?? .seconds(1)),
    ] where value <= .zero {
      throw ReelError(.usage, "\(flag) must be positive", remedy: "give it in seconds, e.g. 10")
    }
  }

  /// The largest READ or WRITE payload: the protocol's 32 MiB, or less when the request
  /// memory is smaller, so one request always fits (a multiple of 512 bytes, the
  /// smallest block a client may use).
  var maximumPayload: UInt32 {
    let whole = requestMemory / RequestMemory.granule * RequestMemory.granule
    return UInt32(min(Int(NBD.maximumPayload), whole))
  }

  /// `10 s`, `1.5 s` for the log.
  static func describe(_ duration: Duration) -> String {
    let (seconds, attoseconds) = duration.components
    let tenths = attoseconds / 100_000_000_000_000_000
    return tenths == 0 ? "\(seconds) s" : "\(seconds).\(tenths) s"
  }
}

/// Connections in transmission per export, at most `limit` each. Taken when a client
/// chooses the export (NBD_OPT_GO or NBD_OPT_EXPORT_NAME), given back when it leaves.
final class ExportSlots: Sendable {
  let limit: Int
  private struct State {
    var taken: [String: Int] = [:]
    /// Exports closed to new connections while a rollback runs (RollbackApplication.swift).
    var closed: Set<String> = []
    /// The streams in transmission, so a rollback with --disconnect can cut them.
    var streams: [String: [Int: SocketStream]] = [:]
  }
  private let state = Locked(State())

  init(limit: Int) { self.limit = limit }

  /// False when `export` already has `limit` connections or is closed for a rollback.
  func take(_ export: String) -> Bool {
    state.withLock { state in
      guard state.taken[export, default: 0] < limit, !state.closed.contains(export) else { return false }
      state.taken[export, default: 0] += 1
      return true
    }
  }

  func give(_ export: String) {
    state.withLock { $0.taken[export, default: 1] -= 1 }
    state.broadcast()
  }

  func refusal(_ export: String) -> String {
    if state.withLock({ $0.closed.contains(export) }) {
      return "volume \"\(export)\" is being rolled back"
    }
    return "export \"\(export)\" already has \(limit) connections, the most --max-connections-per-export allows"
  }

  /// Registers a connection's stream while it is in transmission.
  func attach(_ export: String, id: Int, stream: SocketStream) {
    state.withLock { $0.streams[export, default: [:]][id] = stream }
  }

  func detach(_ export: String, id: Int) {
    state.withLock { _ = $0.streams[export]?.removeValue(forKey: id) }
  }

  /// Refuses new connections to `export` until `open`; returns how many it has now.
  func close(_ export: String) -> Int {
    state.withLock { state in
      state.closed.insert(export)
      return state.taken[export, default: 0]
    }
  }

  func open(_ export: String) {
    state.withLock { _ = $0.closed.remove(export) }
  }

  /// Stops receiving on every connection of `export` and waits (up to `timeout`) until
  /// they have all left; returns how many were cut, or nil if some did not leave in time.
  func disconnectAll(_ export: String, timeout: Duration) -> Int? {
    let cut = state.withLock { state in
      let streams = state.streams[export] ?? [:]
      for stream in streams.values { stream.stopReceiving() }
      return streams.count
    }
    let left = state.withLock(when: { $0.taken[export, default: 0] == 0 }, timeout: timeout) {
      $0.taken[export, default: 0] == 0
    }
    return left ? cut : nil
  }
}
