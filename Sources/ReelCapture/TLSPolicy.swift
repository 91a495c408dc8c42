import Foundation
import ReelCore

/// How `reel serve` treats NBD_OPT_STARTTLS (proto.md, "TLS support").
package enum TLSMode: String, Sendable, CaseIterable {
  /// No TLS: NBD_OPT_STARTTLS is unsupported.
  case off
  /// TLS offered; plain clients may still open exports that have no `--allow` list.
  case on
  /// Every option but NBD_OPT_STARTTLS and NBD_OPT_ABORT waits for TLS (FORCEDTLS).
  case require
}

/// The TLS part of `reel serve`'s configuration, as given on the command line.
package struct TLSConfiguration: Sendable {
  /// nil: `require` when keys are given, else `off`.
  package var mode: TLSMode?
  /// psktool's format: `identity:hexkey` lines (qemu's keys.psk, nbdkit's --tls-psk).
  package var pskFile: String?
  /// ca-cert.pem, server-cert.pem, server-key.pem, as qemu and nbdkit lay them out.
  package var certificateDirectory: String?
  /// Clients must present a certificate signed by ca-cert.pem.
  package var verifyPeer = false
  /// Export name → the PSK identities that may open it. Either every export has a list
  /// or none has.
  package var allowedIdentities: [String: Set<String>] = [:]
  /// Serve TCP without requiring TLS (`--insecure-no-tls`).
  package var plainTCP = false

  package init() {}
}

/// What a connection must do before it reaches an export: the TLS mode, the keys, and
/// which PSK identities may open which export.
struct TLSPolicy: Sendable {
  let mode: TLSMode
  /// nil exactly when `mode` is off.
  let server: TLSServer?
  let allowedIdentities: [String: Set<String>]

  /// No TLS at all (Unix-socket-only servers and tests of the plain protocol).
  static let plain = TLSPolicy(mode: .off, server: nil, allowedIdentities: [:])

  private init(mode: TLSMode, server: TLSServer?, allowedIdentities: [String: Set<String>]) {
    self.mode = mode
    self.server = server
    self.allowedIdentities = allowedIdentities
  }

  /// Checks the configuration against what is served and loads the keys; every mistake is
  /// reported before a volume is opened.
  init(_ configuration: TLSConfiguration, exports: [String], listen: String?) throws {
    let hasKeys = configuration.pskFile != nil || configuration.certificateDirectory != nil
    let mode = configuration.mode ?? (hasKeys ? .require : .off)
    if mode != .off && !hasKeys {
      throw ReelError(
        .usage, "--tls \(mode.rawValue) needs keys",
        remedy: "give --tls-psk FILE (make one with `psktool -u NAME -p FILE`) or --tls-certificates DIR")
    }
    if mode == .off && hasKeys {
      throw ReelError(
        .usage, "--tls off contradicts --tls-psk/--tls-certificates", remedy: "drop --tls off, or drop the keys")
    }
    if configuration.verifyPeer && configuration.certificateDirectory == nil {
      throw ReelError(
        .usage, "--tls-verify-peer checks client certificates, but no --tls-certificates DIR was given",
        remedy: "give --tls-certificates DIR with ca-cert.pem, server-cert.pem and server-key.pem")
    }
    if let listen, mode != .require && !configuration.plainTCP {
      throw ReelError(
        .usage,
        "--listen \(listen) without TLS would let anyone who reaches that port read and overwrite the volumes"
          + (mode == .on ? " (--tls on still lets plain clients in)" : ""),
        remedy:
          "give --tls-psk FILE (make one with `psktool -u NAME -p FILE`) or --tls-certificates DIR; "
          + "or --insecure-no-tls to serve plain TCP on a network you trust")
    }
    var identities: Set<String> = []
    if let file = configuration.pskFile { identities = try Self.pskIdentities(in: file) }
    if let directory = configuration.certificateDirectory {
      let needed = ["server-cert.pem", "server-key.pem"] + (configuration.verifyPeer ? ["ca-cert.pem"] : [])
      for name in needed where !FileManager.default.isReadableFile(atPath: directory + "/" + name) {
        throw ReelError(
          .notFound, "--tls-certificates \(directory) has no readable \(name)",
          remedy: "put ca-cert.pem, server-cert.pem and server-key.pem there (the layout qemu and nbdkit use)")
      }
    }
    try Self.checkAllowList(configuration, exports: exports, identities: identities)
    self.mode = mode
    allowedIdentities = configuration.allowedIdentities
    do {
      server =
        mode == .off
        ? nil
        : try TLSServer(
          pskFile: configuration.pskFile, certificateDirectory: configuration.certificateDirectory,
          verifyPeer: configuration.verifyPeer)
    } catch let failure as TLSFailure {
      throw ReelError(
        .usage, failure.description, remedy: "check the files given with --tls-psk or --tls-certificates")
    }
  }

