import Foundation
import ReelCore
import ReelIO
import ReelJournal
import ReelTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

func fileBytes(_ path: String) throws -> [UInt8] {
  Array(try #require(FileManager.default.contents(atPath: path), "cannot read \(path)"))
}

/// Kills `server` with SIGKILL while `writer` (qemu-io, output in `output`) is still
/// writing `chunk`-byte blocks, waits for qemu-io to give up, and returns the offsets of
/// the writes qemu-io saw acknowledged.
func killServer(_ server: ServerProcess, amid writer: ChildProcess, output: String, chunk: Int) throws -> [Int] {
  #expect(writer.isRunning, "the writer finished before the kill; the test proves less than it should")
  #expect(server.stop(SIGKILL) == 128 + SIGKILL)
  let deadline = Date(timeIntervalSinceNow: 60)
  while writer.isRunning && Date() < deadline { usleep(20_000) }
  try #require(!writer.isRunning, "qemu-io did not give up after the server died")
  let text = try String(contentsOfFile: output, encoding: .utf8)
  let offsets = text.split(separator: "\n").compactMap { line -> Int? in
    guard line.hasPrefix("wrote \(chunk)/\(chunk) bytes at offset ") else { return nil }
    return Int(line.split(separator: " ").last!)
  }
  try #require(offsets.count >= 8, "too few writes acknowledged before the kill:\n\(text)")
  return offsets
}

/// A raw NBD client for traffic no real client would send. One thread uses it at a time.
final class RawClient: @unchecked Sendable {
  private let descriptor: Int32

  init(unixPath: String) throws {
    descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    try #require(descriptor >= 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
      let bytes = Array(unixPath.utf8)
      raw.copyBytes(from: bytes)
      raw[bytes.count] = 0
    }
    let connected = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    try #require(connected == 0, "connect to \(unixPath): \(String(cString: strerror(errno)))")
    // A server that hangs must fail the test, not hang it.
    var timeout = timeval(tv_sec: 20, tv_usec: 0)
    setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
  }

  deinit { close(descriptor) }

  func send(_ bytes: [UInt8]) throws {
    var done = 0
    while done < bytes.count {
      let sent = bytes.withUnsafeBytes {
        Glibc.send(descriptor, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL))
      }
      try #require(sent > 0, "send failed: \(String(cString: strerror(errno)))")
      done += sent
    }
  }

  /// Exactly `count` bytes, or nil if the server closed the connection first.
  func receive(_ count: Int) throws -> [UInt8]? {
    var buffer = [UInt8](repeating: 0, count: count)
    var done = 0
    while done < count {
      let got = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress! + done, count - done, 0) }
      if got == 0 || (got < 0 && errno == ECONNRESET) { return nil }
      try #require(got > 0, "receive failed: \(String(cString: strerror(errno)))")
      done += got
    }
    return buffer
  }

  /// Like `send`, but reports failure (the server hung up) instead of failing the test.
  func trySend(_ bytes: [UInt8]) -> Bool {
    var done = 0
    while done < bytes.count {
      let sent = bytes.withUnsafeBytes {
        Glibc.send(descriptor, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL))
      }
      if sent <= 0 { return false }
      done += sent
    }
    return true
  }

  /// True when the server closed the connection (nothing more to read).
  func isClosedByServer() throws -> Bool { try receive(1) == nil }

  func shutdownWriting() { shutdown(descriptor, Int32(SHUT_WR)) }
}

/// Big-endian encoding for hand-made NBD messages, with the protocol's numbers spelled out
/// here rather than taken from the server.
struct Wire {
  var bytes: [UInt8] = []
  mutating func u16(_ value: UInt16) { withUnsafeBytes(of: value.bigEndian) { bytes += $0 } }
  mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.bigEndian) { bytes += $0 } }
  mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.bigEndian) { bytes += $0 } }
  mutating func raw(_ value: [UInt8]) { bytes += value }

  static func read<T: FixedWidthInteger>(_ bytes: [UInt8], at offset: Int, as _: T.Type) -> T {
    var value: T = 0
    for index in offset..<(offset + MemoryLayout<T>.size) { value = value << 8 | T(bytes[index]) }
    return value
  }
}
