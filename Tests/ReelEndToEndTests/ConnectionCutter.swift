import Foundation
import ReelTestSupport

#if canImport(Glibc)
  import Glibc
#endif

/// A TCP relay in front of a real server that cuts the first connection after `cutAfter`
/// bytes of its reply (or, with `cuttingRequest`, of its request): the network failing
/// mid-transfer. Later connections are relayed faithfully. Records what each request
/// began with, so a test can see how the client took up again. With
/// `withholdingChecksums`, replies lose their x-amz-checksum-* headers (renamed), as from
/// a server that ignores checksums.
final class ConnectionCutter: @unchecked Sendable {
  let port: Int
  private let listener: Int32
  private let target: Int
  private let cutAfter: Int
  private let cuttingRequest: Bool
  private let withholdingChecksums: Bool
  private let state = NSLock()
  private var cut = false
  private var requests: [String] = []

  init(target: Int, cutAfter: Int, cuttingRequest: Bool = false, withholdingChecksums: Bool = false) throws {
    self.target = target
    self.cutAfter = cutAfter
    self.cuttingRequest = cuttingRequest
    self.withholdingChecksums = withholdingChecksums
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = Self.loopback(port: 0)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ready = withUnsafeMutablePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(descriptor, $0, length) == 0 && listen(descriptor, 8) == 0 && getsockname(descriptor, $0, &length) == 0
      }
    }
    listener = descriptor
    guard ready else { throw SupportError("relay: \(String(cString: strerror(errno)))") }
    port = Int(UInt16(bigEndian: address.sin_port))
    let acceptor = Thread { [self] in acceptLoop() }
    acceptor.start()
  }

  /// The first line and Range header of each request relayed.
  var seen: [String] { state.withLock { requests } }
  var didCut: Bool { state.withLock { cut } }

  /// Stops accepting (connections in flight end on their own). Call once.
  func close() {
    shutdown(listener, Int32(SHUT_RDWR))
    Glibc.close(listener)
  }

  private static func loopback(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return address
  }

  private func acceptLoop() {
    while true {
      let client = accept(listener, nil, nil)
      guard client >= 0 else { return }
      let server = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
      var address = Self.loopback(port: target)
      let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
          connect(server, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
        }
      }
      guard connected else {
        Glibc.close(client)
        Glibc.close(server)
        continue
      }
      let cutThis = state.withLock { () -> Bool in
        defer { cut = true }
        return !cut
      }
      let pair = SocketPair(client, server)
      let requestLimit = cutThis && cuttingRequest ? cutAfter : nil
      let replyLimit = cutThis && !cuttingRequest ? cutAfter : nil
      Thread { [self] in pump(from: client, to: server, limit: requestLimit, record: true, pair: pair) }.start()
      Thread { [self] in pump(from: server, to: client, limit: replyLimit, record: false, pair: pair) }.start()
    }
  }

  private func pump(from source: Int32, to destination: Int32, limit: Int?, record: Bool, pair: SocketPair) {
    var buffer = [UInt8](repeating: 0, count: 64 << 10)
    var relayed = 0
    var head: [UInt8] = []
    while true {
      let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress!, $0.count) }
      if count <= 0 { break }
      if record, head.count < 4096 {
        head += buffer[0..<min(count, 4096 - head.count)]
        let text = String(decoding: head, as: UTF8.self)
        if text.contains("\r\n\r\n") {
          let lines = text.components(separatedBy: "\r\n")
          let range = lines.first { $0.lowercased().hasPrefix("range:") } ?? "no range"
          state.withLock { requests.append("\(lines[0]) | \(range)") }
          head = Array(repeating: 0, count: 4096)  // one record per connection's first request
        }
      }
      if !record && withholdingChecksums { Self.renameChecksumHeaders(&buffer, count: count) }
      var sendCount = count
      if let limit { sendCount = min(count, limit - relayed) }
      let sent = buffer.withUnsafeBytes { write(destination, $0.baseAddress!, sendCount) }
      relayed += max(0, sent)
      if sent < sendCount || (limit != nil && relayed >= limit!) { break }
    }
    pair.finish()
  }

  /// "x-amz-checksum-" becomes "x-amz-withheld-" (as long), in any letter case.
  private static func renameChecksumHeaders(_ buffer: inout [UInt8], count: Int) {
    let name = Array("x-amz-checksum-".utf8)
    let replacement = Array("x-amz-withheld-".utf8)
    var index = 0
    while index + name.count <= count {
      if zip(buffer[index..<index + name.count], name).allSatisfy({ $0 | 0x20 == $1 | 0x20 }) {
        buffer.replaceSubrange(index..<index + name.count, with: replacement)
        index += name.count
      } else {
        index += 1
      }
    }
  }
}

/// The two sockets of a relayed connection: either direction ending shuts both down; the
/// second to end closes them (once, so no descriptor number is closed after its reuse).
private final class SocketPair: @unchecked Sendable {
  private let sockets: (Int32, Int32)
  private let lock = NSLock()
  private var ended = 0

  init(_ first: Int32, _ second: Int32) { sockets = (first, second) }

  func finish() {
    lock.withLock {
      ended += 1
      if ended == 1 {
        shutdown(sockets.0, Int32(SHUT_RDWR))
        shutdown(sockets.1, Int32(SHUT_RDWR))
      } else {
        Glibc.close(sockets.0)
        Glibc.close(sockets.1)
      }
    }
  }
}
