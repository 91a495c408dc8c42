import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// A fresh private (0700) folder under /tmp, removed when the object is dropped. Under
/// /tmp rather than $TMPDIR so that socket paths made inside it stay short.
package final class TemporaryDirectory: Sendable {
  package let path: String

  package init(_ label: String = "reel-test") {
    var template = Array("/tmp/\(label)-XXXXXX".utf8CString)
    let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(created != nil, "mkdtemp failed: \(String(cString: strerror(errno)))")
    path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  /// Takes over a folder made elsewhere (removed with this object).
  package init(adopting path: String) {
    self.path = path
  }

  deinit { try? FileManager.default.removeItem(atPath: path) }
}
