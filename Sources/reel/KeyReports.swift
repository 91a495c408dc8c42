import ReelCodec

/// `reel key show --json`: what a key file says without its passphrase.
struct KeyFileJSON: Encodable {
  struct KeyDerivation: Encodable {
    var algorithm = KeyFile.keyDerivationName
    var version = KeyFile.argon2Version
    var iterations: Int
    var memoryKiB: Int
    var parallelism: Int

    private enum CodingKeys: String, CodingKey {
      case algorithm, version, iterations, parallelism
      case memoryKiB = "memory_kib"
    }
  }

  var path: String
  var format = KeyFile.formatName
  var formatVersion = KeyFile.currentVersion
  var fingerprint: String
  var label: String
  var created: String
  var kdf: KeyDerivation
  var wrap = KeyFile.wrapName

  init(_ keyFile: KeyFile) {
    path = keyFile.path
    fingerprint = keyFile.fingerprint
    label = keyFile.label
    created = keyFile.created
    kdf = KeyDerivation(
      iterations: keyFile.parameters.iterations, memoryKiB: keyFile.parameters.memoryKiB,
      parallelism: keyFile.parameters.parallelism)
  }

  private enum CodingKeys: String, CodingKey {
    case path, format, fingerprint, label, created, kdf, wrap
    case formatVersion = "format_version"
  }
}
