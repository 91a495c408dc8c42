import Foundation
import ReelCore

/// The connections a server has open and the threads serving them, so shutdown can wake
/// every one of them, wait until they have finished and join their threads.
final class ConnectionRegistry: Sendable {
  private struct State {
    var streams: [Int: SocketStream] = [:]
    /// When a connection must have got somewhere (its handshake done), or it is cut off.
    var deadlines: [Int: ContinuousClock.Instant] = [:]
    /// Threads not joined yet, by connection; a connection whose stream is gone has ended.
    var threads: [Int: WorkerThread] = [:]
    var nextID = 1
    var stopping = false

    /// Takes out the threads of connections that have ended, for joining.
    mutating func takeEnded() -> [WorkerThread] {
      let ended = threads.keys.filter { streams[$0] == nil }
      return ended.compactMap { threads.removeValue(forKey: $0) }
    }
  }

  private let state = Locked(State())

  enum Admission: Equatable {
    case serving
    /// `limit` connections are open; the stream was closed without a thread.
    case full(limit: Int)
    case stopping
  }

  /// Registers a stream and runs `body` on a new thread, unless the server is stopping or
  /// `limit` connections are open (the stream is then closed at once). Joins the threads
  /// of connections that ended since the last call, so they do not pile up on a
  /// long-running server.
  @discardableResult
  func serve(
    _ stream: SocketStream, limit: Int = .max, deadline: ContinuousClock.Instant? = nil,
    _ body: @escaping @Sendable (_ id: Int) -> Void
  ) -> Admission {
    let (id, ended, refusal): (Int?, [WorkerThread], Admission) = state.withLock { state in
      let ended = state.takeEnded()
      guard !state.stopping else { return (nil, ended, .stopping) }
      guard state.streams.count < limit else { return (nil, ended, .full(limit: limit)) }
      defer { state.nextID += 1 }
      state.streams[state.nextID] = stream
      state.deadlines[state.nextID] = deadline
      return (state.nextID, ended, .serving)
    }
    ended.joinAll()
    guard let id else {
      stream.close()
      return refusal
    }
    let thread = WorkerThread(name: "reel connection \(id)") { [state] in
      body(id)
      stream.close()
      state.withLock {
        $0.streams[id] = nil
        $0.deadlines[id] = nil
      }
      state.broadcast()
    }
    state.withLock { $0.threads[id] = thread }
    return .serving
  }

  /// Changes (or with nil, drops) the deadline of connection `id`.
  func setDeadline(_ id: Int, _ deadline: ContinuousClock.Instant?) {
    state.withLock { $0.deadlines[id] = deadline }
  }

  /// Stops receiving on every connection whose deadline has passed; its thread then sees
  /// the end of the stream and finishes.
  func enforceDeadlines(now: ContinuousClock.Instant = .now) {
    state.withLock { state in
      for (id, deadline) in state.deadlines where deadline <= now {
        state.deadlines[id] = nil
        state.streams[id]?.stopReceiving()
      }
    }
  }

  /// Wakes every connection blocked on input and refuses new ones.
  func stopAll() {
    state.withLock { state in
      state.stopping = true
      for stream in state.streams.values { stream.stopReceiving() }
    }
  }

  /// Waits until every connection has ended and joins their threads. Call once nothing
  /// calls `serve` any more (its caller's thread joined), so no thread is missed.
  func waitUntilEmpty() {
    let threads = state.withLock(when: { $0.streams.isEmpty }) { state in
      defer { state.threads = [:] }
      return Array(state.threads.values)
    }
    threads.joinAll()
  }
}
