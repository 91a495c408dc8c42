import ReelCore
import ReelFiles

/// Lists the next subfolders of a folder ahead of a walk through the mount (`find`,
/// `du`, `ls -R`, a file manager's tree), so the blocks holding their inodes and entries
/// are in the block cache when the walk asks. A walk asks one thing at a time: without
/// this, each folder cost two store blocks read, looked up and decoded one after another
/// (a folder's inode and its entries lie in different ones), with the disk and the second
/// core idle between them.
///
/// Only `window` subfolders are read past the one the walk has reached, so what is read
/// ahead is still in the block cache when the walk gets there.
final class FolderReadAhead: Sendable {
  static let window = 16
  /// Folders whose subfolders are followed: a walk comes back up to earlier ones.
  static let followedListings = 8

  private struct Job: Sendable {
    var reader: any FileSystemReading
    var directory: UInt64
  }

  private struct ListingKey: Hashable, Sendable {
    var point: PointID
    var directory: UInt64
  }

  /// A listed folder's subfolders in listing order (the order a walk visits them).
  private struct Listing: Sendable {
    var subfolders: [UInt64]
    var position: [UInt64: Int]
    /// Subfolders before this index are queued already.
    var queuedUpTo = 0
  }

  private let jobs = BoundedQueue<Job>(capacity: 4 * FolderReadAhead.window * FolderReadAhead.followedListings)
  private let listings = Locked(RecentlyUsed<ListingKey, Listing>(capacity: FolderReadAhead.followedListings))
  private let threads: [WorkerThread]

  /// `threads` folders are read at once: each waits on the store, then decodes.
  init(threads: Int = 3) {
    let jobs = self.jobs
    self.threads = WorkerThread.group(threads, name: { "reel-ahead-\($0)" }) { _ in
      while let job = try? jobs.take() {
        job.reader.readAhead(directory: job.directory)
      }
    }
  }

  deinit {
    jobs.cancel()
    threads.joinAll()
  }

  /// `entries` were just listed from `directory`: a walk is likely to visit its
  /// subfolders next, in this order.
  func listed(
    _ entries: [DirectoryEntry], of directory: UInt64, point: PointID, reader: any FileSystemReading
  ) {
    let subfolders = entries.filter { $0.kind == .directory }.map(\.inode)
    guard !subfolders.isEmpty else { return }
    let key = ListingKey(point: point, directory: directory)
    let queued = listings.withLock { listings -> [UInt64] in
      guard listings.value(for: key) == nil else { return [] }  // listed again: already followed
      var listing = Listing(
        subfolders: subfolders,
        position: Dictionary(subfolders.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first }))
      let queued = Self.advance(&listing, pastIndex: -1)
      listings.insert(listing, for: key)
      return queued
    }
    for folder in queued { jobs.put(Job(reader: reader, directory: folder)) }
  }

  /// The walk reached `directory`, a subfolder of `parent`: keep `window` of the
  /// subfolders after it queued.
  func reached(_ directory: UInt64, in parent: UInt64, point: PointID, reader: any FileSystemReading) {
    let key = ListingKey(point: point, directory: parent)
    let queued = listings.withLock { listings -> [UInt64] in
      guard var listing = listings.value(for: key), let index = listing.position[directory] else { return [] }
      let queued = Self.advance(&listing, pastIndex: index)
      listings.insert(listing, for: key)
      return queued
    }
    for folder in queued { jobs.put(Job(reader: reader, directory: folder)) }
  }

  /// The subfolders to queue so that `window` past `index` are.
  private static func advance(_ listing: inout Listing, pastIndex index: Int) -> [UInt64] {
    let end = min(listing.subfolders.count, index + 1 + window)
    guard end > listing.queuedUpTo else { return [] }
    let queued = Array(listing.subfolders[max(listing.queuedUpTo, index + 1)..<end])
    listing.queuedUpTo = end
    return queued
  }
}
