import CGcrypt
import Foundation
import ReelCore

/// A 256-bit secret: a master key, an archive's data key, or a key derived from one.
package struct SymmetricKey: Sendable, Equatable {
  package let bytes: [UInt8]

  package init(bytes: [UInt8]) {
    precondition(bytes.count == 32, "a Reel key is 32 bytes")
    self.bytes = bytes
  }

  package static func random() -> SymmetricKey {
    SymmetricKey(bytes: SecureRandom.bytes(32))
  }

  /// A key for one purpose derived from this one, so one secret never serves two roles
  /// (HMAC-SHA256 with the purpose label as message).
  package func derived(_ purpose: String) -> SymmetricKey {
    SymmetricKey(bytes: HMACSHA256.authenticate(Array(purpose.utf8), key: self))
  }

  /// Public name of the key: the first 16 bytes of HMAC-SHA256(key, "reel key fingerprint v1"),
  /// hex in groups of four. Reveals nothing about the key.
  package var fingerprint: String {
    let mac = HMACSHA256.authenticate(Array("reel key fingerprint v1".utf8), key: self)
    let hex = SHA256Digest(bytes: mac).hex.prefix(32)
    var groups: [Substring] = []
    var index = hex.startIndex
    while index < hex.endIndex {
      let next = hex.index(index, offsetBy: 4)
      groups.append(hex[index..<next])
      index = next
    }
    return groups.joined(separator: "-")
  }
}

/// Random bytes from libgcrypt's strong generator (seeded from the kernel).
package enum SecureRandom {
  package static func bytes(_ count: Int) -> [UInt8] {
    Gcrypt.require()
    var out = [UInt8](repeating: 0, count: count)
    out.withUnsafeMutableBytes { gcry_randomize($0.baseAddress, count, GCRY_STRONG_RANDOM) }
    return out
  }
}

/// A failed authentication check: wrong key, or bytes changed since they were sealed.
package struct AuthenticationFailure: Error, Sendable {}

private func gcryptFailed(_ error: gcry_error_t, _ what: String) -> Never {
  let text = String(cString: gcry_strerror(error))
  fatalError("libgcrypt \(what) failed: \(text)")
}