  /// Whether a client with `session` (nil before TLS) may open `export`.
  func access(to export: String, session: TLSSession?) -> ExportAccess {
    if mode == .require && session == nil { return .tlsRequired }
    guard let allowed = allowedIdentities[export] else { return .granted }
    guard let session else { return .tlsRequired }
    guard let identity = session.pskIdentity else {
      return .refused("export \(export) is open only to the PSK identities given with --allow")
    }
    return allowed.contains(identity) ? .granted : .refused("PSK identity \(identity) may not open export \(export)")
  }

  private static func checkAllowList(
    _ configuration: TLSConfiguration, exports: [String], identities: Set<String>
  ) throws {
    let allowed = configuration.allowedIdentities
    guard !allowed.isEmpty else { return }
    guard configuration.pskFile != nil else {
      throw ReelError(
        .usage, "--allow names PSK identities, but no --tls-psk FILE was given", remedy: "add --tls-psk FILE")
    }
    for export in allowed.keys.sorted() where !exports.contains(export) {
      throw ReelError(
        .usage, "--allow \(export)=... names a volume that is not served", remedy: "serve it, or drop that --allow")
    }
    for export in exports where allowed[export] == nil {
      throw ReelError(
        .usage, "volume \(export) has no --allow while others have: it would be open to every key",
        remedy: "add --allow \(export)=IDENTITY (repeatable), or give --allow for no volume")
    }
    for identity in allowed.values.flatMap({ $0 }).sorted() where !identities.contains(identity) {
      throw ReelError(
        .usage, "--allow names identity \(identity), which has no key in \(configuration.pskFile!)",
        remedy: "add a key for it with `psktool -u \(identity) -p \(configuration.pskFile!)`, or fix the name")
    }
  }

  /// The identities of a psktool file, checking every line so a typo is reported at start
  /// rather than as a failed handshake.
  static func pskIdentities(in path: String) throws -> Set<String> {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw ReelError(
        .notFound, "cannot read the pre-shared key file \(path)",
        remedy: "make one with `psktool -u NAME -p \(path)`, or fix the path")
    }
    var identities: Set<String> = []
    for (index, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated() {
      let text = line.trimmingCharacters(in: .whitespaces)
      if text.isEmpty { continue }
      let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
      let key = parts.count == 2 ? parts[1] : ""
      guard parts.count == 2, !parts[0].isEmpty, !key.isEmpty, key.count % 2 == 0, key.allSatisfy(\.isHexDigit)
      else {
        throw ReelError(
          .usage, "line \(index + 1) of \(path) is not IDENTITY:HEXKEY",
          remedy: "write the file with `psktool -u NAME -p \(path)`")
      }
      identities.insert(String(parts[0]))
    }
    guard !identities.isEmpty else {
      throw ReelError(.usage, "\(path) holds no key", remedy: "add one with `psktool -u NAME -p \(path)`")
    }
    return identities
  }
}

/// The answer to "may this client open that export?".
enum ExportAccess: Equatable {
  case granted
  /// Not before NBD_OPT_STARTTLS (NBD_REP_ERR_TLS_REQD).
  case tlsRequired
  /// Not this client, whatever it does (NBD_REP_ERR_POLICY).
  case refused(String)
}
