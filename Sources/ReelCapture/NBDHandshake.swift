/// The client broke a rule of the protocol badly enough that the stream cannot continue.
struct ProtocolViolation: Error, CustomStringConvertible {
  var description: String
  init(_ description: String) { self.description = description }
}

/// How option haggling ended.
enum HandshakeOutcome {
  /// The client chose `export`; `blockSizesAgreed` when it asked for NBD_INFO_BLOCK_SIZE
  /// with NBD_OPT_GO and so promised to respect the advertised alignment.
  case transmission(Export, blockSizesAgreed: Bool)
  /// The session ends without transmission (NBD_OPT_ABORT, unknown export name).
  case ended(String)
}

/// The fixed newstyle handshake, server side (proto.md "Fixed newstyle negotiation"), with
/// NBD_OPT_STARTTLS ("TLS support") when the policy offers TLS.
struct NBDHandshake {
  let stream: SocketStream
  let exports: ExportTable
  var tls: TLSPolicy = .plain
  /// A transmission outcome holds a slot of its export, which the caller gives back.
  let slots: ExportSlots
  /// Told about refusals that do not end the handshake.
  var note: (String) -> Void = { _ in }

  func run() throws -> HandshakeOutcome {
    var greeting = WireWriter()
    greeting.put(NBD.initPassword)
    greeting.put(NBD.optionMagic)
    greeting.put(NBD.HandshakeFlag.fixedNewstyle | NBD.HandshakeFlag.noZeroes)
    try stream.send(greeting.bytes)

    var flagsReader = WireReader(try stream.receive(count: 4))
    let clientFlags = flagsReader.u32()!
    guard clientFlags & ~NBD.ClientFlag.known == 0 else {
      throw ProtocolViolation("client flags 0x\(String(clientFlags, radix: 16)) include bits this server never offered")
    }
    let fixedNewstyle = clientFlags & NBD.ClientFlag.fixedNewstyle != 0
    let noZeroes = clientFlags & NBD.ClientFlag.noZeroes != 0
    var session: TLSSession?

    while true {
      var header = WireReader(try stream.receive(count: 16))
      let magic = header.u64()!
      let option = header.u32()!
      let length = header.u32()!
      guard magic == NBD.optionMagic else {
        throw ProtocolViolation("option header starts with 0x\(String(magic, radix: 16)), not IHAVEOPT")
      }
      guard length <= NBD.maximumOptionLength else {
        throw ProtocolViolation("option \(option) carries \(length) bytes of data (at most \(NBD.maximumOptionLength))")
      }
      let data = try stream.receive(count: Int(length))

      if option == NBD.Option.exportName {
        let name = String(decoding: data, as: UTF8.self)
        // This option cannot report an error: the protocol says to end the session.
        guard let export = exports.lookup(name) else {
          return .ended("no export named \"\(name)\" (NBD_OPT_EXPORT_NAME)")
        }
        switch tls.access(to: export.name, session: session) {
        case .granted: break
        case .tlsRequired: return .ended("export \"\(export.name)\" needs TLS; NBD_OPT_EXPORT_NAME came without it")
        case .refused(let reason): return .ended("\(reason) (NBD_OPT_EXPORT_NAME)")
        }
        guard slots.take(export.name) else { return .ended("refused: \(slots.refusal(export.name))") }
        var reply = WireWriter()
        reply.put(export.size)
        reply.put(export.transmissionFlags)
        if !noZeroes { reply.put([UInt8](repeating: 0, count: NBD.reservedZeroes)) }
        do {
          try stream.send(reply.bytes)
        } catch {
          slots.give(export.name)
          throw error
        }
        return .transmission(export, blockSizesAgreed: false)
      }
      guard fixedNewstyle else {
        throw ProtocolViolation("option \(option) from a client that did not agree to fixed newstyle negotiation")
      }
      if tls.mode == .require && session == nil && option != NBD.Option.startTLS && option != NBD.Option.abort {
        try reply(
          option, NBD.Reply.errTLSRequired,
          message: "this server requires TLS: send NBD_OPT_STARTTLS first (an nbds:// URI with a key)")
        continue
      }
      switch option {
      case NBD.Option.abort:
        try? reply(option, NBD.Reply.ack)
        return .ended("client aborted the handshake")
      case NBD.Option.list:
        guard data.isEmpty else {
          try reply(option, NBD.Reply.errInvalid, message: "NBD_OPT_LIST takes no data")
          continue
        }
        for export in exports.exports where tls.access(to: export.name, session: session) == .granted {
          var entry = WireWriter()
          entry.put(UInt32(export.name.utf8.count))
          entry.put(Array(export.name.utf8))
          try reply(option, NBD.Reply.server, data: entry.bytes)
        }
        try reply(option, NBD.Reply.ack)
      case NBD.Option.startTLS:
        guard let server = tls.server else {
          try reply(
            option, NBD.Reply.errUnsupported,
            message: "TLS is not enabled on this server (reel serve --tls-psk FILE or --tls-certificates DIR)")
          continue
        }
        guard session == nil, data.isEmpty else {
          let problem = session == nil ? "NBD_OPT_STARTTLS takes no data" : "TLS is already on"
          try reply(option, NBD.Reply.errInvalid, message: problem)
          continue
        }
        try reply(option, NBD.Reply.ack)
        session = try stream.startTLS(server)
      case NBD.Option.info, NBD.Option.go:
        if let outcome = try informOrGo(option: option, data: data, session: session) { return outcome }
      default:
        try reply(option, NBD.Reply.errUnsupported, message: "option \(option) is not supported by reel serve")
      }
    }
  }

