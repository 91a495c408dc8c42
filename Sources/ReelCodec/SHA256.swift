import CGcrypt
import Foundation
import ReelCore
import ReelIO

/// libgcrypt must be initialised once per process before its first use.
enum Gcrypt {
  static let ready: Bool = {
    guard gcry_check_version("1.9.0") != nil else { return false }
    gcry_control_initialization_finished()
    return true
  }()

  static func require() {
    precondition(ready, "libgcrypt 1.9 or newer is required")
  }
}

/// SHA-256 through libgcrypt: chunk identities and archive member digests.
package struct SHA256Digest: Hashable, Sendable, Comparable, CustomStringConvertible {
  package let bytes: [UInt8]

  package init(bytes: [UInt8]) {
    precondition(bytes.count == 32)
    self.bytes = bytes
  }

  package init?(hex: String) {
    guard hex.utf8.count == 64, let bytes = Hex.decode(hex) else { return nil }
    self.bytes = bytes
  }

  package static func hash(_ buffer: UnsafeRawBufferPointer) -> SHA256Digest {
    Gcrypt.require()
    var out = [UInt8](repeating: 0, count: 32)
    out.withUnsafeMutableBytes { digest in
      gcry_md_hash_buffer(Int32(GCRY_MD_SHA256.rawValue), digest.baseAddress, buffer.baseAddress, buffer.count)
    }
    return SHA256Digest(bytes: out)
  }

  package static func hash(_ bytes: some ContiguousBytes) -> SHA256Digest {
    bytes.withUnsafeBytes { hash($0) }
  }

  /// The SHA-256 of the whole file at `path`, read in 4 MiB pieces into one buffer; a
  /// Ctrl-C ends it (`Interrupt.check`).
  package static func hash(fileAt path: String) throws -> SHA256Digest {
    let file = try PosixFile.openForReading(path)
    let hasher = SHA256Hasher()
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4 << 20, alignment: 4096)
    defer { buffer.deallocate() }
    var offset: UInt64 = 0
    while true {
      try Interrupt.check()
      let got = try file.read(into: buffer, at: offset)
      guard got > 0 else { break }
      hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<got]))
      offset += UInt64(got)
    }
    return hasher.finish()
  }

  package var hex: String { Hex.encode(bytes) }

  package var description: String { hex }

  package static func < (lhs: SHA256Digest, rhs: SHA256Digest) -> Bool {
    lhs.bytes.lexicographicallyPrecedes(rhs.bytes)
  }
}

/// SHA-256 over bytes that arrive in pieces (an archive member as it streams).
package final class SHA256Hasher {
  private var handle: gcry_md_hd_t?

  package init() {
    Gcrypt.require()
    let error = gcry_md_open(&handle, Int32(GCRY_MD_SHA256.rawValue), 0)
    precondition(error == 0 && handle != nil, "libgcrypt could not open SHA-256")
  }

  private init(handle: gcry_md_hd_t?) { self.handle = handle }

  deinit { gcry_md_close(handle) }

  /// A second hasher that goes on from where this one is (this one is left as it is).
  package func copy() -> SHA256Hasher {
    var copied: gcry_md_hd_t?
    let error = gcry_md_copy(&copied, handle)
    precondition(error == 0 && copied != nil, "libgcrypt could not copy a SHA-256 state")
    return SHA256Hasher(handle: copied)
  }

  package func update(_ bytes: UnsafeRawBufferPointer) {
    guard bytes.count > 0 else { return }
    gcry_md_write(handle, bytes.baseAddress, bytes.count)
  }

  package func update(_ bytes: [UInt8]) {
    bytes.withUnsafeBytes { update($0) }
  }

  /// The digest of everything so far; the hasher is spent afterwards.
  package func finish() -> SHA256Digest {
    let digest = gcry_md_read(handle, Int32(GCRY_MD_SHA256.rawValue))!
    return SHA256Digest(bytes: Array(UnsafeBufferPointer(start: digest, count: 32)))
  }
}
