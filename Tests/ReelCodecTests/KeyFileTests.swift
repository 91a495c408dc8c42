import Foundation
import ReelCodec
import ReelCore
import Testing

/// A folder of its own under the temporary directory, removed when the test ends.
final class KeyFolder {
  let path: String

  init() throws {
    path = NSTemporaryDirectory() + "/reel-keys-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  }

  deinit { try? FileManager.default.removeItem(atPath: path) }

  func contents(_ name: String) -> [UInt8]? {
    FileManager.default.contents(atPath: path + "/" + name).map { Array($0) }
  }

  func write(_ name: String, _ bytes: [UInt8]) {
    precondition(FileManager.default.createFile(atPath: path + "/" + name, contents: Data(bytes)))
  }
}

/// Cheap Argon2id so tests stay fast; the format does not depend on the cost.
let testParameters = Argon2id.Parameters(iterations: 1, memoryKiB: 64, parallelism: 1)

/// The ReelError `body` throws; a different error or none fails the test.
func reelError(_ body: () throws -> Void) -> ReelError? {
  do {
    try body()
  } catch let error as ReelError {
    return error
  } catch {
    Issue.record("expected a ReelError, got \(error)")
    return nil
  }
  Issue.record("expected an error")
  return nil
}

@Suite struct KeyFileTests {
  @Test func createdFileOpensWithItsPassphraseOnly() throws {
    let folder = try KeyFolder()
    let path = folder.path + "/master.key"
    let key = try KeyFile.create(at: path, passphrase: "correct horse", label: "office", parameters: testParameters)

    var info = stat()
    #expect(stat(path, &info) == 0)
    #expect(info.st_mode & 0o077 == 0, "only the owner may read a key file")
    let file = try KeyFile.read(at: path)
    #expect(file.fingerprint == key.fingerprint)
    #expect(file.label == "office")
    #expect(file.parameters == testParameters)
    #expect(file.salt.count == KeyFile.saltSize)
    #expect(Timestamp(rfc3339: file.created) != nil)
    #expect(try KeyFile.open(at: path, passphrase: "correct horse") == key)

    let text = String(decoding: folder.contents("master.key")!, as: UTF8.self)
    #expect(!text.contains(Hex.encode(key.bytes)), "the key is never in the file in the clear")
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["master.key"], "no temporary left")

    let wrong = reelError { _ = try KeyFile.open(at: path, passphrase: "correct horsE") }
    #expect(wrong?.kind == .wrongKey)
    #expect(wrong?.message == "\(path): the passphrase does not open this key file")
  }

  @Test func twoFilesOfOneKeyDifferInSaltButNotInFingerprint() throws {
    let folder = try KeyFolder()
    let key = SymmetricKey.random()
    try KeyFile.create(at: folder.path + "/a", key: key, passphrase: "same", parameters: testParameters)
    try KeyFile.create(at: folder.path + "/b", key: key, passphrase: "same", parameters: testParameters)
    let a = try KeyFile.read(at: folder.path + "/a")
    let b = try KeyFile.read(at: folder.path + "/b")
    #expect(a.fingerprint == b.fingerprint)
    #expect(a.salt != b.salt && a.wrappedKey != b.wrappedKey)
    #expect(try KeyFile.open(at: folder.path + "/b", passphrase: "same") == key)
  }

  @Test func neverReplacesAFile() throws {
    let folder = try KeyFolder()
    folder.write("taken", Array("precious".utf8))
    let error = reelError {
      try KeyFile.create(at: folder.path + "/taken", passphrase: "p", parameters: testParameters)
    }
    #expect(error?.kind == .alreadyExists)
    #expect(folder.contents("taken") == Array("precious".utf8))
    // A dangling symbolic link is a name in use too: following it would write elsewhere.
    try FileManager.default.createSymbolicLink(atPath: folder.path + "/link", withDestinationPath: "nowhere")
    let linked = reelError {
      try KeyFile.create(at: folder.path + "/link", passphrase: "p", parameters: testParameters)
    }
    #expect(linked?.kind == .alreadyExists)
    #expect(!FileManager.default.fileExists(atPath: folder.path + "/nowhere"))
  }

