import Foundation
import ReelCore
import ReelIO

#if canImport(Glibc)
  import Glibc
#endif

/// Who may connect to a Unix socket of `reel serve`: its owner (0600), or also one group
/// (0660, `--socket-group`). Connecting to a Unix socket needs write permission on it.
package enum SocketAccess: Sendable, Equatable {
  case owner
  case group(gid_t)

  var mode: mode_t {
    switch self {
    case .owner: 0o600
    case .group: 0o660
    }
  }

  /// `name` as a group name or a numeric group ID.
  package static func group(named name: String) throws -> SocketAccess {
    if let group = getgrnam(name) { return .group(group.pointee.gr_gid) }
    if let id = gid_t(name) { return .group(id) }
    throw ReelError(
      .usage, "no group named \(name) on this system", remedy: "give --socket-group an existing group name or ID")
  }
}

/// A listening socket, Unix or TCP. `stop` wakes a thread blocked in `accept`.
final class SocketListener: Sendable {
  /// What a person reads in the log: a path or `host:port`.
  let address: String
  /// Set for Unix sockets: the file `stop` removes.
  let unixPath: String?
  /// The TCP port actually bound (useful when port 0 was asked for).
  let port: UInt16?
  private let descriptor: Int32
  private let stopped = Locked(false)

  private init(descriptor: Int32, address: String, unixPath: String?, port: UInt16?) {
    self.descriptor = descriptor
    self.address = address
    self.unixPath = unixPath
    self.port = port
  }

  deinit {
    stop()
    _ = close(descriptor)
  }

  /// Listens on a Unix socket at `path`. A stale socket file from a crashed server is
  /// replaced; a live one is an error. The file appears only once the socket is listening
  /// (bound under a temporary name, then renamed), so a client that sees it can connect.
  /// Its mode and group are set before it listens, so no one else can connect meanwhile.
  static func unix(path: String, access: SocketAccess = .owner) throws -> SocketListener {
    let directory = (path as NSString).deletingLastPathComponent
    if !directory.isEmpty { try Durable.makeDirectory(directory) }
    var existing = stat()
    if lstat(path, &existing) == 0 {
      guard (existing.st_mode & S_IFMT) == S_IFSOCK else {
        throw ReelError(
          .alreadyExists, "\(path) exists and is not a socket", remedy: "give --socket a path that is free")
      }
      if let live = try? SocketStream.connect(unixPath: path) {
        live.close()
        throw ReelError(
          .alreadyExists, "another server is already listening on \(path)",
          remedy: "stop it, or give this server another --socket path")
      }
      unlink(path)
    }
    _ = try SocketStream.unixAddress(path)
    let temporary =
      (directory.isEmpty ? "." : directory) + "/.reel-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sock"
    let bindPath = (try? SocketStream.unixAddress(temporary)) != nil ? temporary : path
    var address = try SocketStream.unixAddress(bindPath)
    let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard descriptor >= 0 else { throw failure("create a socket for", path) }
    let bound = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    guard bound == 0, restrict(bindPath, access), listen(descriptor, 128) == 0 else {
      let error = failure("listen on", path)
      _ = close(descriptor)
      unlink(bindPath)
      throw error
    }
    if bindPath != path {
      guard rename(bindPath, path) == 0 else {
        let error = failure("move the socket to", path)
        _ = close(descriptor)
        unlink(bindPath)
        throw error
      }
    }
    return SocketListener(descriptor: descriptor, address: path, unixPath: path, port: nil)
  }

  /// Listens on TCP. `host` may be a name or address; port 0 picks a free port.
  static func tcp(host: String, port: UInt16) throws -> SocketListener {
    var hints = addrinfo()
    hints.ai_family = AF_UNSPEC
    hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
    var list: UnsafeMutablePointer<addrinfo>?
    let status = getaddrinfo(host, String(port), &hints, &list)
    guard status == 0, let first = list else {
      throw ReelError(
        .usage, "cannot resolve the listen address \(host): \(String(cString: gai_strerror(status)))",
        remedy: "give --listen as PORT, HOST:PORT or [IPv6]:PORT")
    }
    defer { freeaddrinfo(list) }
    var lastError: ReelError?
    var candidate: UnsafeMutablePointer<addrinfo>? = first
    while let entry = candidate {
      candidate = entry.pointee.ai_next
      let descriptor = socket(entry.pointee.ai_family, entry.pointee.ai_socktype | Int32(SOCK_CLOEXEC.rawValue), 0)
      guard descriptor >= 0 else {
        lastError = failure("create a socket for", "\(host):\(port)")
        continue
      }
      var yes: Int32 = 1
      _ = setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
      guard bind(descriptor, entry.pointee.ai_addr, entry.pointee.ai_addrlen) == 0, listen(descriptor, 128) == 0
      else {
        lastError = failure("listen on", "\(host):\(port)")
        _ = close(descriptor)
        continue
      }
      let bound = boundPort(descriptor) ?? port
      let shown = host.contains(":") ? "[\(host)]:\(bound)" : "\(host):\(bound)"
      return SocketListener(descriptor: descriptor, address: shown, unixPath: nil, port: bound)
    }
    throw lastError ?? ReelError(.io, "cannot listen on \(host):\(port)")
  }

  /// The next client, or nil once `stop` was called.
  func accept() -> SocketStream? {
    while true {
      let client = Glibc.accept(descriptor, nil, nil)
      if client >= 0 {
        _ = fcntl(client, F_SETFD, FD_CLOEXEC)
        if unixPath == nil {
          var yes: Int32 = 1
          _ = setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &yes, socklen_t(MemoryLayout<Int32>.size))
        }
        return SocketStream(descriptor: client)
      }
      if stopped.withLock({ $0 }) { return nil }
      switch errno {
      case EINTR, ECONNABORTED, EPROTO: continue
      case EMFILE, ENFILE, ENOBUFS, ENOMEM: usleep(50_000)
      default: return nil
      }
    }
  }

  /// Stops accepting and removes the Unix socket file.
  func stop() {
    stopped.withLock { stopped in
      guard !stopped else { return }
      stopped = true
      _ = shutdown(descriptor, Int32(SHUT_RDWR))
      if let unixPath { unlink(unixPath) }
    }
  }

  /// Sets a bound socket file's mode (the umask applied to 0777 at bind) and group.
  private static func restrict(_ path: String, _ access: SocketAccess) -> Bool {
    if case .group(let group) = access, chown(path, uid_t.max, group) != 0 { return false }
    return chmod(path, access.mode) == 0
  }

  private static func boundPort(_ descriptor: Int32) -> UInt16? {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let ok = withUnsafeMutablePointer(to: &storage) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) == 0 }
    }
    guard ok else { return nil }
    let family = Int32(storage.ss_family)
    return withUnsafePointer(to: &storage) { pointer -> UInt16? in
      switch family {
      case AF_INET:
        return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
      case AF_INET6:
        return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
      default:
        return nil
      }
    }
  }

  private static func failure(_ action: String, _ target: String) -> ReelError {
    let code = errno
    return ReelError(
      .io, "cannot \(action) \(target): \(String(cString: strerror(code)))",
      remedy: code == EADDRINUSE
        ? "another program uses this address; choose another with --listen or --socket" : nil)
  }
}
