#if canImport(Glibc)
  import Glibc
#endif

/// A value shared between threads and reached only under its lock, with one condition to
/// wait on until it changes. Classes keep their mutable state in one, so the compiler
/// checks that they are Sendable.
// The value is only read or written with `mutex` held, which the compiler cannot see.
package final class Locked<Value: Sendable>: @unchecked Sendable {
  private var value: Value
  private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
  private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

  package init(_ value: Value) {
    self.value = value
    pthread_mutex_init(mutex, nil)
    var attributes = pthread_condattr_t()
    pthread_condattr_init(&attributes)
    pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
    pthread_cond_init(changed, &attributes)
    pthread_condattr_destroy(&attributes)
  }

  deinit {
    pthread_cond_destroy(changed)
    pthread_mutex_destroy(mutex)
    changed.deallocate()
    mutex.deallocate()
  }

  package func withLock<Result>(_ body: (inout Value) throws -> Result) rethrows -> Result {
    pthread_mutex_lock(mutex)
    defer { pthread_mutex_unlock(mutex) }
    return try body(&value)
  }

  /// Waits until `ready` holds (woken by `signal` or `broadcast`), then runs `body`, all
  /// under the lock.
  package func withLock<Result>(
    when ready: (Value) -> Bool, _ body: (inout Value) throws -> Result
  ) rethrows -> Result {
    pthread_mutex_lock(mutex)
    defer { pthread_mutex_unlock(mutex) }
    while !ready(value) { pthread_cond_wait(changed, mutex) }
    return try body(&value)
  }

  /// Like `withLock(when:_:)`, but runs `body` after `timeout` even if `ready` never held.
  package func withLock<Result>(
    when ready: (Value) -> Bool, timeout: Duration, _ body: (inout Value) throws -> Result
  ) rethrows -> Result {
    var deadline = timespec()
    clock_gettime(CLOCK_MONOTONIC, &deadline)
    let (seconds, attoseconds) = timeout.components
    let nanoseconds = Int(deadline.tv_nsec) + Int(attoseconds / 1_000_000_000)
    deadline.tv_sec += Int(seconds) + nanoseconds / 1_000_000_000
    deadline.tv_nsec = nanoseconds % 1_000_000_000
    pthread_mutex_lock(mutex)
    defer { pthread_mutex_unlock(mutex) }
    while !ready(value) {
      if pthread_cond_timedwait(changed, mutex, &deadline) == ETIMEDOUT { break }
    }
    return try body(&value)
  }

  /// Wakes one thread waiting in `withLock(when:)`.
  package func signal() {
    pthread_cond_signal(changed)
  }

  /// Wakes every thread waiting in `withLock(when:)`.
  package func broadcast() {
    pthread_cond_broadcast(changed)
  }
}