  @Test func refusesEmptyPassphrasesAndMultiLineLabels() throws {
    let folder = try KeyFolder()
    let empty = reelError { try KeyFile.create(at: folder.path + "/k", passphrase: "", parameters: testParameters) }
    #expect(empty?.kind == .usage)
    let label = reelError {
      try KeyFile.create(at: folder.path + "/k", passphrase: "p", label: "two\nlines", parameters: testParameters)
    }
    #expect(label?.kind == .usage)
    let tooCheap = reelError {
      try KeyFile.create(
        at: folder.path + "/k", passphrase: "p", parameters: .init(iterations: 1, memoryKiB: 4, parallelism: 1))
    }
    #expect(tooCheap?.kind == .usage)
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).isEmpty)
  }

  @Test func aPassphraseOpensHoweverItsAccentsAreComposed() throws {
    let folder = try KeyFolder()
    let composed = "caf\u{E9} cr\u{E8}me"
    let decomposed = "cafe\u{301} cre\u{300}me"
    #expect(Array(composed.utf8) != Array(decomposed.utf8))
    let key = try KeyFile.create(at: folder.path + "/k", passphrase: composed, parameters: testParameters)
    #expect(try KeyFile.open(at: folder.path + "/k", passphrase: decomposed) == key)
  }

  /// Damage a person or a disk could do is reported as damage (or as a format this reel
  /// does not read), naming the file, and never as a wrong passphrase.
  @Test func damageIsNamedAsDamage() throws {
    let folder = try KeyFolder()
    let path = folder.path + "/k"
    try KeyFile.create(at: path, passphrase: "p", label: "office", parameters: testParameters)
    let good = folder.contents("k")!
    let text = String(decoding: good, as: UTF8.self)
    func edited(_ change: (inout [String: Any]) -> Void) throws -> [UInt8] {
      var object = try JSONSerialization.jsonObject(with: Data(good)) as! [String: Any]
      change(&object)
      return Array(try JSONSerialization.data(withJSONObject: object))
    }
    func editedKDF(_ field: String, _ value: Any?) throws -> [UInt8] {
      try edited { object in
        var kdf = object["kdf"] as! [String: Any]
        kdf[field] = value
        object["kdf"] = kdf
      }
    }
    let wrapped = try KeyFile.read(at: path).wrappedKey
    let flippedDigit = Hex.encode(wrapped.prefix(1).map { $0 ^ 0x01 }) + Hex.encode(wrapped.dropFirst())
    let cases: [(String, [UInt8], ReelError.Kind, String)] = [
      ("empty", [], .corrupt, "not a complete JSON object"),
      ("truncated", Array(good.prefix(good.count / 2)), .corrupt, "not a complete JSON object"),
      ("last brace lost", Array(good.dropLast(2)), .corrupt, "not a complete JSON object"),
      ("another JSON file", Array(#"{"name": "vol1"}"#.utf8), .corrupt, "format is missing"),
      (
        "bit-flipped wrapped key", Array(text.replacingOccurrences(of: Hex.encode(wrapped), with: flippedDigit).utf8),
        .corrupt, "checksum does not match"
      ),
      ("label edited", Array(text.replacingOccurrences(of: "office", with: "ofice").utf8), .corrupt, "checksum"),
      ("fewer passes", try editedKDF("iterations", 2), .corrupt, "checksum"),
      ("salt gone", try editedKDF("salt", nil), .corrupt, "kdf.salt"),
      ("newer version", try edited { $0["formatVersion"] = 2 }, .incompatible, "format version 2"),
    ]
    for (name, bytes, kind, phrase) in cases {
      folder.write("k", bytes)
      let error = reelError { _ = try KeyFile.open(at: path, passphrase: "p") }
      #expect(error?.kind == kind, "\(name)")
      #expect(error?.message.hasPrefix(path + ": ") == true, "\(name): \(error?.message ?? "")")
      #expect(error?.message.contains(phrase) == true, "\(name): \(error?.message ?? "")")
    }
  }

  /// Edits made with the checksum recomputed: the wrap's integrity check and the
  /// fingerprint still catch them once the passphrase is given.
  @Test func editsWithARecomputedChecksumAreStillCaught() throws {
    let folder = try KeyFolder()
    let path = folder.path + "/k"
    try KeyFile.create(at: path, passphrase: "p", parameters: testParameters)
    let original = try KeyFile.read(at: path)

    var otherWrap = original
    otherWrap.wrappedKey[20] ^= 0x01
    folder.write("k", otherWrap.encoded())
    #expect(reelError { _ = try KeyFile.open(at: path, passphrase: "p") }?.kind == .wrongKey)

    var otherName = original
    otherName.fingerprint = SymmetricKey.random().fingerprint
    folder.write("k", otherName.encoded())
    let renamed = reelError { _ = try KeyFile.open(at: path, passphrase: "p") }
    #expect(renamed?.kind == .corrupt)
    #expect(renamed?.message.contains("does not match the fingerprint") == true)

    // Absurd costs are refused before any memory is allocated for them.
    var greedy = original
    greedy.parameters.memoryKiB = 1 << 40
    folder.write("k", greedy.encoded())
    #expect(reelError { _ = try KeyFile.read(at: path) }?.kind == .incompatible)
  }

  @Test func missingFilesAndFoldersAndEndlessFilesAreNamed() {
    let error = reelError { _ = try KeyFile.read(at: "/nonexistent/reel.key") }
    #expect(error?.kind == .notFound)
    #expect(error?.message.contains("/nonexistent/reel.key") == true)
    let noFolder = reelError { try KeyFile.create(at: "/nonexistent/reel.key", passphrase: "p") }
    #expect(noFolder?.message == "/nonexistent/reel.key: there is no folder /nonexistent")
    let endless = reelError { _ = try KeyFile.read(at: "/dev/zero") }
    #expect(endless?.kind == .corrupt)
    #expect(endless?.message == "/dev/zero: not a Reel key file: larger than 64 KiB")
  }

  /// The example in docs/key-format.md, byte for byte: a reader written from the document
  /// must get the key 00 01 … 1f from it with the passphrase "correct horse battery staple".
  @Test func theDocumentedExampleOpens() throws {
    let key = SymmetricKey(bytes: (0..<32).map { UInt8($0) })
    let salt = (0..<16).map { UInt8(0xA0 + $0) }
    let kek = Argon2id.deriveKey(passphrase: "correct horse battery staple", salt: salt, parameters: .standard)
    #expect(Hex.encode(kek.bytes) == "d8df25fc62d605b1b88bc19f75ec6eb2955b08a8860643e969e18637e00388d9")
    let file = KeyFile(
      path: "example.key", created: "2026-01-02T03:04:05.000000000Z", fingerprint: key.fingerprint,
      label: "example", parameters: .standard, salt: salt, wrappedKey: AESKeyWrap.wrap(key, with: kek))
    #expect(String(decoding: file.encoded(), as: UTF8.self) == Self.documentedExample)
    let parsed = try KeyFile(parsing: Array(Self.documentedExample.utf8), path: "example.key")
    #expect(parsed == file)
    #expect(try parsed.open(passphrase: "correct horse battery staple") == key)
  }

  static let documentedExample = """
    {
      "checksum" : "sha256:3d06591f592040372991e3eed4e9b295bbc94f402e425219a9f9c899794f6c98",
      "created" : "2026-01-02T03:04:05.000000000Z",
      "fingerprint" : "1c97-de5a-a0ed-dca2-963f-2987-aa99-dcf0",
      "format" : "reel-key",
      "formatVersion" : 1,
      "kdf" : {
        "algorithm" : "argon2id",
        "iterations" : 3,
        "memoryKiB" : 65536,
        "parallelism" : 1,
        "salt" : "a0a1a2a3a4a5a6a7a8a9aaabacadaeaf",
        "version" : 19
      },
      "label" : "example",
      "wrap" : "aes-256-kw",
      "wrappedKey" : "5182dcdf3936a53dcffc0286fd71b9810b92cb2c1430d175923741f6a37608e65a7325f35ef20f0c"
    }

    """
}
