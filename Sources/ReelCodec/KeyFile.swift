import Foundation
import ReelCore
import ReelIO

#if canImport(Glibc)
  import Glibc
#endif

/// A master key file, format version 1 (docs/key-format.md): the 32-byte master key
/// wrapped (AES key wrap) with a key derived from a passphrase by Argon2id, plus what can
/// be said about the key without the passphrase. A small JSON file a person can read.
package struct KeyFile: Sendable, Equatable {
  package static let formatName = "reel-key"
  package static let currentVersion = 1
  package static let keyDerivationName = "argon2id"
  /// Argon2 version 0x13, the only one libgcrypt implements.
  package static let argon2Version = 19
  package static let wrapName = "aes-256-kw"
  package static let saltSize = 16
  /// Labels are one line so the checksum's input stays one field per line.
  static let maximumLabelLength = 200

  /// Where the file was read from or written to; names the file in every error.
  package var path: String
  /// RFC 3339 time of creation, UTC.
  package var created: String
  package var fingerprint: String
  package var label: String
  package var parameters: Argon2id.Parameters
  package var salt: [UInt8]
  /// RFC 3394 wrapping of the master key: 40 bytes.
  package var wrappedKey: [UInt8]

  package init(
    path: String, created: String, fingerprint: String, label: String, parameters: Argon2id.Parameters,
    salt: [UInt8], wrappedKey: [UInt8]
  ) {
    self.path = path
    self.created = created
    self.fingerprint = fingerprint
    self.label = label
    self.parameters = parameters
    self.salt = salt
    self.wrappedKey = wrappedKey
  }

  // MARK: - Creating

  /// Makes a new random master key, writes it to a new key file at `path` and returns it.
  @discardableResult
  package static func create(
    at path: String, passphrase: String, label: String = "", parameters: Argon2id.Parameters = .standard
  ) throws -> SymmetricKey {
    let key = SymmetricKey.random()
    try create(at: path, key: key, passphrase: passphrase, label: label, parameters: parameters)
    return key
  }

  /// Writes `key` (for instance one typed back in from paper) to a new key file at `path`.
  /// Refuses to replace an existing file: losing a master key loses its archives.
  package static func create(
    at path: String, key: SymmetricKey, passphrase: String, label: String = "",
    parameters: Argon2id.Parameters = .standard
  ) throws {
    try checkNewPath(path)
    let file = try sealing(key, path: path, passphrase: passphrase, label: label, parameters: parameters)
    do {
      try Durable.createNew(at: path, with: file.encoded(), mode: 0o600)
    } catch let error as ReelError where error.errno == EEXIST {
      try refuseExisting(path)
      throw error
    }
  }

  /// The key file for `key` without writing it: fresh salt, the key wrapped with the key
  /// derived from `passphrase`.
  package static func sealing(
    _ key: SymmetricKey, path: String, passphrase: String, label: String, parameters: Argon2id.Parameters,
    created: Timestamp = .now()
  ) throws -> KeyFile {
    guard !passphrase.isEmpty else {
      throw ReelError(.usage, "\(path): an empty passphrase is refused", remedy: "choose a passphrase")
    }
    if let problem = labelProblem(label) {
      throw ReelError(
        .usage, "the label \(problem)", remedy: "use one line of at most \(maximumLabelLength) characters")
    }
    if let problem = parametersProblem(parameters) {
      throw ReelError(.usage, "Argon2id parameters \(describe(parameters)): \(problem)")
    }
    let salt = SecureRandom.bytes(saltSize)
    let kek = keyEncryptionKey(passphrase: passphrase, salt: salt, parameters: parameters)
    return KeyFile(
      path: path, created: created.rfc3339, fingerprint: key.fingerprint, label: label, parameters: parameters,
      salt: salt, wrappedKey: AESKeyWrap.wrap(key, with: kek))
  }

  /// Fails before anyone types a passphrase or waits for Argon2id when `path` is taken.
  static func refuseExisting(_ path: String) throws {
    var info = stat()
    guard lstat(path, &info) != 0 else {
      throw ReelError(
        .alreadyExists, "\(path) already exists; a key file is never overwritten",
        remedy: "choose another path; archives sealed with the existing key still need it or its paper copy")
    }
  }

  /// Fails before anyone types a passphrase when a new key file cannot be written at `path`.
  package static func checkNewPath(_ path: String) throws {
    try refuseExisting(path)
    let folder = (path as NSString).deletingLastPathComponent
    var isFolder: ObjCBool = false
    guard
      folder.isEmpty || (FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) && isFolder.boolValue)
    else {
      throw ReelError(.notFound, "\(path): there is no folder \(folder)", remedy: "create the folder first")
    }
  }

  // MARK: - Reading

  /// Reads and checks a key file without the passphrase (fingerprint, label, parameters).
  package static func read(at path: String) throws -> KeyFile {
    guard let handle = FileHandle(forReadingAtPath: path) else {
      var info = stat()
      if lstat(path, &info) != 0 && errno == ENOENT {
        throw ReelError(
          .notFound, "\(path): no such key file",
          remedy: "give the key file's path (or set REEL_KEY); make one with `reel key create --out FILE`")
      }
      throw ReelError(.io, "\(path): cannot read the key file", remedy: "check that it is a file you may read")
    }
    defer { try? handle.close() }
    // Bounded, so pointing at a device or a huge file fails at once instead of filling memory.
    let data: Data
    do {
      data = try handle.read(upToCount: maximumFileSize + 1) ?? Data()
    } catch {
      throw ReelError(.io, "\(path): cannot read the key file (\(error.localizedDescription))")
    }
    guard data.count <= maximumFileSize else {
      throw ReelError(.corrupt, "\(path): not a Reel key file: larger than \(maximumFileSize / 1024) KiB")
    }
    return try KeyFile(parsing: Array(data), path: path)
  }

  /// Key files are well under 1 KiB.
  static let maximumFileSize = 64 * 1024

  /// Reads the key file at `path` and unwraps its master key.
  package static func open(at path: String, passphrase: String) throws -> SymmetricKey {
    try read(at: path).open(passphrase: passphrase)
  }

  /// The master key, when `passphrase` is the right one.
  package func open(passphrase: String) throws -> SymmetricKey {
    let kek = Self.keyEncryptionKey(passphrase: passphrase, salt: salt, parameters: parameters)
    let key: SymmetricKey
    do {
      key = try AESKeyWrap.unwrap(wrappedKey, with: kek)
    } catch {
      throw ReelError(
        .wrongKey, "\(path): the passphrase does not open this key file",
        remedy: "check the passphrase (REEL_PASSPHRASE, when set, is used without asking); "
          + "a key whose passphrase is lost can be typed back in from its paper copy with "
          + "`reel key create --from-paper`")
    }
    // Only a file edited with its checksum recomputed gets here with a key that is not the
    // one its fingerprint names.
    guard key.fingerprint == fingerprint else {
      throw ReelError(
        .corrupt, "\(path): the key inside does not match the fingerprint \(fingerprint) the file shows",
        remedy: "the file was altered; use a copy you trust, or the paper copy")
    }
    return key
  }

  // MARK: - Encoding

  /// The file's bytes: pretty-printed JSON with sorted keys and a final newline.
  package func encoded() -> [UInt8] {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let data = try! encoder.encode(stored)
    return Array(data) + [10]
  }

  /// Parses and checks the bytes of a key file; every error names `path`.
  package init(parsing bytes: [UInt8], path: String) throws {
    let damaged = { (what: String) in
      ReelError(
        .corrupt, "\(path): damaged or not a Reel key file: \(what)",
        remedy: "use a good copy of the key file, or type the key back in from its paper copy "
          + "with `reel key create --from-paper`")
    }
    let decoder = JSONDecoder()
    guard let header = try? decoder.decode(Header.self, from: Data(bytes)) else {
      throw damaged("it is not a complete JSON object")
    }
    guard header.format == Self.formatName else {
      throw damaged("its format is \(header.format.map { "\"\($0)\"" } ?? "missing"), not \"\(Self.formatName)\"")
    }
    guard let version = header.formatVersion else { throw damaged("formatVersion is missing") }
    guard version == Self.currentVersion else {
      throw ReelError(
        .incompatible,
        "\(path): key file format version \(version) is not one this reel reads (it reads \(Self.currentVersion))",
        remedy: "use the reel release that wrote the file, or a newer one")
    }
    let stored: Stored
    do {
      stored = try decoder.decode(Stored.self, from: Data(bytes))
    } catch {
      throw damaged("a field is missing or has the wrong type (\(Self.describe(error)))")
    }
    guard stored.checksum == Self.checksum(of: stored) else {
      throw damaged("its checksum does not match its contents (the file was changed or damaged)")
    }
    guard let salt = Hex.decode(stored.kdf.salt), (8...64).contains(salt.count) else {
      throw damaged("the salt is not 8 to 64 bytes of hex")
    }
    guard let wrapped = Hex.decode(stored.wrappedKey), wrapped.count == 40 else {
      throw damaged("the wrapped key is not 40 bytes of hex")
    }
    if let problem = Self.labelProblem(stored.label) { throw damaged("the label \(problem)") }
    guard Timestamp(rfc3339: stored.created) != nil, !stored.created.contains(where: \.isNewline) else {
      throw damaged("the creation time is not an RFC 3339 time")
    }
    guard Self.isFingerprint(stored.fingerprint) else { throw damaged("the fingerprint is malformed") }
    self.init(
      path: path, created: stored.created, fingerprint: stored.fingerprint, label: stored.label,
      parameters: Argon2id.Parameters(
        iterations: stored.kdf.iterations, memoryKiB: stored.kdf.memoryKiB, parallelism: stored.kdf.parallelism),
      salt: salt, wrappedKey: wrapped)
    guard stored.kdf.algorithm == Self.keyDerivationName, stored.kdf.version == Self.argon2Version,
      stored.wrap == Self.wrapName
    else {
      throw ReelError(
        .incompatible,
        "\(path): key derivation \(stored.kdf.algorithm) version \(stored.kdf.version) with \(stored.wrap) "
          + "is not what this reel reads (\(Self.keyDerivationName) version \(Self.argon2Version) with \(Self.wrapName))",
        remedy: "use the reel release that wrote the file, or a newer one")
    }
    if let problem = Self.parametersProblem(parameters) {
      throw ReelError(
        .incompatible, "\(path): Argon2id parameters \(Self.describe(parameters)): \(problem)",
        remedy: "the file was changed, or written by a reel with other limits")
    }
  }

  /// Reading a file never allocates more than this for Argon2id (4 GiB), so a damaged or
  /// hostile file cannot exhaust memory.
  static let maximumMemoryKiB = 4 * 1024 * 1024

  /// Why `parameters` are refused, or nil when they are usable.
  package static func parametersProblem(_ parameters: Argon2id.Parameters) -> String? {
    guard (1...255).contains(parameters.parallelism) else { return "lanes must be 1 to 255" }
    guard (1...1000).contains(parameters.iterations) else { return "passes must be 1 to 1000" }
    guard parameters.memoryKiB >= 8 * parameters.parallelism else { return "memory must be at least 8 KiB per lane" }
    guard parameters.memoryKiB <= maximumMemoryKiB else { return "memory must be at most 4 GiB" }
    return nil
  }

  /// Human-readable parameters: `3 passes, 65536 KiB, 1 lane`.
  package static func describe(_ parameters: Argon2id.Parameters) -> String {
    let passes = parameters.iterations == 1 ? "1 pass" : "\(parameters.iterations) passes"
    let lanes = parameters.parallelism == 1 ? "1 lane" : "\(parameters.parallelism) lanes"
    return "\(passes), \(parameters.memoryKiB) KiB, \(lanes)"
  }

  // MARK: - Private

  /// Passphrases are hashed as UTF-8 of their NFC form, so the same characters typed on a
  /// system that composes them differently still open the file.
  private static func keyEncryptionKey(passphrase: String, salt: [UInt8], parameters: Argon2id.Parameters)
    -> SymmetricKey
  {
    Argon2id.deriveKey(
      passphrase: passphrase.precomposedStringWithCanonicalMapping, salt: salt, parameters: parameters)
  }

  private static func labelProblem(_ label: String) -> String? {
    if label.count > maximumLabelLength { return "is longer than \(maximumLabelLength) characters" }
    if label.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
      return "contains a control character (a newline or tab)"
    }
    return nil
  }

  private static func isFingerprint(_ text: String) -> Bool {
    let groups = text.split(separator: "-", omittingEmptySubsequences: false)
    return groups.count == 8
      && groups.allSatisfy { group in
        group.utf8.count == 4 && group.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
      }
  }

  private static func describe(_ error: any Error) -> String {
    guard let error = error as? DecodingError else { return "\(error)" }
    switch error {
    case .keyNotFound(let key, let context):
      return "no \((context.codingPath + [key]).map(\.stringValue).joined(separator: "."))"
    case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
      return context.codingPath.map(\.stringValue).joined(separator: ".")
    @unknown default:
      return "\(error)"
    }
  }

  private struct Header: Decodable {
    var format: String?
    var formatVersion: Int?
  }

  /// The JSON shape of format version 1.
  private struct Stored: Codable {
    var format: String
    var formatVersion: Int
    var created: String
    var fingerprint: String
    var label: String
    var kdf: KeyDerivation
    var wrap: String
    var wrappedKey: String
    var checksum: String

    struct KeyDerivation: Codable {
      var algorithm: String
      var version: Int
      var iterations: Int
      var memoryKiB: Int
      var parallelism: Int
      var salt: String
    }
  }

  private var stored: Stored {
    var stored = Stored(
      format: Self.formatName, formatVersion: Self.currentVersion, created: created, fingerprint: fingerprint,
      label: label,
      kdf: .init(
        algorithm: Self.keyDerivationName, version: Self.argon2Version, iterations: parameters.iterations,
        memoryKiB: parameters.memoryKiB, parallelism: parameters.parallelism, salt: Hex.encode(salt)),
      wrap: Self.wrapName, wrappedKey: Hex.encode(wrappedKey), checksum: "")
    stored.checksum = Self.checksum(of: stored)
    return stored
  }

  /// SHA-256 over every other field as written, one `name=value` line each in a fixed
  /// order (docs/key-format.md). Catches damage and edits without the passphrase, so they
  /// are reported as such and not as a wrong passphrase.
  private static func checksum(of stored: Stored) -> String {
    let fields = [
      "format=\(stored.format)",
      "formatVersion=\(stored.formatVersion)",
      "created=\(stored.created)",
      "fingerprint=\(stored.fingerprint)",
      "label=\(stored.label)",
      "kdf.algorithm=\(stored.kdf.algorithm)",
      "kdf.version=\(stored.kdf.version)",
      "kdf.iterations=\(stored.kdf.iterations)",
      "kdf.memoryKiB=\(stored.kdf.memoryKiB)",
      "kdf.parallelism=\(stored.kdf.parallelism)",
      "kdf.salt=\(stored.kdf.salt)",
      "wrap=\(stored.wrap)",
      "wrappedKey=\(stored.wrappedKey)",
    ]
    return "sha256:" + SHA256Digest.hash(Array(fields.map { $0 + "\n" }.joined().utf8)).hex
  }
}
