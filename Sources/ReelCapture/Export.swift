import ReelCore

/// What an export reads from and writes to: a served volume (journaled writes), or a
/// volume as it was at a past point (read-only).
protocol ExportBackend: Sendable {
  var name: String { get }
  var size: UInt64 { get }
  var preferredBlockSize: UInt32 { get }
  var readOnly: Bool { get }
  /// What NBD_INFO_DESCRIPTION says about the export.
  var summary: String { get }
  func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws
  func write(_ data: UnsafeRawBufferPointer, at offset: UInt64, fua: Bool) throws
  func zero(offset: UInt64, length: UInt64, trim: Bool, fua: Bool) throws
  func flush() throws
}

extension ServedVolume: ExportBackend {
  var size: UInt64 { descriptor.size }
  var preferredBlockSize: UInt32 { descriptor.blockSize }
  var summary: String { "Reel volume \(name), journaled" }
}

/// A volume as it was at one point, from any `VolumeSource` (the live store's view).
/// Writes never reach it: the export says read-only and the connection answers EPERM.
package struct PastPointExport: ExportBackend {
  package let name: String
  package let source: any VolumeSource
  let preferredBlockSize: UInt32
  /// e.g. `bookmark "before upgrade" (seq 812, 2026-11-27T08:00:00Z)`.
  package let point: String

  package init(name: String, source: any VolumeSource, blockSize: UInt32, point: String) {
    self.name = name
    self.source = source
    self.preferredBlockSize = blockSize
    self.point = point
  }

  var size: UInt64 { source.size }
  var readOnly: Bool { true }
  var summary: String { "Reel volume \(name) as of \(point), read-only" }

  func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
    try source.read(into: buffer, at: offset)
  }

  func write(_ data: UnsafeRawBufferPointer, at offset: UInt64, fua: Bool) throws { throw Self.refused(name) }
  func zero(offset: UInt64, length: UInt64, trim: Bool, fua: Bool) throws { throw Self.refused(name) }
  func flush() throws {}

  static func refused(_ name: String) -> ReelError {
    ReelError(.usage, "export \(name) shows a past point and is read-only")
  }
}

/// A served volume as NBD clients see it.
struct Export: Sendable {
  let backend: any ExportBackend
  /// The largest READ or WRITE: the server's request memory must hold one.
  let maximumBlockSize: UInt32

  var name: String { backend.name }
  var size: UInt64 { backend.size }
  var readOnly: Bool { backend.readOnly }

  /// Requests must be aligned to this when the client asked for block sizes. Not the
  /// volume's block size: clients such as nbdfuse pass on 512-byte-aligned requests from
  /// the kernel and fail outright when the server asks for more.
  var minimumBlockSize: UInt32 { 512 }
  var preferredBlockSize: UInt32 { min(backend.preferredBlockSize, maximumBlockSize) }

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
