import Foundation
import ReelCore
import ReelIO

#if canImport(Glibc)
  import Glibc
#endif

/// The peer went away, between messages or in the middle of one.
struct ConnectionClosed: Error {
  /// Bytes of the message that did arrive before the end.
  var received: Int
  var expected: Int
}

/// A system call on a socket failed.
struct SocketFailure: Error, CustomStringConvertible {
  var operation: String
  var code: Int32
  var description: String { "\(operation): \(String(cString: strerror(code)))" }
  /// The socket's receive or send timeout passed (`SocketStream.setTimeouts`).
  var timedOut: Bool { code == EAGAIN || code == EWOULDBLOCK }
}

/// One connected stream socket used by one thread at a time, except that `stopReceiving`
/// may come from another thread to wake a blocked receive at shutdown. After `startTLS`
/// every byte goes through the TLS session instead of the bare socket.
final class SocketStream: Sendable {
  private let descriptor: Int32
  private let closed = Locked(false)
  private let tls = Locked<TLSSession?>(nil)

  init(descriptor: Int32) {
    self.descriptor = descriptor
  }

  deinit { close() }

  /// Fills `buffer` completely or throws `ConnectionClosed`.
  func receive(into buffer: UnsafeMutableRawBufferPointer) throws {
    if let session = tls.withLock({ $0 }) { return try session.receive(into: buffer) }
    var done = 0
    while done < buffer.count {
      let got = recv(descriptor, buffer.baseAddress! + done, buffer.count - done, 0)
      if got > 0 {
        done += got
      } else if got == 0 {
        throw ConnectionClosed(received: done, expected: buffer.count)
      } else if errno == EINTR {
        continue
      } else if errno == ECONNRESET || errno == EPIPE || errno == EBADF {
        throw ConnectionClosed(received: done, expected: buffer.count)
      } else {
        throw SocketFailure(operation: "receive", code: errno)
      }
    }
  }

  func receive(count: Int) throws -> [UInt8] {
    try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
      try receive(into: UnsafeMutableRawBufferPointer(buffer))
      initialized = count
    }
  }

  /// Reads and drops `count` bytes: a payload the server refuses still has to leave the
  /// stream so the next request header can be found.
  func discard(count: Int) throws {
    var scratch = [UInt8](repeating: 0, count: min(count, 1 << 20))
    var left = count
    while left > 0 {
      let step = min(left, scratch.count)
      try scratch.withUnsafeMutableBytes { try receive(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<step])) }
      left -= step
    }
  }

  func send(_ bytes: [UInt8]) throws {
    try bytes.withUnsafeBytes { try send([$0]) }
  }

  /// Sends the buffers back to back with as few system calls as possible.
  func send(_ buffers: [UnsafeRawBufferPointer]) throws {
    if let session = tls.withLock({ $0 }) { return try session.send(buffers) }
    var vectors = buffers.filter { !$0.isEmpty }.map {
      iovec(iov_base: UnsafeMutableRawPointer(mutating: $0.baseAddress), iov_len: $0.count)
    }
    var first = 0
    while first < vectors.count {
      let sent = vectors[first...].withUnsafeMutableBufferPointer { pending -> Int in
        var message = msghdr()
        message.msg_iov = pending.baseAddress
        message.msg_iovlen = pending.count
        return sendmsg(descriptor, &message, Int32(MSG_NOSIGNAL))
      }
      if sent < 0 {
        if errno == EINTR { continue }
        if errno == EPIPE || errno == ECONNRESET || errno == EBADF {
          throw ConnectionClosed(received: 0, expected: 0)
        }
        throw SocketFailure(operation: "send", code: errno)
      }
      advance(&vectors, first: &first, by: sent)
    }
  }

  /// Upgrades the connection to TLS (the server side of the handshake); from here on the
  /// peer is the holder of the key or certificate the session names.
  @discardableResult
  func startTLS(_ server: TLSServer) throws -> TLSSession {
    let session = try server.handshake(descriptor: descriptor)
    tls.withLock { $0 = session }
    return session
  }

  /// The TLS session once `startTLS` succeeded.
  var tlsSession: TLSSession? { tls.withLock { $0 } }

  /// Bounds how long one receive or send call may wait for the peer (SO_RCVTIMEO,
  /// SO_SNDTIMEO); a call that times out throws a `SocketFailure` that is `timedOut`.
  /// Nil waits without limit.
  func setTimeouts(receive: Duration?, send: Duration?) {
    for (option, duration) in [(SO_RCVTIMEO, receive), (SO_SNDTIMEO, send)] {
      let (seconds, attoseconds) = (duration ?? .zero).components
      var value = timeval(tv_sec: Int(seconds), tv_usec: Int(attoseconds / 1_000_000_000_000))
      if duration != nil && value.tv_sec == 0 && value.tv_usec == 0 { value.tv_usec = 1 }
      _ = setsockopt(descriptor, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<timeval>.size))
    }
  }

  /// Makes a blocked or later `receive` see the end of the stream once buffered bytes are
  /// read; replies can still be sent.
  func stopReceiving() {
    closed.withLock { closed in
      if !closed { _ = shutdown(descriptor, Int32(SHUT_RD)) }
    }
  }

  func close() {
    closed.withLock { closed in
      guard !closed else { return }
      closed = true
      tls.withLock { $0 }?.closeNotify(descriptor: descriptor)
      _ = Glibc.close(descriptor)
    }
  }

  /// Connects to a Unix socket; nil when nothing listens there (no file, or a stale one).
  static func connect(unixPath path: String) throws -> SocketStream? {
    var address = try unixAddress(path)
    let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard descriptor >= 0 else { throw SocketFailure(operation: "socket", code: errno) }
    let result = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    if result != 0 {
      let code = errno
      _ = Glibc.close(descriptor)
      if code == ECONNREFUSED || code == ENOENT { return nil }
      throw SocketFailure(operation: "connect to \(path)", code: code)
    }
    return SocketStream(descriptor: descriptor)
  }

  static func unixAddress(_ path: String) throws -> sockaddr_un {
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let bytes = Array(path.utf8)
    let capacity = MemoryLayout.size(ofValue: address.sun_path)
    guard bytes.count < capacity else {
      throw ReelError(
        .usage, "the socket path \(path) is \(bytes.count) bytes long; Unix sockets allow at most \(capacity - 1)",
        remedy: "choose a shorter --socket path, or a store folder with a shorter path")
    }
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
      raw.copyBytes(from: bytes)
      raw[bytes.count] = 0
    }
    return address
  }
}
