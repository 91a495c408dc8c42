import Foundation
import ReelCore

/// The transmission phase of one client. One thread receives requests (and write
/// payloads) in order; the server's request workers carry them out and send the replies,
/// so checksumming and copying one request overlaps with receiving the next. NBD lets
/// replies come in any order; clients wait for a reply before relying on its effect.
///
/// Small writes without FUA are the exception: the receiving thread journals them and
/// replies itself (`receiverWriteLimit`).
final class NBDConnection: Sendable {
  private let stream: SocketStream
  private let export: Export
  private let enforceAlignment: Bool
  private let log: @Sendable (String) -> Void
  private let sending = NSLock()
  /// Requests queued or being carried out, and their payload bytes: bounded by count and
  /// bytes, so one client cannot take all of the server's request memory or workers;
  /// receiving waits until there is room.
  private let inFlight = Locked(InFlight())
  static let inFlightLimit = 16
  static let inFlightBytesLimit = 64 << 20
  /// Writes of at most this many bytes without FUA are journaled by the receiving thread:
  /// appending one costs a few microseconds (the journal's fdatasync runs outside its
  /// lock), less than waking a worker for it and switching to it. fio's random 4-64 KiB
  /// writes at iodepth 16 with a FLUSH every few writes (benchmarks/capture-random.sh,
  /// one round each, three pairs): 28,093-31,126 IOPS this way against 20,967-22,103
  /// through the workers, p99 write latency 0.36-0.43 ms against 0.63-0.69, and a quarter
  /// less server CPU. Larger writes still go to the workers, where receiving the next
  /// payload overlaps with journaling this one (one nbdcopy connection of 256 KiB writes
  /// was ~3% slower journaled by the receiver); FUA writes and FLUSH wait on the disk,
  /// and reads may, so they do too.
  static let receiverWriteLimit = 64 << 10
  private let workers: RequestWorkers
  /// Shared by every connection of the server: buffers are taken before a payload is
  /// received or a read is queued, so receiving waits while the server's budget is spent.
  private let memory: RequestMemory
  private let limits: ServerLimits
  /// Why sending failed, once it did: the connection ends and later replies are dropped
  /// at once instead of each waiting out the send timeout.
  private let sendFailure = Locked<String?>(nil)

  init(
    stream: SocketStream, export: Export, enforceAlignment: Bool, memory: RequestMemory, workers: RequestWorkers,
    limits: ServerLimits, log: @escaping @Sendable (String) -> Void
  ) {
    self.workers = workers
    self.stream = stream
    self.export = export
    self.enforceAlignment = enforceAlignment
    self.memory = memory
    self.limits = limits
    self.log = log
  }

  struct Request: Sendable {
    var flags: UInt16
    var type: UInt16
    var handle: UInt64
    var offset: UInt64
    var length: UInt32

    var fua: Bool { flags & NBD.CommandFlag.fua != 0 }
  }

  /// A request that passed its checks, with its payload when it is a write.
  enum Work: Sendable {
    case read(Request, PooledBuffer)
    case write(Request, PooledBuffer)
    case flush(Request)
    case zero(Request, trim: Bool)
  }

  /// Serves requests until the client disconnects; returns why the session ended. Every
  /// request received before that is answered first.
  func serve() -> String {
    let reason = receiveRequests()
    inFlight.withLock(when: { $0.count == 0 }) { _ in }
    return sendFailure.withLock { $0 } ?? reason
  }

  struct InFlight {
    var count = 0
    var bytes = 0
  }

  /// Hands `item` to the workers once this connection has room for it; false (nothing
  /// queued) when the workers are stopping.
  private func queue(_ item: Work, cost: Int) -> Bool {
    inFlight.withLock(
      when: { $0.count == 0 || ($0.count < Self.inFlightLimit && $0.bytes + cost <= Self.inFlightBytesLimit) }
    ) {
      $0.count += 1
      $0.bytes += cost
    }
    let queued = workers.run { [self] in
      carryOut(item)
      finished(cost: cost)
    }
    if !queued { finished(cost: cost) }
    return queued
  }

