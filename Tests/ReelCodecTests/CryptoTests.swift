import ReelCodec
import ReelCore
import Testing

/// Bytes from hex written in a test; a typo in a vector is a bug in the test.
func hexBytes(_ text: String) -> [UInt8] {
  guard let bytes = Hex.decode(text.filter { !$0.isWhitespace }) else { fatalError("bad hex in test: \(text)") }
  return bytes
}

/// Known-answer tests against published vectors, so a wrapper that passes the wrong
/// length, mode or parameter order to libgcrypt cannot pass by round-tripping with itself.
@Suite struct CryptoTests {
  // The GCM specification's test case 16 (McGrew and Viega, "The Galois/Counter Mode of
  // Operation", appendix B; also NIST's gcmEncryptExtIV256): 256-bit key, 96-bit nonce,
  // 20 bytes of associated data, 60 bytes of plaintext.
  static let gcmKey = SymmetricKey(bytes: hexBytes("feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"))
  static let gcmNonce = hexBytes("cafebabefacedbaddecaf888")
  static let gcmAAD = hexBytes("feedfacedeadbeeffeedfacedeadbeefabaddad2")
  static let gcmPlaintext = hexBytes(
    """
    d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72
    1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39
    """)
  static let gcmCiphertext = hexBytes(
    """
    522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa
    8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662
    """)
  static let gcmTag = hexBytes("76fc6ece0f4e1768cddf8853bb2d551b")

  @Test func aesGCMSealsAndOpensTheSpecificationVector() throws {
    let cipher = AES256GCM(key: Self.gcmKey)
    let sealed = cipher.seal(Self.gcmPlaintext, nonce: Self.gcmNonce, aad: Self.gcmAAD)
    #expect(sealed == Self.gcmCiphertext + Self.gcmTag)
    #expect(try cipher.open(sealed, nonce: Self.gcmNonce, aad: Self.gcmAAD) == Self.gcmPlaintext)
    // One handle serves many messages: a second use must not inherit the first one's state.
    #expect(cipher.seal(Self.gcmPlaintext, nonce: Self.gcmNonce, aad: Self.gcmAAD) == sealed)
  }

  @Test func aesGCMWithoutPlaintextStillAuthenticates() throws {
    // NIST SP 800-38D AES-256 vector with an all-zero key and nonce and no input: the tag only.
    let cipher = AES256GCM(key: SymmetricKey(bytes: [UInt8](repeating: 0, count: 32)))
    let nonce = [UInt8](repeating: 0, count: 12)
    let sealed = cipher.seal([], nonce: nonce, aad: [])
    #expect(sealed == hexBytes("530f8afbc74536b9a963b4f1c4cb738b"))
    #expect(try cipher.open(sealed, nonce: nonce, aad: []) == [])
  }

  @Test func aesGCMRefusesAnyChange() {
    let cipher = AES256GCM(key: Self.gcmKey)
    let sealed = Self.gcmCiphertext + Self.gcmTag
    func refuses(_ sealed: [UInt8], nonce: [UInt8] = Self.gcmNonce, aad: [UInt8] = Self.gcmAAD) -> Bool {
      do {
        _ = try cipher.open(sealed, nonce: nonce, aad: aad)
        return false
      } catch {
        return true
      }
    }
    for index in [0, 31, Self.gcmCiphertext.count - 1] {
      var changed = sealed
      changed[index] ^= 0x01
      #expect(refuses(changed), "ciphertext byte \(index)")
    }
    for index in Self.gcmCiphertext.count..<sealed.count {
      var changed = sealed
      changed[index] ^= 0x80
      #expect(refuses(changed), "tag byte \(index - Self.gcmCiphertext.count)")
    }
    var aad = Self.gcmAAD
    aad[0] ^= 0x01
    #expect(refuses(sealed, aad: aad), "associated data")
    #expect(refuses(sealed, aad: []), "associated data left out")
    var nonce = Self.gcmNonce
    nonce[11] ^= 0x01
    #expect(refuses(sealed, nonce: nonce), "nonce")
    #expect(refuses(Array(sealed.dropLast())), "truncated tag")
    #expect(refuses(Array(sealed.prefix(AES256GCM.tagSize - 1))), "shorter than a tag")
    let otherKey = AES256GCM(key: SymmetricKey(bytes: Self.gcmKey.bytes.map { $0 ^ 0x55 }))
    #expect(throws: AuthenticationFailure.self) { try otherKey.open(sealed, nonce: Self.gcmNonce, aad: Self.gcmAAD) }
  }

