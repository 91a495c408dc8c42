import ReelCore

/// The transmission phase of one client: requests in, simple replies out, one at a time.
final class NBDConnection {
  private let stream: SocketStream
  private let export: Export
  private let enforceAlignment: Bool
  private let log: @Sendable (String) -> Void
  /// Reused for READ replies; grows to the largest read seen.
  private var readBuffer = UnsafeMutableRawBufferPointer(start: nil, count: 0)

  init(stream: SocketStream, export: Export, enforceAlignment: Bool, log: @escaping @Sendable (String) -> Void) {
    self.stream = stream
    self.export = export
    self.enforceAlignment = enforceAlignment
    self.log = log
  }

  deinit { readBuffer.deallocate() }

  private struct Request {
    var flags: UInt16
    var type: UInt16
    var handle: UInt64
    var offset: UInt64
    var length: UInt32
  }

  /// Serves requests until the client disconnects; returns why the session ended.
  func serve() -> String {
    var header = [UInt8](repeating: 0, count: NBD.requestSize)
    while true {
      do {
        try header.withUnsafeMutableBytes { try stream.receive(into: $0) }
      } catch let closed as ConnectionClosed {
        return closed.received == 0
          ? "client closed the connection"
          : "client went away in the middle of a request header (\(closed.received) of \(NBD.requestSize) bytes)"
      } catch {
        return "receiving failed: \(error)"
      }
      var reader = WireReader(header)
      let magic = reader.u32()!
      let request = Request(
        flags: reader.u16()!, type: reader.u16()!, handle: reader.u64()!, offset: reader.u64()!, length: reader.u32()!)
      guard magic == NBD.requestMagic else {
        // Without a valid header there is no telling where the next one starts.
        return "request magic 0x\(String(magic, radix: 16)) is not NBD_REQUEST_MAGIC; disconnected"
      }
      do {
        if let end = try handle(request) { return end }
      } catch let closed as ConnectionClosed {
        if request.type == NBD.Command.write {
          return
            "client went away after \(closed.received) of \(request.length) bytes of a write at offset \(request.offset); nothing of it was journaled"
        }
        return "client went away before the reply was sent"
      } catch {
        return "connection failed: \(error)"
      }
    }
  }

  /// Handles one request; returns a reason when the session must end.
  private func handle(_ request: Request) throws -> String? {
    switch request.type {
    case NBD.Command.read:
      try read(request)
    case NBD.Command.write:
      return try write(request)
    case NBD.Command.disconnect:
      return "client disconnected"
    case NBD.Command.flush:
      if let refusal = check(request, allowedFlags: NBD.CommandFlag.fua, range: false) {
        try reply(request, refusal)
      } else {
        try reply(request, perform { try export.volume.flush() })
      }
    case NBD.Command.trim, NBD.Command.writeZeroes:
      let trim = request.type == NBD.Command.trim
      let allowed = trim ? NBD.CommandFlag.fua : NBD.CommandFlag.fua | NBD.CommandFlag.noHole
      if let refusal = check(request, allowedFlags: allowed, range: true, writes: true) {
        try reply(request, refusal)
      } else if request.length == 0 {
        try reply(request, nil)
      } else {
        try reply(
          request,
          perform {
            try export.volume.zero(
              offset: request.offset, length: UInt64(request.length), trim: trim,
              fua: request.flags & NBD.CommandFlag.fua != 0)
          })
      }
    default:
      try reply(request, .invalid)
    }
    return nil
  }

  private func read(_ request: Request) throws {
    if let refusal = check(request, allowedFlags: NBD.CommandFlag.fua, range: true, limit: true) {
      try reply(request, refusal)
      return
    }
    let count = Int(request.length)
    if readBuffer.count < count {
      readBuffer.deallocate()
      readBuffer = .allocate(byteCount: count, alignment: 4096)
    }
    let data = UnsafeMutableRawBufferPointer(rebasing: readBuffer[0..<count])
    if count > 0, let failure = perform({ try export.volume.read(into: data, at: request.offset) }) {
      try reply(request, failure)
      return
    }
    try replyBytes(request, nil).withUnsafeBytes { try stream.send([$0, UnsafeRawBufferPointer(data)]) }
  }

  private func write(_ request: Request) throws -> String? {
    if request.length > NBD.maximumPayload {
      try reply(request, .invalid)
      return
        "write of \(request.length) bytes exceeds the \(NBD.maximumPayload)-byte limit; disconnected instead of reading it"
    }
    if let refusal = check(request, allowedFlags: NBD.CommandFlag.fua, range: true, writes: true) {
      try stream.discard(count: Int(request.length))
      try reply(request, refusal)
      return nil
    }
    let count = Int(request.length)
    let data = try [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
      try stream.receive(into: UnsafeMutableRawBufferPointer(buffer))
      initialized = count
    }
    guard count > 0 else {
      try reply(request, nil)
      return nil
    }
    try reply(
      request,
      perform {
        try export.volume.write(data, at: request.offset, fua: request.flags & NBD.CommandFlag.fua != 0)
      })
    return nil
  }

  /// The error a request earns before anything is done, or nil when it is acceptable.
  private func check(
    _ request: Request, allowedFlags: UInt16, range: Bool, writes: Bool = false, limit: Bool = false
  ) -> NBD.ErrorCode? {
    if request.flags & ~allowedFlags != 0 { return .invalid }
    if writes && export.readOnly { return .notPermitted }
    guard range else { return nil }
    let (end, overflow) = request.offset.addingReportingOverflow(UInt64(request.length))
    if overflow || end > export.size { return writes ? .noSpace : .invalid }
    if limit && request.length > export.maximumBlockSize { return .invalid }
    if enforceAlignment {
      let alignment = UInt64(export.minimumBlockSize)
      if request.offset % alignment != 0 || UInt64(request.length) % alignment != 0 { return .invalid }
    }
    return nil
  }

  /// Runs a volume operation, turning a failure into EIO (logged once here).
  private func perform(_ body: () throws -> Void) -> NBD.ErrorCode? {
    do {
      try body()
      return nil
    } catch {
      log("export \(export.name): \(error)")
      return .io
    }
  }

  private func replyBytes(_ request: Request, _ error: NBD.ErrorCode?) -> [UInt8] {
    var writer = WireWriter(capacity: NBD.simpleReplySize)
    writer.put(NBD.simpleReplyMagic)
    writer.put(error?.rawValue ?? 0)
    writer.put(request.handle)
    return writer.bytes
  }

  private func reply(_ request: Request, _ error: NBD.ErrorCode?) throws {
    try stream.send(replyBytes(request, error))
  }
}