  private func finished(cost: Int) {
    inFlight.withLock {
      $0.count -= 1
      $0.bytes -= cost
    }
    inFlight.broadcast()
  }

  private var sendingFailed: Bool { sendFailure.withLock { $0 != nil } }

  /// Memory for one request's payload; nil when the connection must end instead (its
  /// replies cannot be sent, or the server is shutting down).
  private func buffer(for request: Request) -> PooledBuffer? {
    memory.take(Int(request.length), unless: { sendingFailed })
  }

  private func receiveRequests() -> String {
    var header = [UInt8](repeating: 0, count: NBD.requestSize)
    while true {
      do {
        try header.withUnsafeMutableBytes { try stream.receive(into: $0) }
      } catch let closed as ConnectionClosed {
        return closed.received == 0
          ? "client closed the connection"
          : "client went away in the middle of a request header (\(closed.received) of \(NBD.requestSize) bytes)"
      } catch let failure as SocketFailure where failure.timedOut {
        let limit = limits.idleTimeout.map { " for \(ServerLimits.describe($0))" } ?? ""
        return "client sent nothing\(limit) (--idle-timeout); disconnected"
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

  /// Checks one request on the receiving thread and queues it (refusals are answered at
  /// once); returns a reason when the session must end.
  private func handle(_ request: Request) throws -> String? {
    switch request.type {
    case NBD.Command.read:
      if let refusal = check(request, allowedFlags: NBD.CommandFlag.fua, range: true, limit: true) {
        try reply(request, refusal)
      } else if request.length == 0 {
        try reply(request, nil)
      } else {
        guard let data = buffer(for: request) else { return try endWithoutMemory(request) }
        if !queue(.read(request, data), cost: Int(request.length)) { memory.recycle(data) }
      }
    case NBD.Command.write:
      return try receiveWrite(request)
    case NBD.Command.disconnect:
      return "client disconnected"
    case NBD.Command.flush:
      if let refusal = check(request, allowedFlags: NBD.CommandFlag.fua, range: false) {
        try reply(request, refusal)
      } else {
        _ = queue(.flush(request), cost: 0)
      }
    case NBD.Command.trim, NBD.Command.writeZeroes:
      let trim = request.type == NBD.Command.trim
      let allowed = trim ? NBD.CommandFlag.fua : NBD.CommandFlag.fua | NBD.CommandFlag.noHole
      if let refusal = check(
        request, allowedFlags: allowed, range: true, writes: true, pastEnd: trim ? .invalid : .noSpace)
      {
        try reply(request, refusal)
      } else if request.length == 0 {
        try reply(request, nil)
      } else {
        _ = queue(.zero(request, trim: trim), cost: 0)
      }
    default:
      try reply(request, .invalid)
    }
    return nil
  }

  private func receiveWrite(_ request: Request) throws -> String? {
    if request.length > NBD.maximumPayload {
      try reply(request, .invalid)
      return
        "write of \(request.length) bytes exceeds the \(NBD.maximumPayload)-byte limit; disconnected instead of reading it"
    }
    if let refusal = check(request, allowedFlags: NBD.CommandFlag.fua, range: true, writes: true, limit: true) {
      try stream.discard(count: Int(request.length))
      try reply(request, refusal)
      return nil
    }
    let count = Int(request.length)
    if count == 0 {
      try reply(request, nil)
      return nil
    }
    // Received straight into the buffer the journal writes from: one copy from the socket.
    guard let payload = buffer(for: request) else { return try endWithoutMemory(request) }
    do {
      try stream.receive(into: payload.bytes)
    } catch {
      memory.recycle(payload)
      throw error
    }
    if !request.fua && count <= Self.receiverWriteLimit {
      carryOut(.write(request, payload))
      return nil
    }
    if !queue(.write(request, payload), cost: count) { memory.recycle(payload) }
    return nil
  }

  /// The request got no memory: its replies cannot be sent, or the server is stopping
  /// (then the client is told, and its payload, if any, is left unread).
  private func endWithoutMemory(_ request: Request) throws -> String {
    if let failure = sendFailure.withLock({ $0 }) { return failure }
    try reply(request, .shuttingDown)
    return "server shutting down; request at offset \(request.offset) refused with ESHUTDOWN"
  }

  /// Runs on a worker: does the work and sends the reply. A client gone by then is noticed
  /// by the receiving thread.
  private func carryOut(_ item: Work) {
    let volume = export.backend
    switch item {
    case .read(let request, let data):
      defer { memory.recycle(data) }
      if let failure = perform({ try volume.read(into: data.bytes, at: request.offset) }) {
        try? reply(request, failure)
      } else {
        try? send(replyBytes(request, nil), payload: UnsafeRawBufferPointer(data.bytes))
      }
    case .write(let request, let data):
      let failure = perform {
        try volume.write(UnsafeRawBufferPointer(data.bytes), at: request.offset, fua: request.fua)
      }
      memory.recycle(data)
      try? reply(request, failure)
    case .flush(let request):
      try? reply(request, perform { try volume.flush() })
    case .zero(let request, let trim):
      try? reply(
        request,
        perform {
          try volume.zero(offset: request.offset, length: UInt64(request.length), trim: trim, fua: request.fua)
        })
    }
  }

  /// The error a request earns before anything is done, or nil when it is acceptable.
  private func check(
    _ request: Request, allowedFlags: UInt16, range: Bool, writes: Bool = false, limit: Bool = false,
    pastEnd: NBD.ErrorCode? = nil
  ) -> NBD.ErrorCode? {
    if request.flags & ~allowedFlags != 0 { return .invalid }
    if writes && export.readOnly { return .notPermitted }
    guard range else { return nil }
    let (end, overflow) = request.offset.addingReportingOverflow(UInt64(request.length))
    // The protocol asks for ENOSPC when a write reaches past the end, EINVAL otherwise.
    if overflow || end > export.size { return pastEnd ?? (writes ? .noSpace : .invalid) }
    if limit && request.length > export.maximumBlockSize { return .invalid }
    if enforceAlignment {
      let alignment = UInt64(export.minimumBlockSize)
      if request.offset % alignment != 0 || UInt64(request.length) % alignment != 0 { return .invalid }
    }
    return nil
  }

  /// Runs a volume operation, turning a failure into ENOSPC when the disk (or quota) is
  /// full, which tells the client its data was not taken and that trying later may work,
  /// and into EIO otherwise (logged once here).
  private func perform(_ body: () throws -> Void) -> NBD.ErrorCode? {
    do {
      try body()
      return nil
    } catch {
      log("export \(export.name): \(error)")
      let code = (error as? ReelError)?.errno
      return code == ENOSPC || code == EDQUOT ? .noSpace : .io
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
    try send(replyBytes(request, error), payload: nil)
  }

  /// Replies from several threads never interleave. The first failure ends the
  /// connection: receiving stops, so no more requests take memory for replies that
  /// cannot be sent.
  private func send(_ header: [UInt8], payload: UnsafeRawBufferPointer?) throws {
    do {
      try sending.withLock {
        if let failure = sendFailure.withLock({ $0 }) { throw SendAbandoned(reason: failure) }
        try header.withUnsafeBytes { head in
          try stream.send(payload.map { [head, $0] } ?? [head])
        }
      }
    } catch let error where !(error is SendAbandoned) {
      let reason =
        switch error {
        case let failure as SocketFailure where failure.timedOut:
          "client took no reply for \(ServerLimits.describe(limits.sendTimeout)) (--send-timeout); disconnected"
        case is ConnectionClosed: "client went away before the reply was sent"
        default: "sending a reply failed: \(error)"
        }
      sendFailure.withLock { $0 = $0 ?? reason }
      stream.stopReceiving()
      memory.wakeWaiters()
      throw error
    }
  }

  private struct SendAbandoned: Error {
    var reason: String
  }
}
