import Foundation
import ReelCore

/// The connections a server has open and the threads serving them, so shutdown can wake
/// every one of them, wait until they have finished and join their threads.
final class ConnectionRegistry: Sendable {
  private struct State {
    var streams: [Int: SocketStream] = [:]
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

  /// Registers a stream and runs `body` on a new thread; returns false when the server is
  /// already stopping (the stream is then closed). Joins the threads of connections that
  /// ended since the last call, so they do not pile up on a long-running server.
  @discardableResult
  func serve(_ stream: SocketStream, _ body: @escaping @Sendable (_ id: Int) -> Void) -> Bool {
    let (id, ended): (Int?, [WorkerThread]) = state.withLock { state in
      let ended = state.takeEnded()
      guard !state.stopping else { return (nil, ended) }
      defer { state.nextID += 1 }
      state.streams[state.nextID] = stream
      return (state.nextID, ended)
    }
    ended.joinAll()
    guard let id else {
      stream.close()
      return false
    }
    let thread = WorkerThread(name: "reel connection \(id)") { [state] in
      body(id)
      stream.close()
      state.withLock { $0.streams[id] = nil }
      state.broadcast()
    }
    state.withLock { $0.threads[id] = thread }
    return true
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
