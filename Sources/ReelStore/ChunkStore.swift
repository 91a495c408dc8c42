import Foundation
import ReelCodec
import ReelCore
import ReelJournal

/// Where chunk bytes live. Kept this small so an object store or another disk can take
/// the place of a local folder without touching ingest, views or prune.
public protocol ChunkBackend: Sendable {
  func contains(_ key: String) -> Bool
  /// Stores `bytes` under `key` atomically (readers see all of it or nothing). Need not
  /// be durable until `makeDurable()` returns.
  func put(_ key: String, _ bytes: [UInt8]) throws
  func get(_ key: String) throws -> [UInt8]
  func delete(_ key: String) throws
  /// Every key, with its last modification time.
  func list() throws -> [(key: String, modified: Timestamp)]
  func makeDurable() throws
}

/// Chunks as files under `<store>/chunks/<first two hex digits>/<hex>`.
public struct FolderChunkBackend: ChunkBackend {
  public let root: String

  public init(root: String) { self.root = root }

  func path(_ key: String) -> String { root + "/" + key.prefix(2) + "/" + key }

  public func contains(_ key: String) -> Bool { access(path(key), F_OK) == 0 }

  public func put(_ key: String, _ bytes: [UInt8]) throws {
    let final = path(key)
    let directory = (final as NSString).deletingLastPathComponent
    if access(directory, F_OK) != 0 { try Durable.makeDirectory(directory) }
    let temporary = final + ".tmp-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    do {
      let file = try PosixFile(path: temporary, flags: O_WRONLY | O_CREAT | O_EXCL)
      try file.write(bytes, at: 0)
      guard rename(temporary, final) == 0 else { throw PosixFile.error(errno, "rename", final) }
    } catch {
      unlink(temporary)
      throw error
    }
  }

  public func get(_ key: String) throws -> [UInt8] {
    let file = try PosixFile.openForReading(path(key))
    return try file.read(at: 0, count: Int(try file.size()))
  }

  public func delete(_ key: String) throws {
    guard unlink(path(key)) == 0 || errno == ENOENT else { throw PosixFile.error(errno, "delete", path(key)) }
  }

  public func list() throws -> [(key: String, modified: Timestamp)] {
    var keys: [(String, Timestamp)] = []
    let fanout = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
    for directory in fanout where directory.count == 2 {
      for name in (try? FileManager.default.contentsOfDirectory(atPath: root + "/" + directory)) ?? [] {
        var info = stat()
        let full = root + "/" + directory + "/" + name
        guard stat(full, &info) == 0 else { continue }
        let modified = Timestamp(
          nanoseconds: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
        keys.append((name, modified))
      }
    }
    return keys
  }

  public func makeDurable() throws {
    if access(root, F_OK) == 0 { try Durable.syncFileSystem(containing: root) }
  }
}

/// A chunk: up to one store block of a volume's bytes, named by the SHA-256 of its
/// plaintext. See docs/store-format.md for the stored layout.
public struct ChunkCodec {
  static let magic: [UInt8] = Array("RCH1".utf8)
  static let headerSize = 16
  static let encodingRaw: UInt8 = 0
  static let encodingZstd: UInt8 = 1

  let compressor = ZstdCompressor(level: 3)

  /// Compressed when that saves at least 1/32 of the size; stored raw otherwise.
  func encode(_ plaintext: [UInt8]) -> [UInt8] {
    let compressed = compressor.compress(plaintext)
    let useZstd = compressed.count + plaintext.count / 32 < plaintext.count
    let body = useZstd ? compressed : plaintext
    var header = Self.magic
    header += [useZstd ? Self.encodingZstd : Self.encodingRaw, 0, 0, 0]
    withUnsafeBytes(of: UInt32(plaintext.count).littleEndian) { header += $0 }
    withUnsafeBytes(of: CRC32C.checksum(body).littleEndian) { header += $0 }
    return header + body
  }

  /// Decodes and, with `verify`, checks the plaintext against its name.
  static func decode(_ stored: [UInt8], key: String, verify: Bool) throws -> [UInt8] {
    guard stored.count >= headerSize, Array(stored[0..<4]) == magic else {
      throw ReelError(.corrupt, "chunk \(key): not a Reel chunk (bad header)")
    }
    let length = Int(stored[8]) | Int(stored[9]) << 8 | Int(stored[10]) << 16 | Int(stored[11]) << 24
    let checksum =
      UInt32(stored[12]) | UInt32(stored[13]) << 8 | UInt32(stored[14]) << 16 | UInt32(stored[15]) << 24
    let body = Array(stored[headerSize...])
    guard CRC32C.checksum(body) == checksum else {
      throw ReelError(.corrupt, "chunk \(key): stored bytes fail their checksum")
    }
    let plaintext: [UInt8]
    switch stored[4] {
    case encodingRaw: plaintext = body
    case encodingZstd: plaintext = try Zstd.decompress(body, expectedSize: length, what: "chunk \(key)")
    default: throw ReelError(.corrupt, "chunk \(key): unknown encoding \(stored[4])")
    }
    guard plaintext.count == length else {
      throw ReelError(.corrupt, "chunk \(key): holds \(plaintext.count) bytes, header says \(length)")
    }
    if verify, SHA256Digest.hash(plaintext).hex != key {
      throw ReelError(.corrupt, "chunk \(key): content does not match its SHA-256 name")
    }
    return plaintext
  }
}