/// AES-256 in Galois/Counter mode. One instance holds one keyed libgcrypt handle; it is
/// not thread-safe, so each worker owns its own (hence unchecked: never share one).
// A libgcrypt handle used by one thread at a time.
package final class AES256GCM: @unchecked Sendable {
  static let nonceSize = 12
  package static let tagSize = 16
  private var handle: gcry_cipher_hd_t?

  package init(key: SymmetricKey) {
    Gcrypt.require()
    var opened: gcry_cipher_hd_t?
    let error = gcry_cipher_open(
      &opened, Int32(GCRY_CIPHER_AES256.rawValue), Int32(GCRY_CIPHER_MODE_GCM.rawValue), 0)
    guard error == 0, let opened else { gcryptFailed(error, "cipher open") }
    handle = opened
    let keyed = key.bytes.withUnsafeBytes { gcry_cipher_setkey(opened, $0.baseAddress, 32) }
    guard keyed == 0 else { gcryptFailed(keyed, "GCM setkey") }
  }

  deinit { gcry_cipher_close(handle) }

  private func start(nonce: [UInt8], aad: [UInt8]) {
    precondition(nonce.count == Self.nonceSize)
    var error = nonce.withUnsafeBytes { gcry_cipher_setiv(handle, $0.baseAddress, nonce.count) }
    guard error == 0 else { gcryptFailed(error, "GCM setiv") }
    if !aad.isEmpty {
      error = aad.withUnsafeBytes { gcry_cipher_authenticate(handle, $0.baseAddress, aad.count) }
      guard error == 0 else { gcryptFailed(error, "GCM authenticate") }
    }
  }

  /// Encrypts `plaintext` and returns ciphertext followed by the 16-byte tag.
  package func seal(_ plaintext: UnsafeRawBufferPointer, nonce: [UInt8], aad: [UInt8]) -> [UInt8] {
    start(nonce: nonce, aad: aad)
    let count = plaintext.count
    return [UInt8](unsafeUninitializedCapacity: count + Self.tagSize) { out, initialized in
      let raw = UnsafeMutableRawBufferPointer(out)
      var error: gcry_error_t = 0
      if count > 0 {
        error = gcry_cipher_encrypt(handle, raw.baseAddress, count, plaintext.baseAddress, count)
        guard error == 0 else { gcryptFailed(error, "GCM encrypt") }
      }
      error = gcry_cipher_gettag(handle, raw.baseAddress! + count, Self.tagSize)
      guard error == 0 else { gcryptFailed(error, "GCM gettag") }
      initialized = count + Self.tagSize
    }
  }

  package func seal(_ plaintext: [UInt8], nonce: [UInt8], aad: [UInt8]) -> [UInt8] {
    plaintext.withUnsafeBytes { seal($0, nonce: nonce, aad: aad) }
  }

  /// Decrypts ciphertext-plus-tag; throws when the tag does not match (wrong key, or the
  /// bytes, nonce or associated data changed).
  package func open(_ sealed: UnsafeRawBufferPointer, nonce: [UInt8], aad: [UInt8]) throws(AuthenticationFailure)
    -> [UInt8]
  {
    guard sealed.count >= Self.tagSize else { throw AuthenticationFailure() }
    start(nonce: nonce, aad: aad)
    let count = sealed.count - Self.tagSize
    var checked = true
    let plaintext = [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
      if count > 0 {
        let error = gcry_cipher_decrypt(handle, out.baseAddress, count, sealed.baseAddress, count)
        guard error == 0 else { gcryptFailed(error, "GCM decrypt") }
      }
      checked = gcry_cipher_checktag(handle, sealed.baseAddress! + count, Self.tagSize) == 0
      initialized = count
    }
    guard checked else { throw AuthenticationFailure() }
    return plaintext
  }

  package func open(_ sealed: [UInt8], nonce: [UInt8], aad: [UInt8]) throws(AuthenticationFailure) -> [UInt8] {
    try sealed.withUnsafeBufferPointer { (buffer) throws(AuthenticationFailure) -> [UInt8] in
      try open(UnsafeRawBufferPointer(buffer), nonce: nonce, aad: aad)
    }
  }

}

/// HMAC-SHA256 (RFC 2104).
package enum HMACSHA256 {
  package static func authenticate(_ message: UnsafeRawBufferPointer, key: SymmetricKey) -> [UInt8] {
    Gcrypt.require()
    var handle: gcry_mac_hd_t?
    var error = gcry_mac_open(&handle, Int32(GCRY_MAC_HMAC_SHA256.rawValue), 0, nil)
    guard error == 0, let handle else { gcryptFailed(error, "HMAC open") }
    defer { gcry_mac_close(handle) }
    error = key.bytes.withUnsafeBytes { gcry_mac_setkey(handle, $0.baseAddress, 32) }
    guard error == 0 else { gcryptFailed(error, "HMAC setkey") }
    if message.count > 0 {
      error = gcry_mac_write(handle, message.baseAddress, message.count)
      guard error == 0 else { gcryptFailed(error, "HMAC write") }
    }
    var out = [UInt8](repeating: 0, count: 32)
    var length = 32
    error = out.withUnsafeMutableBytes { gcry_mac_read(handle, $0.baseAddress, &length) }
    guard error == 0 else { gcryptFailed(error, "HMAC read") }
    return out
  }

  package static func authenticate(_ message: [UInt8], key: SymmetricKey) -> [UInt8] {
    message.withUnsafeBytes { authenticate($0, key: key) }
  }

  /// Compares in time independent of where the first difference is.
  package static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    var difference: UInt8 = 0
    for index in a.indices { difference |= a[index] ^ b[index] }
    return difference == 0
  }
}

