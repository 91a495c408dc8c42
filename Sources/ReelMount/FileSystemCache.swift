import ReelCore
import ReelFiles

/// Open file-system readers, one per (volume, seq): point folders that name the same
/// state (a bookmark and `at/` its instant) share one. Only the `capacity` most recently
/// used stay open, so memory is bounded however many points a user visits; a reader
/// dropped here lives on while a request still holds it and is opened again when needed
/// (inode numbers are the file system's own, so nothing the kernel holds goes stale).
final class FileSystemCache: Sendable {
  struct Key: Hashable, Sendable {
    var volume: Int
    var seq: Seq
  }

  /// Opened at most once at a time: requests for the same point wait for the first.
  private final class Slot: Sendable {
    let opened = Locked<Result<any FileSystemReading, ReelError>?>(nil)
  }

  private let slots: Locked<RecentlyUsed<Key, Slot>>

  init(capacity: Int) {
    slots = Locked(RecentlyUsed(capacity: capacity))
  }

  func reader(for key: Key, open: () throws -> any FileSystemReading) throws -> any FileSystemReading {
    let slot = slots.withLock { slots in
      if let slot = slots.value(for: key) { return slot }
      let slot = Slot()
      slots.insert(slot, for: key)
      return slot
    }
    return try slot.opened.withLock { opened in
      if let opened { return try opened.get() }
      do {
        let reader = try open()
        opened = .success(reader)
        return reader
      } catch let error as ReelError {
        // What a past point holds does not change: a file system that could not be read
        // will not be readable on the next request either. Other failures are retried.
        if [.corrupt, .incompatible, .notFound].contains(error.kind) { opened = .failure(error) }
        throw error
      } catch {
        throw ReelError(.io, "\(error)")
      }
    }
  }
}