  /// NBD_OPT_INFO and NBD_OPT_GO; returns an outcome only when GO succeeded.
  private func informOrGo(option: UInt32, data: [UInt8], session: TLSSession?) throws -> HandshakeOutcome? {
    var reader = WireReader(data)
    guard let nameLength = reader.u32(), data.count >= 6, Int(nameLength) <= data.count - 6,
      let nameBytes = reader.raw(Int(nameLength)), let count = reader.u16(), reader.remaining == Int(count) * 2
    else {
      try reply(option, NBD.Reply.errInvalid, message: "malformed NBD_OPT_INFO/NBD_OPT_GO data")
      return nil
    }
    let requests = (0..<Int(count)).map { _ in reader.u16()! }
    let name = String(decoding: nameBytes, as: UTF8.self)
    guard let export = exports.lookup(name) else {
      let known = exports.exports.map(\.name).joined(separator: ", ")
      let message =
        name.isEmpty
        ? "no default export: this server serves \(known); name one" : "no export named \"\(name)\"; served: \(known)"
      try reply(option, NBD.Reply.errUnknown, message: message)
      return nil
    }
    switch tls.access(to: export.name, session: session) {
    case .granted:
      break
    case .tlsRequired:
      try reply(
        option, NBD.Reply.errTLSRequired, message: "export \(export.name) needs TLS: send NBD_OPT_STARTTLS first")
      return nil
    case .refused(let reason):
      try reply(option, NBD.Reply.errPolicy, message: reason)
      return nil
    }
    // Refused before anything is said about the export, so the client can try again later.
    if option == NBD.Option.go && !slots.take(export.name) {
      note("refused NBD_OPT_GO: \(slots.refusal(export.name))")
      try reply(option, NBD.Reply.errPolicy, message: slots.refusal(export.name) + "; try again later")
      return nil
    }
    do {
      return try inform(option: option, export: export, requests: requests)
    } catch {
      if option == NBD.Option.go { slots.give(export.name) }
      throw error
    }
  }

  private func inform(option: UInt32, export: Export, requests: [UInt16]) throws -> HandshakeOutcome? {
    var info = WireWriter()
    info.put(NBD.Info.export)
    info.put(export.size)
    info.put(export.transmissionFlags)
    try reply(option, NBD.Reply.info, data: info.bytes)
    // Sent even unasked (the protocol allows it); enforced only for clients that asked.
    var sizes = WireWriter()
    sizes.put(NBD.Info.blockSize)
    sizes.put(export.minimumBlockSize)
    sizes.put(export.preferredBlockSize)
    sizes.put(export.maximumBlockSize)
    try reply(option, NBD.Reply.info, data: sizes.bytes)
    if requests.contains(NBD.Info.name) {
      var canonical = WireWriter()
      canonical.put(NBD.Info.name)
      canonical.put(Array(export.name.utf8))
      try reply(option, NBD.Reply.info, data: canonical.bytes)
    }
    if requests.contains(NBD.Info.description) {
      var description = WireWriter()
      description.put(NBD.Info.description)
      description.put(Array(export.backend.summary.utf8))
      try reply(option, NBD.Reply.info, data: description.bytes)
    }
    try reply(option, NBD.Reply.ack)
    guard option == NBD.Option.go else { return nil }
    return .transmission(export, blockSizesAgreed: requests.contains(NBD.Info.blockSize))
  }

  private func reply(_ option: UInt32, _ type: UInt32, data: [UInt8] = [], message: String? = nil) throws {
    let payload = message.map { Array($0.utf8) } ?? data
    var header = WireWriter(capacity: 20 + payload.count)
    header.put(NBD.optionReplyMagic)
    header.put(option)
    header.put(type)
    header.put(UInt32(payload.count))
    header.put(payload)
    try stream.send(header.bytes)
  }
}
