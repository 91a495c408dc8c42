import Foundation

/// A fresh folder under /tmp, removed when the test's scope ends.
final class TemporaryDirectory {
  let path: String

  init(_ label: String = "reel-test") {
    var template = Array((NSTemporaryDirectory() + "/\(label)-XXXXXX").utf8CString)
    let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(created != nil, "mkdtemp failed")
    path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  /// Takes over a folder made elsewhere (removed with this object).
  init(adopting path: String) {
    self.path = path
  }

  deinit { try? FileManager.default.removeItem(atPath: path) }
}
