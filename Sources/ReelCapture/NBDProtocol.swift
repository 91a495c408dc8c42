/// Numbers of the NBD protocol (NetworkBlockDevice/nbd doc/proto.md). Every field on the
/// wire is big-endian.
enum NBD {
  static let initPassword: UInt64 = 0x4E42_444D_4147_4943  // "NBDMAGIC"
  static let optionMagic: UInt64 = 0x4948_4156_454F_5054  // "IHAVEOPT"
  static let optionReplyMagic: UInt64 = 0x0003_E889_0455_65A9
  static let requestMagic: UInt32 = 0x2560_9513
  static let simpleReplyMagic: UInt32 = 0x6744_6698

  enum HandshakeFlag {
    static let fixedNewstyle: UInt16 = 1 << 0
    static let noZeroes: UInt16 = 1 << 1
  }

  enum ClientFlag {
    static let fixedNewstyle: UInt32 = 1 << 0
    static let noZeroes: UInt32 = 1 << 1
    static let known: UInt32 = fixedNewstyle | noZeroes
  }

  enum TransmissionFlag {
    static let hasFlags: UInt16 = 1 << 0
    static let readOnly: UInt16 = 1 << 1
    static let sendFlush: UInt16 = 1 << 2
    static let sendFUA: UInt16 = 1 << 3
    static let sendTrim: UInt16 = 1 << 5
    static let sendWriteZeroes: UInt16 = 1 << 6
    static let canMultiConn: UInt16 = 1 << 8
  }

  enum Option {
    static let exportName: UInt32 = 1
    static let abort: UInt32 = 2
    static let list: UInt32 = 3
    static let info: UInt32 = 6
    static let go: UInt32 = 7
  }

  enum Reply {
    static let ack: UInt32 = 1
    static let server: UInt32 = 2
    static let info: UInt32 = 3
    static let errUnsupported: UInt32 = 0x8000_0001
    static let errPolicy: UInt32 = 0x8000_0002
    static let errInvalid: UInt32 = 0x8000_0003
    static let errUnknown: UInt32 = 0x8000_0006
  }

  enum Info {
    static let export: UInt16 = 0
    static let name: UInt16 = 1
    static let description: UInt16 = 2
    static let blockSize: UInt16 = 3
  }

  enum Command {
    static let read: UInt16 = 0
    static let write: UInt16 = 1
    static let disconnect: UInt16 = 2
    static let flush: UInt16 = 3
    static let trim: UInt16 = 4
    static let writeZeroes: UInt16 = 6
  }

  enum CommandFlag {
    static let fua: UInt16 = 1 << 0
    static let noHole: UInt16 = 1 << 1
  }

  /// Error values of replies; the protocol fixes them to these Linux errno numbers.
  enum ErrorCode: UInt32, Sendable {
    case notPermitted = 1  // EPERM
    case io = 5  // EIO
    case invalid = 22  // EINVAL
    case noSpace = 28  // ENOSPC
    case overflow = 75  // EOVERFLOW
    case shuttingDown = 108  // ESHUTDOWN
  }

  /// The largest READ or WRITE payload; the protocol says clients should never need more
  /// and that servers must not treat this much as abuse.
  static let maximumPayload: UInt32 = 32 << 20
  /// Longest option data accepted in the handshake: export names are at most 4096 bytes.
  static let maximumOptionLength: UInt32 = 16 << 10
  static let requestSize = 28
  static let simpleReplySize = 16
  static let reservedZeroes = 124
}

/// Appends big-endian fields to a byte array.
struct WireWriter {
  var bytes: [UInt8] = []

  init(capacity: Int = 32) { bytes.reserveCapacity(capacity) }

  mutating func put(_ value: UInt16) { withUnsafeBytes(of: value.bigEndian) { bytes += $0 } }
  mutating func put(_ value: UInt32) { withUnsafeBytes(of: value.bigEndian) { bytes += $0 } }
  mutating func put(_ value: UInt64) { withUnsafeBytes(of: value.bigEndian) { bytes += $0 } }
  mutating func put(_ raw: [UInt8]) { bytes += raw }
}

/// Reads big-endian fields from bytes received, reporting a short buffer as nil.
struct WireReader {
  let bytes: [UInt8]
  private(set) var position = 0

  init(_ bytes: [UInt8]) { self.bytes = bytes }

  var remaining: Int { bytes.count - position }

  mutating func u16() -> UInt16? { unsigned(UInt16.self) }
  mutating func u32() -> UInt32? { unsigned(UInt32.self) }
  mutating func u64() -> UInt64? { unsigned(UInt64.self) }

  mutating func raw(_ count: Int) -> [UInt8]? {
    guard count >= 0, remaining >= count else { return nil }
    defer { position += count }
    return Array(bytes[position..<(position + count)])
  }

  private mutating func unsigned<T: FixedWidthInteger>(_: T.Type) -> T? {
    let size = MemoryLayout<T>.size
    guard remaining >= size else { return nil }
    var value: T = 0
    for index in position..<(position + size) { value = value << 8 | T(bytes[index]) }
    position += size
    return value
  }
}
