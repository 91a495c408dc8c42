import CGcrypt
import ReelCore

/// MD5 through libgcrypt, only where a protocol names it: S3 part ETags and Content-MD5.
/// Never an identity of Reel's own (SHA-256 is).
package final class MD5Hasher {
  private var handle: gcry_md_hd_t?

  package init() {
    Gcrypt.require()
    let error = gcry_md_open(&handle, Int32(GCRY_MD_MD5.rawValue), 0)
    precondition(error == 0 && handle != nil, "libgcrypt could not open MD5")
  }

  deinit { gcry_md_close(handle) }

  package func update(_ bytes: UnsafeRawBufferPointer) {
    guard bytes.count > 0 else { return }
    gcry_md_write(handle, bytes.baseAddress, bytes.count)
  }

  /// The 16-byte digest of everything so far; the hasher is spent afterwards.
  package func finish() -> [UInt8] {
    let digest = gcry_md_read(handle, Int32(GCRY_MD_MD5.rawValue))!
    return Array(UnsafeBufferPointer(start: digest, count: 16))
  }

  package static func digest(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
    let hasher = MD5Hasher()
    hasher.update(bytes)
    return hasher.finish()
  }
}
