import CLinux

#if canImport(Glibc)
  import Glibc
#endif

/// A thread its owner joins. Foundation's threads are detached: one told to stop may still
/// be unwinding (its stack, its thread-local destructors) when the process exits, and
/// glibc's teardown racing with it corrupted the heap. `join()` returns once the thread
/// has ended, so nothing outlives its owner.
package final class WorkerThread: Sendable {
  /// nil once joined.
  private let handle: Locked<pthread_t?>

  /// Starts `body` on a new thread named `name` (the first 15 bytes show in ps and top).
  package init(name: String, _ body: @escaping @Sendable () -> Void) {
    final class Start {
      let name: String
      let body: @Sendable () -> Void
      init(name: String, body: @escaping @Sendable () -> Void) {
        self.name = name
        self.body = body
      }
    }
    let start = Unmanaged.passRetained(Start(name: name, body: body)).toOpaque()
    var thread = pthread_t()
    let status = pthread_create(
      &thread, nil,
      { context in
        let start = Unmanaged<Start>.fromOpaque(context!).takeRetainedValue()
        var name = Array(start.name.utf8.prefix(15))
        name.append(0)
        name.withUnsafeBufferPointer { $0.withMemoryRebound(to: CChar.self) { reel_set_thread_name($0.baseAddress) } }
        start.body()
        return nil
      }, start)
    precondition(status == 0, "cannot start thread \(name): \(String(cString: strerror(status)))")
    handle = Locked<pthread_t?>(thread)
  }

  /// Starts one thread per index in `0..<count`, each running `body` with its index.
  package static func group(
    _ count: Int, name: (Int) -> String, _ body: @escaping @Sendable (Int) -> Void
  ) -> [WorkerThread] {
    (0..<count).map { index in WorkerThread(name: name(index)) { body(index) } }
  }

  /// Waits until the thread has ended; at once if it was joined already.
  package func join() {
    handle.withLock { handle in
      guard let thread = handle else { return }
      precondition(pthread_equal(thread, pthread_self()) == 0, "a thread cannot join itself")
      pthread_join(thread, nil)
      handle = nil
    }
  }

  /// A thread never joined is detached, so its resources go when it ends.
  deinit {
    handle.withLock { handle in
      if let thread = handle { pthread_detach(thread) }
    }
  }
}

extension [WorkerThread] {
  /// Joins every thread, in order.
  package func joinAll() {
    for thread in self { thread.join() }
  }
}
