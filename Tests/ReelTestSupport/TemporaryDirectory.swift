import Foundation
import ReelCore

#if canImport(Glibc)
  import Glibc
#endif

/// A fresh private (0700) folder under /tmp, removed when the object is dropped, or when
/// the test process exits if it never is (a static fixture is never dropped: each run
/// left its folders behind). Under /tmp rather than $TMPDIR so that socket paths made
/// inside it stay short.
package final class TemporaryDirectory: Sendable {
  package let path: String

  /// Folders whose objects were not dropped yet.
  private static let undropped = Locked<Set<String>>([])
  private static let removedAtExit: Void = {
    atexit {
      for path in TemporaryDirectory.undropped.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: path) }
    }
  }()

  package init(_ label: String = "reel-test") {
    path = Self.make(in: "/tmp", label: label)!
    Self.keep(path)
  }

  /// A folder inside `parent` (such as /dev/shm, for a file system with other rules), or
  /// nil when `parent` refuses one.
  package init?(in parent: String, label: String) {
    guard let path = Self.make(in: parent, label: label) else { return nil }
    self.path = path
    Self.keep(path)
  }

  private static func keep(_ path: String) {
    _ = removedAtExit
    undropped.withLock { _ = $0.insert(path) }
  }

  private static func make(in parent: String, label: String) -> String? {
    var template = Array("\(parent)/\(label)-XXXXXX".utf8CString)
    guard template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) != nil else {
      precondition(parent != "/tmp", "mkdtemp in /tmp failed: \(String(cString: strerror(errno)))")
      return nil
    }
    return String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  deinit {
    try? FileManager.default.removeItem(atPath: path)
    Self.undropped.withLock { _ = $0.remove(path) }
  }
}