/// AES key wrap (RFC 3394) with a 256-bit key-encryption key: 32 bytes in, 40 out, with
/// an integrity check that fails on the wrong key.
package enum AESKeyWrap {
  package static func wrap(_ key: SymmetricKey, with kek: SymmetricKey) -> [UInt8] {
    let handle = open(kek)
    defer { gcry_cipher_close(handle) }
    var out = [UInt8](repeating: 0, count: 40)
    let error = out.withUnsafeMutableBytes { output in
      key.bytes.withUnsafeBytes { gcry_cipher_encrypt(handle, output.baseAddress, 40, $0.baseAddress, 32) }
    }
    guard error == 0 else { gcryptFailed(error, "key wrap") }
    return out
  }

  package static func unwrap(_ wrapped: [UInt8], with kek: SymmetricKey) throws(AuthenticationFailure) -> SymmetricKey {
    guard wrapped.count == 40 else { throw AuthenticationFailure() }
    let handle = open(kek)
    defer { gcry_cipher_close(handle) }
    var out = [UInt8](repeating: 0, count: 40)
    let error = out.withUnsafeMutableBytes { output in
      wrapped.withUnsafeBytes { gcry_cipher_decrypt(handle, output.baseAddress, 40, $0.baseAddress, 40) }
    }
    guard error == 0 else { throw AuthenticationFailure() }
    return SymmetricKey(bytes: Array(out.prefix(32)))
  }

  private static func open(_ kek: SymmetricKey) -> gcry_cipher_hd_t {
    Gcrypt.require()
    var handle: gcry_cipher_hd_t?
    var error = gcry_cipher_open(
      &handle, Int32(GCRY_CIPHER_AES256.rawValue), Int32(GCRY_CIPHER_MODE_AESWRAP.rawValue), 0)
    guard error == 0, let handle else { gcryptFailed(error, "key wrap open") }
    error = kek.bytes.withUnsafeBytes { gcry_cipher_setkey(handle, $0.baseAddress, 32) }
    guard error == 0 else { gcryptFailed(error, "key wrap setkey") }
    return handle
  }
}

/// Argon2id (RFC 9106) through libgcrypt: turns a passphrase into a key-encryption key.
package enum Argon2id {
  package struct Parameters: Sendable, Equatable, Codable {
    /// Passes over memory.
    package var iterations: Int
    /// Memory in KiB.
    package var memoryKiB: Int
    package var parallelism: Int

    package init(iterations: Int, memoryKiB: Int, parallelism: Int) {
      self.iterations = iterations
      self.memoryKiB = memoryKiB
      self.parallelism = parallelism
    }

    /// RFC 9106's second recommended option (64 MiB, 3 passes), in one lane: libgcrypt
    /// computes lanes one after another here, so more lanes would not make it faster.
    package static let standard = Parameters(iterations: 3, memoryKiB: 64 * 1024, parallelism: 1)
  }

  package static func deriveKey(passphrase: String, salt: [UInt8], parameters: Parameters) -> SymmetricKey {
    Gcrypt.require()
    let params: [UInt] = [
      32, UInt(parameters.iterations), UInt(parameters.memoryKiB), UInt(parameters.parallelism),
    ]
    let secret = Array(passphrase.utf8)
    var handle: gcry_kdf_hd_t?
    var error = params.withUnsafeBufferPointer { param in
      secret.withUnsafeBytes { pass in
        salt.withUnsafeBytes { saltBytes in
          gcry_kdf_open(
            &handle, Int32(GCRY_KDF_ARGON2.rawValue), Int32(GCRY_KDF_ARGON2ID.rawValue), param.baseAddress, 4,
            pass.baseAddress, pass.count, saltBytes.baseAddress, saltBytes.count, nil, 0, nil, 0)
        }
      }
    }
    guard error == 0, let handle else { gcryptFailed(error, "Argon2id open") }
    defer { gcry_kdf_close(handle) }
    error = gcry_kdf_compute(handle, nil)
    guard error == 0 else { gcryptFailed(error, "Argon2id compute") }
    var out = [UInt8](repeating: 0, count: 32)
    error = out.withUnsafeMutableBytes { gcry_kdf_final(handle, 32, $0.baseAddress) }
    guard error == 0 else { gcryptFailed(error, "Argon2id final") }
    return SymmetricKey(bytes: out)
  }
}
