import Foundation
import ReelCore
import ReelIO

#if canImport(Glibc)
  import Glibc
#endif

/// A folder or file of a store that other users could read or write, or that someone other
/// than the store's owner owns (docs/store-layout.md, "Modes").
package struct LoosePermission: Sendable, Equatable {
  package var path: String
  package var isDirectory: Bool
  /// Permission bits found.
  package var mode: mode_t
  /// The bits `--fix-permissions` set, once it repaired the mode and owner.
  package var fixedMode: mode_t?
  package var owner: uid_t
  package var expectedOwner: uid_t

  package var fixed: Bool { fixedMode != nil }

  package var description: String {
    var wrong: [String] = []
    if mode & 0o077 != 0 { wrong.append("mode \(Self.octal(mode)) lets other users in") }
    if owner != expectedOwner { wrong.append("owned by uid \(owner), the store by uid \(expectedOwner)") }
    return "\(path): " + wrong.joined(separator: ", ")
  }

  /// Mode bits as `chmod` takes them, such as 0644.
  package static func octal(_ mode: mode_t) -> String { "0" + String(mode & 0o7777, radix: 8) }
}

/// Finds (and repairs) store folders and files others can read: the store holds volume
/// contents, the catalog names every chunk and bookmark.
package enum StorePermissions {
  /// Walks the store folder without following links. Sockets are skipped: `reel serve`
  /// sets theirs as asked (`--socket-group`) and removes them on exit. `fix`: folders
  /// become 0700, files lose every group and other bit (0644 becomes 0600, a read-only
  /// 0444 base image 0400), and entries owned by someone else are given to the store's
  /// owner (root only).
  package static func check(_ layout: StoreLayout, fix: Bool) throws -> [LoosePermission] {
    var rootInfo = stat()
    guard lstat(layout.root, &rootInfo) == 0 else { throw PosixFile.error(errno, "stat", layout.root) }
    var found: [LoosePermission] = []
    func visit(_ path: String) {
      var info = stat()
      guard lstat(path, &info) == 0 else { return }  // removed meanwhile
      let type = info.st_mode & S_IFMT
      guard type == S_IFDIR || type == S_IFREG else { return }
      let mode = info.st_mode & 0o7777
      if mode & 0o077 != 0 || info.st_uid != rootInfo.st_uid {
        var entry = LoosePermission(
          path: path, isDirectory: type == S_IFDIR, mode: mode, owner: info.st_uid, expectedOwner: rootInfo.st_uid)
        if fix {
          let wanted: mode_t = type == S_IFDIR ? 0o700 : mode & 0o700
          let owned = info.st_uid == rootInfo.st_uid || lchown(path, rootInfo.st_uid, rootInfo.st_gid) == 0
          if owned && chmod(path, wanted) == 0 { entry.fixedMode = wanted }
        }
        found.append(entry)
      }
      guard type == S_IFDIR else { return }
      for name in ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted() {
        visit(path + "/" + name)
      }
    }
    visit(layout.root)
    return found
  }
}