  // RFC 4231 test cases 1-4. Their keys are 20, 4, 20 and 25 bytes; HMAC pads a key shorter
  // than the hash's 64-byte block with zeros (RFC 2104 step 1), so the same key padded with
  // zeros to 32 bytes gives the same MAC. That lets the published vectors test Reel's
  // 32-byte-key API.
  @Test(arguments: [
    (
      "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b", Array("Hi There".utf8),
      "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    ),
    (
      "4a656665", Array("what do ya want for nothing?".utf8),
      "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    ),
    (
      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", [UInt8](repeating: 0xdd, count: 50),
      "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"
    ),
    (
      "0102030405060708090a0b0c0d0e0f10111213141516171819", [UInt8](repeating: 0xcd, count: 50),
      "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"
    ),
  ])
  func hmacSHA256MatchesRFC4231(key: String, message: [UInt8], mac: String) {
    let padded = hexBytes(key) + [UInt8](repeating: 0, count: 32 - hexBytes(key).count)
    #expect(Hex.encode(HMACSHA256.authenticate(message, key: SymmetricKey(bytes: padded))) == mac)
  }

  @Test func hmacComparisonNeedsEveryByte() {
    let mac = HMACSHA256.authenticate(Array("message".utf8), key: Self.gcmKey)
    #expect(HMACSHA256.equal(mac, mac))
    for index in [0, 15, 31] {
      var changed = mac
      changed[index] ^= 0x01
      #expect(!HMACSHA256.equal(mac, changed), "byte \(index)")
    }
    #expect(!HMACSHA256.equal(mac, Array(mac.prefix(16))))
  }

  // RFC 3394 section 4.6: a 256-bit key wrapped with a 256-bit key-encryption key.
  static let kek = SymmetricKey(bytes: hexBytes("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"))
  static let keyData = SymmetricKey(
    bytes: hexBytes("00112233445566778899aabbccddeeff000102030405060708090a0b0c0d0e0f"))
  static let wrapped = hexBytes("28c9f404c4b810f4cbccb35cfb87f8263f5786e2d80ed326cbc7f0e71a99f43bfb988b9b7a02dd21")

  @Test func keyWrapMatchesRFC3394() throws {
    #expect(AESKeyWrap.wrap(Self.keyData, with: Self.kek) == Self.wrapped)
    #expect(try AESKeyWrap.unwrap(Self.wrapped, with: Self.kek) == Self.keyData)
  }

  @Test func keyUnwrapRefusesAWrongKeyOrChangedBytes() {
    let wrongKEK = SymmetricKey(bytes: Self.kek.bytes.map { $0 ^ 0x01 })
    #expect(throws: AuthenticationFailure.self) { try AESKeyWrap.unwrap(Self.wrapped, with: wrongKEK) }
    for index in Self.wrapped.indices {
      var changed = Self.wrapped
      changed[index] ^= 0x10
      #expect(throws: AuthenticationFailure.self, "byte \(index)") { try AESKeyWrap.unwrap(changed, with: Self.kek) }
    }
    #expect(throws: AuthenticationFailure.self) {
      try AESKeyWrap.unwrap(Array(Self.wrapped.dropLast()), with: Self.kek)
    }
    #expect(throws: AuthenticationFailure.self) { try AESKeyWrap.unwrap([], with: Self.kek) }
  }

  // The Argon2 reference implementation's own test vectors (P-H-C/phc-winner-argon2,
  // src/test.c, Argon2id version 0x13): password "password", salt "somesalt", 32-byte tag.
  // RFC 9106's vector needs a secret and associated data, which Reel never uses.
  @Test(arguments: [
    (2, 256, 1, "9dfeb910e80bad0311fee20f9c0e2b12c17987b4cac90c2ef54d5b3021c68bfe"),
    (2, 256, 2, "6d093c501fd5999645e0ea3bf620d7b8be7fd2db59c20d9fff9539da2bf57037"),
    (2, 65536, 1, "09316115d5cf24ed5a15a31a3ba326e5cf32edc24702987c02b6566f61913cf7"),
  ])
  func argon2idMatchesTheReferenceImplementation(iterations: Int, memoryKiB: Int, lanes: Int, tag: String) {
    let parameters = Argon2id.Parameters(iterations: iterations, memoryKiB: memoryKiB, parallelism: lanes)
    let key = Argon2id.deriveKey(passphrase: "password", salt: Array("somesalt".utf8), parameters: parameters)
    #expect(Hex.encode(key.bytes) == tag)
  }

  @Test func argon2idDependsOnEveryInput() {
    let small = Argon2id.Parameters(iterations: 2, memoryKiB: 64, parallelism: 1)
    let salt = [UInt8](repeating: 7, count: 16)
    let base = Argon2id.deriveKey(passphrase: "correct horse", salt: salt, parameters: small)
    #expect(Argon2id.deriveKey(passphrase: "correct horse", salt: salt, parameters: small) == base)
    var otherSalt = salt
    otherSalt[15] = 8
    let variants = [
      Argon2id.deriveKey(passphrase: "correct horsf", salt: salt, parameters: small),
      Argon2id.deriveKey(passphrase: "correct horse", salt: otherSalt, parameters: small),
      Argon2id.deriveKey(
        passphrase: "correct horse", salt: salt, parameters: .init(iterations: 3, memoryKiB: 64, parallelism: 1)),
      Argon2id.deriveKey(
        passphrase: "correct horse", salt: salt, parameters: .init(iterations: 2, memoryKiB: 72, parallelism: 1)),
      Argon2id.deriveKey(
        passphrase: "correct horse", salt: salt, parameters: .init(iterations: 2, memoryKiB: 64, parallelism: 2)),
    ]
    #expect(Set(variants.map(\.bytes) + [base.bytes]).count == variants.count + 1)
  }

  @Test func fingerprintIsAStablePublicName() {
    // Pinned: archives name their key by this, so it must never change between versions.
    // Computed as HMAC-SHA256(key, "reel key fingerprint v1")[0..<16] with openssl:
    //   printf 'reel key fingerprint v1' | openssl dgst -sha256 -mac HMAC -macopt hexkey:<key>
    #expect(Self.kek.fingerprint == Self.fingerprintOfKEK)
    let other = SymmetricKey.random()
    #expect(other.fingerprint != Self.kek.fingerprint)
    #expect(other.fingerprint.split(separator: "-").map(\.count) == [4, 4, 4, 4, 4, 4, 4, 4])
  }

  static let fingerprintOfKEK = "1c97-de5a-a0ed-dca2-963f-2987-aa99-dcf0"

  @Test func derivedKeysDifferByPurposeAndFromTheirSource() {
    let master = SymmetricKey.random()
    let a = master.derived("reel test purpose a")
    #expect(a == master.derived("reel test purpose a"))
    #expect(a != master.derived("reel test purpose b"))
    #expect(a != master)
  }

  @Test func randomBytesAreFreshEachTime() {
    let first = SecureRandom.bytes(32)
    let second = SecureRandom.bytes(32)
    #expect(first.count == 32 && second.count == 32)
    #expect(first != second)
    #expect(SecureRandom.bytes(0).isEmpty)
  }
}
