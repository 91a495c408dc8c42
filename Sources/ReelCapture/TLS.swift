import CGnuTLS
import Foundation
import ReelCore

#if canImport(Glibc)
  import Glibc
#endif

/// GnuTLS said no; `operation` names what was being done.
struct TLSFailure: Error, CustomStringConvertible {
  var operation: String
  var code: Int32
  var description: String { "\(operation): \(String(cString: reel_gnutls_strerror(code)))" }
}

/// The keys `reel serve` offers in NBD_OPT_STARTTLS, loaded once and shared read-only by
/// every connection (GnuTLS allows that for credentials). All pointers into GnuTLS stay
/// in this file.
final class TLSServer: @unchecked Sendable {
  private var psk: gnutls_psk_server_credentials_t?
  private var certificates: gnutls_certificate_credentials_t?
  private var priority: gnutls_priority_t?
  private let verifyPeer: Bool

  /// `pskFile`: psktool's `identity:hexkey` lines. `certificateDirectory`: qemu's and
  /// nbdkit's layout, ca-cert.pem, server-cert.pem, server-key.pem.
  init(pskFile: String?, certificateDirectory: String?, verifyPeer: Bool) throws {
    self.verifyPeer = verifyPeer
    if let message = reel_gnutls_load() { throw ReelError(.notFound, String(cString: message)) }
    do {
      if let pskFile {
        try Self.check(reel_gnutls_psk_allocate_server_credentials(&psk), "set up PSK credentials")
        try Self.check(
          reel_gnutls_psk_set_server_credentials_file(psk, pskFile), "read the pre-shared keys in \(pskFile)")
        try Self.check(
          reel_gnutls_psk_set_server_known_dh_params(psk, GNUTLS_SEC_PARAM_MEDIUM), "choose DH parameters for PSK")
      }
      if let certificateDirectory {
        let ca = certificateDirectory + "/ca-cert.pem"
        let cert = certificateDirectory + "/server-cert.pem"
        let key = certificateDirectory + "/server-key.pem"
        try Self.check(reel_gnutls_certificate_allocate_credentials(&certificates), "set up X.509 credentials")
        try Self.check(
          reel_gnutls_certificate_set_x509_key_file(certificates, cert, key, GNUTLS_X509_FMT_PEM),
          "load \(cert) with \(key)")
        if verifyPeer {
          let loaded = reel_gnutls_certificate_set_x509_trust_file(certificates, ca, GNUTLS_X509_FMT_PEM)
          try Self.check(loaded, "load the CA certificate \(ca)")
          guard loaded > 0 else { throw TLSFailure(operation: "load \(ca): no certificate in it", code: 0) }
        }
        try Self.check(
          reel_gnutls_certificate_set_known_dh_params(certificates, GNUTLS_SEC_PARAM_MEDIUM),
          "choose DH parameters for X.509")
      }
      // AES-GCM first and the server's order wins: with AES instructions it is many times
      // faster than ChaCha20, which some clients ask for first. GnuTLS leaves PSK key
      // exchanges out of NORMAL; ECDHE-PSK first (forward secrecy).
      let ciphers = "-CIPHER-ALL:+AES-256-GCM:+AES-128-GCM:+CHACHA20-POLY1305:%SERVER_PRECEDENCE"
      let priorities = "NORMAL:" + ciphers + (psk != nil ? ":+ECDHE-PSK:+DHE-PSK:+PSK" : "")
      try Self.check(reel_gnutls_priority_init(&priority, priorities, nil), "set TLS priorities \(priorities)")
    } catch {
      release()
      throw error
    }
  }

  deinit { release() }

  private func release() {
    if let priority { reel_gnutls_priority_deinit(priority) }
    if let psk { reel_gnutls_psk_free_server_credentials(psk) }
    if let certificates { reel_gnutls_certificate_free_credentials(certificates) }
    priority = nil
    psk = nil
    certificates = nil
  }

  /// Runs the server side of a TLS handshake on a connected socket. A failure ends the
  /// connection: after NBD_REP_ACK there is no way back to plain text.
  func handshake(descriptor: Int32) throws -> TLSSession {
    var session: gnutls_session_t?
    try Self.check(reel_gnutls_init(&session, UInt32(GNUTLS_SERVER) | UInt32(GNUTLS_NO_SIGNAL)), "start a TLS session")
    let tls = TLSSession(session!)
    try Self.check(reel_gnutls_priority_set(session, priority), "apply TLS priorities")
    if let psk {
      try Self.check(reel_gnutls_credentials_set(session, GNUTLS_CRD_PSK, UnsafeMutableRawPointer(psk)), "offer PSK")
    }
    if let certificates {
      try Self.check(
        reel_gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, UnsafeMutableRawPointer(certificates)),
        "offer the certificate")
      if verifyPeer {
        reel_gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE)
        // Makes the handshake itself fail unless the client's chain leads to ca-cert.pem.
        reel_gnutls_session_set_verify_cert(session, nil, 0)
      }
    }
    reel_gnutls_transport_set_int2(session, descriptor, descriptor)
    while true {
      let result = reel_gnutls_handshake(session)
      if result == GNUTLS_E_SUCCESS { break }
      if reel_gnutls_error_is_fatal(result) == 0 && result != GNUTLS_E_AGAIN { continue }
      throw TLSFailure(operation: "TLS handshake", code: result)
    }
    return tls
  }

  static func check(_ result: Int32, _ operation: String) throws {
    if result < 0 { throw TLSFailure(operation: "cannot \(operation)", code: result) }
  }
}

