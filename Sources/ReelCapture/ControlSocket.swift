import Foundation
import ReelCore
import ReelJournal

/// The line protocol on each served volume's control socket (`control.sock` in the volume
/// folder). One request per line, one reply line each:
///
///     BOOKMARK <label>            →  OK <seq> <RFC 3339 time>
///                                 or ERR <kind>\t<message>\t<remedy>
///     ROLLBACK <0|1> <point>      →  OK <seq> <time> <target seq> <extents> <bytes> <cut>
///                                 or ERR … (RollbackApplication.swift)
///
/// See docs/capture.md.
enum ControlProtocol {
  static let socketName = "control.sock"
  static let maximumLine = 4096

  static func okLine(_ record: AppendedRecord) -> String {
    "OK \(record.seq) \(record.time.rfc3339)\n"
  }

  static func errorLine(_ error: ReelError) -> String {
    let clean = { (text: String) in
      text.replacingOccurrences(of: "\n", with: " ").replacingOccurrences(of: "\t", with: " ")
    }
    return "ERR \(error.kind.rawValue)\t\(clean(error.message))\t\(clean(error.remedy ?? ""))\n"
  }

  /// Sends one request line to the server listening at `controlPath` and returns its reply
  /// line; nil when no server listens there. `unanswered` is the remedy when the server
  /// hangs up without a reply, `interrupted` what to say when it goes away meanwhile.
  static func ask(
    _ request: String, at controlPath: String, unanswered: String, interrupted: String
  ) throws -> String? {
    let stream: SocketStream?
    do {
      stream = try SocketStream.connect(unixPath: controlPath)
    } catch let error as SocketFailure {
      throw ReelError(.io, "cannot reach the capture server at \(controlPath): \(error)")
    }
    guard let stream else { return nil }
    defer { stream.close() }
    do {
      try stream.send(Array(request.utf8))
      guard let line = try readLine(stream) else {
        throw ReelError(
          .io, "the capture server at \(controlPath) closed the connection without answering", remedy: unanswered)
      }
      return line
    } catch let error as SocketFailure {
      throw ReelError(.io, "talking to the capture server at \(controlPath) failed: \(error)")
    } catch is ConnectionClosed {
      throw ReelError(.io, "the capture server at \(controlPath) went away \(interrupted)")
    }
  }

  /// Reads one line (without its newline); nil at end of stream.
  static func readLine(_ stream: SocketStream) throws -> String? {
    var bytes: [UInt8] = []
    var byte: UInt8 = 0
    while true {
      do {
        try withUnsafeMutableBytes(of: &byte) { try stream.receive(into: $0) }
      } catch is ConnectionClosed {
        return nil
      }
      if byte == 10 { return String(decoding: bytes, as: UTF8.self) }
      bytes.append(byte)
      guard bytes.count <= maximumLine else {
        throw ReelError(.protocolViolation, "control request longer than \(maximumLine) bytes")
      }
    }
  }

  /// Parses a reply line into the bookmark's seq and time, or the error the server sent.
  static func parseReply(_ line: String) throws -> (seq: Seq, time: Timestamp) {
    if line.hasPrefix("OK ") {
      let fields = line.dropFirst(3).split(separator: " ")
      if fields.count == 2, let seq = Seq(fields[0]), let time = Timestamp(rfc3339: String(fields[1])) {
        return (seq, time)
      }
    } else if line.hasPrefix("ERR ") {
      let fields = line.dropFirst(4).split(separator: "\t", omittingEmptySubsequences: false).map(String.init)
      let kind = ReelError.Kind(rawValue: fields.first ?? "") ?? .io
      let message = fields.count > 1 ? fields[1] : "the server refused the request"
      let remedy = fields.count > 2 && !fields[2].isEmpty ? fields[2] : nil
      throw ReelError(kind, message, remedy: remedy)
    }
    throw ReelError(.protocolViolation, "unexpected reply from the capture server's control socket: \(line)")
  }
}

/// Serves the control socket of one volume.
final class ControlSocket: Sendable {
  let volume: ServedVolume
  let listener: SocketListener
  private let registry: ConnectionRegistry
  private let log: @Sendable (String) -> Void
  private let rollback: RollbackService

  init(
    volume: ServedVolume, registry: ConnectionRegistry, access: SocketAccess,
    log: @escaping @Sendable (String) -> Void, rollback: RollbackService
  ) throws {
    self.volume = volume
    self.registry = registry
    self.log = log
    self.rollback = rollback
    listener = try SocketListener.unix(path: volume.controlSocketPath, access: access)
  }

  /// Accepts control connections until `listener.stop()`; call on its own thread.
  func acceptLoop() {
    while let stream = listener.accept() {
      registry.serve(stream) { [self] _ in handle(stream) }
    }
  }

  private func handle(_ stream: SocketStream) {
    do {
      while let line = try ControlProtocol.readLine(stream) {
        let reply: String
        do {
          if line.hasPrefix(RollbackService.requestPrefix) {
            reply = try rollback.perform(line, log: log)
          } else {
            reply = ControlProtocol.okLine(try perform(line))
          }
        } catch let error as ReelError {
          reply = ControlProtocol.errorLine(error)
        }
        try stream.send(Array(reply.utf8))
      }
    } catch {
      log("control socket of \(volume.name): \(error)")
    }
  }

  private func perform(_ line: String) throws -> AppendedRecord {
    guard line.hasPrefix("BOOKMARK ") else {
      throw ReelError(
        .usage, "unknown control request \"\(line.prefix(40))\"",
        remedy: "send `BOOKMARK <label>` (see docs/capture.md)")
    }
    let label = String(line.dropFirst("BOOKMARK ".count))
    let record = try volume.bookmark(label)
    log("bookmark \"\(label)\" on \(volume.name) at seq \(record.seq)")
    return record
  }
}
