/// A served volume as NBD clients see it.
struct Export: Sendable {
  let volume: ServedVolume
  /// Later: exports of a point in time. Writes to a read-only export fail with EPERM.
  let readOnly: Bool

  var name: String { volume.name }
  var size: UInt64 { volume.descriptor.size }

  /// Requests must be aligned to this when the client asked for block sizes. Not the
  /// volume's block size: clients such as nbdfuse pass on 512-byte-aligned requests from
  /// the kernel and fail outright when the server asks for more.
  var minimumBlockSize: UInt32 { 512 }
  var preferredBlockSize: UInt32 { volume.descriptor.blockSize }
  var maximumBlockSize: UInt32 { NBD.maximumPayload }

  var transmissionFlags: UInt16 {
    // Every connection appends to the same journal and reads the same image file, and a
    // flush syncs everything appended so far: flushes and FUA cover all connections.
    var flags = NBD.TransmissionFlag.hasFlags | NBD.TransmissionFlag.sendFlush | NBD.TransmissionFlag.canMultiConn
    if readOnly {
      flags |= NBD.TransmissionFlag.readOnly
    } else {
      flags |= NBD.TransmissionFlag.sendFUA | NBD.TransmissionFlag.sendTrim | NBD.TransmissionFlag.sendWriteZeroes
    }
    return flags
  }
}

/// The exports of one server, looked up by the name a client sends.
struct ExportTable: Sendable {
  let exports: [Export]

  /// An empty name means the default export, which exists when exactly one is served.
  func lookup(_ name: String) -> Export? {
    if name.isEmpty { return exports.count == 1 ? exports[0] : nil }
    return exports.first { $0.name == name }
  }
}