/// One connection's TLS session. One thread receives while another sends (GnuTLS allows
/// that much sharing); sends come one at a time.
final class TLSSession: @unchecked Sendable {
  private let session: gnutls_session_t
  private let sending = NSLock()
  /// Gathers small buffers (a reply header and the start of its payload) into one TLS
  /// record; payload beyond it goes to GnuTLS in place, without copying.
  private let staging: UnsafeMutableRawBufferPointer

  fileprivate init(_ session: gnutls_session_t) {
    self.session = session
    let recordSize = max(512, reel_gnutls_record_get_max_size(session))
    staging = UnsafeMutableRawBufferPointer.allocate(byteCount: recordSize, alignment: 16)
  }

  deinit {
    reel_gnutls_deinit(session)
    staging.deallocate()
  }

  /// The PSK identity the client proved it holds the key of; nil for X.509 sessions.
  var pskIdentity: String? {
    guard reel_gnutls_auth_get_type(session) == GNUTLS_CRD_PSK, let name = reel_gnutls_psk_server_get_username(session)
    else { return nil }
    return String(cString: name)
  }

  /// e.g. "TLS1.3, AES-256-GCM, PSK identity alice", for the log.
  var summary: String {
    let version = reel_gnutls_protocol_get_name(reel_gnutls_protocol_get_version(session)).map { String(cString: $0) }
    let cipher = reel_gnutls_cipher_get_name(reel_gnutls_cipher_get(session)).map { String(cString: $0) }
    let who = pskIdentity.map { "PSK identity \($0)" } ?? "X.509"
    return "\(version ?? "TLS"), \(cipher ?? "unknown cipher"), \(who)"
  }

  /// Fills `buffer` completely or throws `ConnectionClosed`.
  func receive(into buffer: UnsafeMutableRawBufferPointer) throws {
    var done = 0
    while done < buffer.count {
      let got = reel_gnutls_record_recv(session, buffer.baseAddress! + done, buffer.count - done)
      if got > 0 {
        done += got
      } else if got == 0 {
        throw ConnectionClosed(received: done, expected: buffer.count)
      } else {
        try handle(Int32(got), operation: "receive", received: done, expected: buffer.count)
      }
    }
  }

  /// Sends the buffers back to back in as few records as the record size allows.
  func send(_ buffers: [UnsafeRawBufferPointer]) throws {
    try sending.withLock {
      var staged = 0
      for buffer in buffers {
        var offset = 0
        while offset < buffer.count {
          let left = buffer.count - offset
          if staged == 0 && left >= staging.count {
            offset += try sendRecord(UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + staging.count)]))
            continue
          }
          let step = min(left, staging.count - staged)
          UnsafeMutableRawBufferPointer(rebasing: staging[staged..<(staged + step)])
            .copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[offset..<(offset + step)]))
          staged += step
          offset += step
          if staged == staging.count {
            try sendAll(UnsafeRawBufferPointer(rebasing: staging[0..<staged]))
            staged = 0
          }
        }
      }
      if staged > 0 { try sendAll(UnsafeRawBufferPointer(rebasing: staging[0..<staged])) }
    }
  }

  /// Tells the client the session is over (TLS close_notify) if the socket has room for
  /// it; never waits for a client that stopped reading.
  func closeNotify(descriptor: Int32) {
    let flags = fcntl(descriptor, F_GETFL)
    if flags >= 0 { _ = fcntl(descriptor, F_SETFL, flags | O_NONBLOCK) }
    _ = reel_gnutls_bye(session, GNUTLS_SHUT_WR)
  }

  private func sendAll(_ bytes: UnsafeRawBufferPointer) throws {
    var done = 0
    while done < bytes.count {
      done += try sendRecord(UnsafeRawBufferPointer(rebasing: bytes[done...]))
    }
  }

  /// One gnutls_record_send: at most a record's worth; returns how much went.
  private func sendRecord(_ bytes: UnsafeRawBufferPointer) throws -> Int {
    while true {
      let sent = reel_gnutls_record_send(session, bytes.baseAddress, bytes.count)
      if sent >= 0 { return sent }
      try handle(Int32(sent), operation: "send", received: 0, expected: 0)
    }
  }

  /// Returns when the call should be repeated; otherwise throws what the error means.
  private func handle(_ code: Int32, operation: String, received: Int, expected: Int) throws {
    switch code {
    case GNUTLS_E_INTERRUPTED:
      return
    case GNUTLS_E_AGAIN:
      // A blocking socket only says this when its timeout ran out.
      throw SocketFailure(operation: operation, code: EAGAIN)
    case GNUTLS_E_PREMATURE_TERMINATION, GNUTLS_E_PUSH_ERROR, GNUTLS_E_PULL_ERROR:
      throw ConnectionClosed(received: received, expected: expected)
    default:
      throw TLSFailure(operation: "TLS \(operation)", code: code)
    }
  }
}
