import Foundation
import ReelCore
import ReelIO
import ReelStore

/// Checks shared by the verbs that remove or rename a volume.
enum VolumeGuards {
  /// Holds the volume's journal writer lock for the duration of `body`: a volume that
  /// `reel serve` (or an offline bookmark or rollback) is writing is refused, and none can
  /// start meanwhile. The lock file is the journal writer's (`journal/writer.lock`, see
  /// JournalWriter in ReelJournal).
  static func withVolumeIdle<T>(_ layout: StoreLayout, _ name: String, doing what: String, _ body: () throws -> T)
    throws -> T
  {
    let journal = layout.journalDirectory(name)
    try Durable.makeDirectory(journal)
    let lock = try PosixFile.openLock(journal + "/writer.lock")
    guard lock.tryLockExclusive() else {
      let holder = (try? lock.read(at: 0, count: 32)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
      throw ReelError(
        .alreadyExists,
        "volume \(name) is being served or written (pid \(holder.trimmingCharacters(in: .whitespacesAndNewlines))); cannot \(what) it",
        remedy: "stop `reel serve` for \(name) first", errno: EWOULDBLOCK)
    }
    defer { flock(lock.descriptor, LOCK_UN) }
    return try body()
  }

  /// Refuses while other volumes are clones of this one, naming them.
  static func refuseDependants(_ live: LiveStore, _ descriptor: VolumeDescriptor, doing what: String) throws {
    let clones = try live.clones(of: descriptor)
    guard clones.isEmpty else {
      let names = clones.map { "\($0.clone.name) (at seq \($0.origin.originSeq))" }.joined(separator: ", ")
      throw ReelError(
        .usage,
        "cannot \(what) volume \(descriptor.name): \(clones.count == 1 ? "a clone reads" : "clones read") from it: \(names)",
        remedy:
          "promote the clone\(clones.count == 1 ? "" : "s") first (`reel volume promote \(clones[0].clone.name)`), or delete \(clones.count == 1 ? "it" : "them")"
      )
    }
  }
}
