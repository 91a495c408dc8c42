import Foundation

/// The connections a server has open and the threads serving them, so shutdown can wake
/// every one of them and wait until they have finished.
final class ConnectionRegistry: @unchecked Sendable {
  private let state = NSCondition()
  private var streams: [Int: SocketStream] = [:]
  private var nextID = 1
  private var stopping = false

  /// Registers a stream and runs `body` on a new thread; returns false when the server is
  /// already stopping (the stream is then closed).
  @discardableResult
  func serve(_ stream: SocketStream, _ body: @escaping @Sendable (_ id: Int) -> Void) -> Bool {
    let id: Int? = state.withLock {
      guard !stopping else { return nil }
      defer { nextID += 1 }
      streams[nextID] = stream
      return nextID
    }
    guard let id else {
      stream.close()
      return false
    }
    let thread = Thread { [self] in
      body(id)
      stream.close()
      state.withLock {
        streams[id] = nil
        state.broadcast()
      }
    }
    thread.name = "reel connection \(id)"
    thread.start()
    return true
  }

  /// Wakes every connection blocked on input and refuses new ones.
  func stopAll() {
    state.withLock {
      stopping = true
      for stream in streams.values { stream.stopReceiving() }
    }
  }

  func waitUntilEmpty() {
    state.withLock {
      while !streams.isEmpty { state.wait() }
    }
  }
}
