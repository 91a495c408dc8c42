import Foundation
import ReelCore

#if canImport(Glibc)
  import Glibc
#endif

/// A private folder (0700, made by mkdtemp) for decrypted data that must never reach a
/// folder other users can read or that outlives the command: the archive index that
/// verify, seal and rehydrate decrypt. It lives in the store's `tmp/` (named after the
/// process, so the next process that opens the store removes what a killed one left),
/// or, when this process opened no store or several, in the system temp directory (a
/// process working on several stores, such as the test suite, may delete one of them
/// while a scratch folder inside it is in use). Removed when dropped.
package final class PrivateScratch: Sendable {
  package let path: String

  /// The temp folders of the stores this process opened.
  private static let storeFolders = Locked<Set<String>>([])

  /// `store`: that store's temp folder; nil: the one of the only store this process
  /// opened, else the system temp directory.
  package init(store: StoreLayout? = nil) throws {
    let parent: String
    let prefix: String
    if let store {
      try Durable.makeDirectory(store.temporaryDirectory)
      (parent, prefix) = (store.temporaryDirectory, "\(getpid()).")
    } else if let folder = Self.storeFolders.withLock({ $0.count == 1 ? $0.first : nil }), access(folder, F_OK) == 0 {
      // (A store this process opened and then deleted, as tests do, no longer counts.)
      (parent, prefix) = (folder, "\(getpid()).")
    } else {
      let system = NSTemporaryDirectory()
      (parent, prefix) = (system.hasSuffix("/") ? String(system.dropLast()) : system, "reel-")
    }
    var template = Array((parent + "/" + prefix + "XXXXXX").utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) != nil }
    guard made else { throw PosixFile.error(errno, "create a private folder (mkdtemp) in", parent) }
    path = template.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
  }

  deinit { try? FileManager.default.removeItem(atPath: path) }

  /// Makes `store`'s temp folder the home of this process's scratch folders: creates it
  /// owner-only and removes the folders of processes that no longer run (killed in the
  /// middle of a verify or seal). Returns the paths removed.
  @discardableResult
  package static func use(_ store: StoreLayout) throws -> [String] {
    let folder = store.temporaryDirectory
    try Durable.makeDirectory(folder)
    storeFolders.withLock { _ = $0.insert(folder) }
    var removed: [String] = []
    for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? [] {
      if let owner = Int32(name.prefix { $0 != "." }), owner > 0, kill(owner, 0) == 0 || errno == EPERM {
        continue  // a running process's folder
      }
      if (try? FileManager.default.removeItem(atPath: folder + "/" + name)) != nil {
        removed.append(folder + "/" + name)
      }
    }
    return removed
  }
}
