import Foundation
import ReelCore
import ReelTestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// The NBD handshake and request stream, fuzzed through the one entry point a client has:
/// a connection to a real `reel serve` of a scratch 1 MiB volume. Each input is sent as a
/// client's bytes on a new connection; the server must answer or hang up, and stay up.
/// A server that dies ends this process with a trap, so the supervisor saves the input.
enum NBDFuzzing {
  private nonisolated(unsafe) static var server: (store: TestStore, process: ServerProcess)?
  private nonisolated(unsafe) static var serverPidFile: String?

  static func run(_ input: [UInt8], scratch: String) throws {
    let (store, process) = try started(scratch: scratch)
    let socket = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    guard socket >= 0 else { throw ReelError(.io, "no socket") }
    defer { close(socket) }
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    let path = Array(store.socketPath.utf8CString)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
      for (index, byte) in path.enumerated() where index < raw.count { raw[index] = UInt8(bitPattern: byte) }
    }
    let connected = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(socket, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    guard connected == 0 else { fatalError("reel serve no longer accepts connections (\(errno))") }
    var timeout = timeval(tv_sec: 0, tv_usec: 200_000)
    setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    var buffer = [UInt8](repeating: 0, count: 64 << 10)
    // The server speaks first; then the input, then whatever it answers until it stops.
    _ = recv(socket, &buffer, buffer.count, 0)
    _ = input.withUnsafeBytes { send(socket, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    shutdown(socket, Int32(SHUT_WR))
    var reads = 0
    while recv(socket, &buffer, buffer.count, 0) > 0 && reads < 64 { reads += 1 }
    guard process.child.isRunning else {
      fatalError("reel serve died on this input:\n\(process.log.suffix(2000))")
    }
  }

  /// Where the server's pid is noted, so the supervisor can end it when this process
  /// dies by a signal (no atexit runs then).
  static func pidFile(scratch: String) -> String { scratch + "/nbd-server.pid" }

  private static func started(scratch: String) throws -> (TestStore, ServerProcess) {
    if let server { return server }
    let store = try TestStore()
    try store.createVolume("fuzz", size: "1M", blockSize: 512)
    let process = try ServerProcess(store: store, volumes: ["fuzz"])
    _ = FileManager.default.createFile(atPath: pidFile(scratch: scratch), contents: Data("\(process.pid)".utf8))
    serverPidFile = pidFile(scratch: scratch)
    server = (store, process)
    // A normal exit stops the server itself and drops the note, so nothing later signals
    // a pid that may have been reused.
    atexit {
      _ = NBDFuzzing.server?.process.stop(SIGKILL)
      if let file = NBDFuzzing.serverPidFile { unlink(file) }
    }
    return (store, process)
  }

  /// What a real client sends: nbdinfo's fixed-newstyle handshake (client flags, NBD_OPT_GO
  /// for export "fuzz"), then a read, a write, a flush and a disconnect.
  static func seeds() -> [[UInt8]] {
    func be32(_ value: UInt32) -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }
    func be64(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }
    func be16(_ value: UInt16) -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }
    let optionMagic: [UInt8] = Array("IHAVEOPT".utf8)
    let name = Array("fuzz".utf8)
    let go = optionMagic + be32(7) + be32(UInt32(4 + name.count + 2)) + be32(UInt32(name.count)) + name + be16(0)
    let handshake = be32(3) + go
    func request(_ type: UInt16, offset: UInt64, length: UInt32, handle: UInt64) -> [UInt8] {
      be32(0x2560_9513) + be16(0) + be16(type) + be64(handle) + be64(offset) + be32(length)
    }
    let write = request(1, offset: 4096, length: 512, handle: 2) + [UInt8](repeating: 0xAB, count: 512)
    let session =
      handshake + request(0, offset: 0, length: 4096, handle: 1) + write + request(3, offset: 0, length: 0, handle: 3)
      + request(2, offset: 0, length: 0, handle: 4)
    let list = be32(3) + optionMagic + be32(3) + be32(0) + optionMagic + be32(2) + be32(0)
    return [handshake, session, list]
  }
}
