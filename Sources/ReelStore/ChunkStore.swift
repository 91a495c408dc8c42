import Foundation
import GRDB
import ReelCodec
import ReelCore
import ReelIO

/// Where chunk bytes live: append-only pack files. Kept this small so an object store or
/// another disk can take the place of a local folder without touching ingest, views or
/// prune. Appends need not be durable until `makeDurable` returns.
package protocol PackBackend: Sendable {
  /// Appends `bytes` to `pack` (creating it) and returns the offset they start at.
  func append(_ pack: String, _ bytes: [UInt8]) throws -> UInt64
  func read(_ pack: String, offset: UInt64, length: Int) throws -> [UInt8]
  /// Reads up to `buffer.count` bytes from `offset` into `buffer`; returns how many (fewer
  /// only at the end of the pack).
  func read(_ pack: String, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int
  /// nil when the pack does not exist.
  func size(_ pack: String) throws -> UInt64?
  func truncate(_ pack: String, to size: UInt64) throws
  func delete(_ pack: String) throws
  func list() throws -> [(pack: String, size: UInt64, modified: Timestamp)]
  func makeDurable(_ pack: String) throws
  /// A new pack written from its start to its end that nothing reads before `finish`
  /// returns (an import's packs): a backend may write it a faster way than `append`.
  func createWhole(_ pack: String) throws -> any WholePackWriter
}

/// Writes one new pack from start to end; `finish` makes it durable.
package protocol WholePackWriter: AnyObject {
  var size: UInt64 { get }
  /// Appends `bytes`; returns the offset they start at.
  func append(_ bytes: [UInt8]) throws -> UInt64
  /// Writes what is buffered and makes the pack durable, with its directory entry.
  func finish() throws
}

extension PackBackend {
  package func createWhole(_ pack: String) throws -> any WholePackWriter {
    AppendingPackWriter(backend: self, pack: pack)
  }
  package func read(_ pack: String, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    let bytes = try read(pack, offset: offset, length: buffer.count)
    bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
    return bytes.count
  }
}

/// A whole pack written through `PackBackend.append`, for backends without a faster way.
final class AppendingPackWriter: WholePackWriter {
  let backend: any PackBackend
  let pack: String
  private(set) var size: UInt64 = 0

  init(backend: any PackBackend, pack: String) {
    self.backend = backend
    self.pack = pack
  }

  func append(_ bytes: [UInt8]) throws -> UInt64 {
    let offset = try backend.append(pack, bytes)
    size = offset + UInt64(bytes.count)
    return offset
  }

  func finish() throws { if size > 0 { try backend.makeDurable(pack) } }
}

/// A whole pack file written with direct I/O (1 MiB writes on a background thread): an
/// import writes hundreds of MiB that are not read again soon, and filling fresh
/// page-cache pages cost the importing thread more than the copy itself (measured on
/// rehydration: a third of that thread's time was the kernel's page-cache work).
final class DirectPackWriter: WholePackWriter {
  private let writer: DirectFileWriter
  private let directory: String
  private var finished = false

  init(path: String) throws {
    directory = (path as NSString).deletingLastPathComponent
    if access(directory, F_OK) != 0 { try Durable.makeDirectory(directory) }
    writer = try DirectFileWriter(creating: path)
  }

  var size: UInt64 { writer.size }

  func append(_ bytes: [UInt8]) throws -> UInt64 {
    let offset = writer.size
    try writer.append(bytes)
    return offset
  }

  func finish() throws {
    guard !finished else { return }
    try writer.finish()
    try writer.file.syncData()
    try Durable.syncDirectory(directory)
    finished = true
  }
}

/// Packs as files `<root>/<first two hex digits>/<id>.pack`, descriptors kept open.
///
/// Other processes append to the same packs (each under the store lock), so nothing
/// learnt about a pack's length outlives the call that learnt it: every append and size
/// asks the file. A cached end let `reel serve`'s ingest write over chunks that a
/// `reel seal` had committed to the same pack in between.
package final class FolderPackBackend: PackBackend, Sendable {
  package let root: String
  private struct Handles {
    var open: [String: PosixFile] = [:]
    var created: Set<String> = []
    /// Per pack, where the bytes not yet handed to the disk's writeback begin.
    var writebackFrom: [String: UInt64] = [:]

    mutating func forget(_ pack: String) {
      open.removeValue(forKey: pack)
      writebackFrom.removeValue(forKey: pack)
    }
  }
  private let handles = Locked(Handles())
  /// Appended bytes start writing back in steps of this, so a batch's fdatasync finds
  /// little left to do (it took ~0.2 s per 64 MiB batch while the workers sat idle).
  static let writebackStep: UInt64 = 8 << 20

  package init(root: String) { self.root = root }

  func path(_ pack: String) -> String { root + "/" + pack.prefix(2) + "/" + pack + ".pack" }

  /// Called inside `handles.withLock`.
  private func handle(_ pack: String, create: Bool, in handles: inout Handles) throws -> PosixFile {
    if let cached = handles.open[pack] { return cached }
    let path = path(pack)
    if create {
      let directory = (path as NSString).deletingLastPathComponent
      if access(directory, F_OK) != 0 { try Durable.makeDirectory(directory) }
      if access(path, F_OK) != 0 { handles.created.insert(pack) }
    }
    let file = try PosixFile(path: path, flags: create ? O_RDWR | O_CREAT : O_RDWR)
    if handles.open.count > 64 {
      handles.open.removeAll()
      handles.writebackFrom.removeAll()
    }
    handles.open[pack] = file
    return file
  }

  package func append(_ pack: String, _ bytes: [UInt8]) throws -> UInt64 {
    try handles.withLock { handles in
      let file = try handle(pack, create: true, in: &handles)
      let size = try file.size()
      try file.write(bytes, at: size)
      let end = size + UInt64(bytes.count)
      let from = min(handles.writebackFrom[pack] ?? size, size)
      if end - from >= Self.writebackStep {
        file.startWriteback(offset: from, count: end - from)
        handles.writebackFrom[pack] = end
      } else {
        handles.writebackFrom[pack] = from
      }
      return size
    }
  }

  package func read(_ pack: String, offset: UInt64, length: Int) throws -> [UInt8] {
    let file = try handles.withLock { try handle(pack, create: false, in: &$0) }
    return try file.read(at: offset, count: length)
  }

  package func read(_ pack: String, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    let file = try handles.withLock { try handle(pack, create: false, in: &$0) }
    return try file.read(into: buffer, at: offset)
  }

  package func size(_ pack: String) throws -> UInt64? {
    try handles.withLock { handles in
      guard access(path(pack), F_OK) == 0 else {
        // Deleted by another process: forget the descriptor of the unlinked file.
        handles.open.removeValue(forKey: pack)
        return nil
      }
      return try handle(pack, create: false, in: &handles).size()
    }
  }

  package func truncate(_ pack: String, to size: UInt64) throws {
    try handles.withLock { handles in
      let file = try handle(pack, create: false, in: &handles)
      try file.truncate(to: size)
      try file.sync()
      handles.writebackFrom.removeValue(forKey: pack)
    }
  }

  package func delete(_ pack: String) throws {
    try handles.withLock { handles in
      handles.forget(pack)
      guard unlink(path(pack)) == 0 || errno == ENOENT else { throw PosixFile.error(errno, "delete", path(pack)) }
    }
  }

  package func list() throws -> [(pack: String, size: UInt64, modified: Timestamp)] {
    var packs: [(String, UInt64, Timestamp)] = []
    for directory in (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? [] where directory.count == 2 {
      for name in (try? FileManager.default.contentsOfDirectory(atPath: root + "/" + directory)) ?? []
      where name.hasSuffix(".pack") {
        var info = stat()
        guard stat(root + "/" + directory + "/" + name, &info) == 0 else { continue }
        let modified = Timestamp(
          nanoseconds: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
        packs.append((String(name.dropLast(5)), UInt64(info.st_size), modified))
      }
    }
    return packs
  }

  package func createWhole(_ pack: String) throws -> any WholePackWriter {
    handles.withLock { $0.forget(pack) }
    return try DirectPackWriter(path: path(pack))
  }

  package func makeDurable(_ pack: String) throws {
    let (file, directory, isNew) = try handles.withLock { handles in
      (
        try handle(pack, create: false, in: &handles), (path(pack) as NSString).deletingLastPathComponent,
        handles.created.remove(pack) != nil
      )
    }
    try file.syncData()
    if isNew {
      try Durable.syncDirectory(directory)
      try Durable.syncDirectory(root)
    }
  }
}

extension Catalog {
  /// The rows of the query `sql` makes of an `IN (…)` list of placeholders, bound to
  /// `values` 500 at a time (SQLite bounds a statement's parameters), all together.
  static func fetchAll(
    _ db: Database, in values: [some DatabaseValueConvertible], _ sql: (_ placeholders: String) -> String
  ) throws -> [Row] {
    var rows: [Row] = []
    for start in stride(from: 0, to: values.count, by: 500) {
      let slice = Array(values[start..<min(start + 500, values.count)])
      rows += try Row.fetchAll(
        db, sql: sql(slice.map { _ in "?" }.joined(separator: ",")), arguments: StatementArguments(slice))
    }
    return rows
  }

  /// Where each of `keys` that the catalog knows is stored.
  static func chunkLocations(_ db: Database, _ keys: [String]) throws -> [String: ChunkLocation] {
    try fetchAll(db, in: keys.compactMap(digestBlob)) {
      """
      SELECT lower(hex(c.digest)) AS hash, p.id AS pack, c.offset, c.length, c.record_offset
      FROM chunk c JOIN pack p ON p.number = c.pack_number WHERE c.digest IN (\($0))
      """
    }.reduce(into: [:]) { $0[$1["hash"]] = ChunkLocation($1) }
  }

  /// Where each of the chunks in `rows` that has a place is stored.
  static func chunkLocations(_ db: Database, rows: [Int64]) throws -> [Int64: ChunkLocation] {
    try fetchAll(db, in: rows) {
      """
      SELECT c.id, p.id AS pack, c.offset, c.length, c.record_offset FROM chunk c JOIN pack p ON p.number = c.pack_number
      WHERE c.id IN (\($0))
      """
    }.reduce(into: [:]) { $0[$1["id"]] = ChunkLocation($1) }
  }
}

/// Where one chunk sits: its pack and the byte range of its record there, or of the
/// compression group its record is in (`ChunkGroupFormat`).
struct ChunkLocation: Hashable, Sendable {
  var pack: String
  var offset: UInt64
  var length: Int
  /// Where the record starts in its group's decompressed content; nil: the record stands
  /// alone at `offset`.
  var recordOffset: Int? = nil
}

extension ChunkLocation {
  /// From a catalog row's `pack` (id), `offset`, `length` and `record_offset` columns.
  init(_ row: Row) {
    self.init(
      pack: row["pack"], offset: UInt64(row["offset"] as Int64), length: Int(row["length"] as Int64),
      recordOffset: (row["record_offset"] as Int64?).map { Int($0) })
  }
}

/// A chunk record inside a pack (format version 1, docs/store-format.md): up to one
/// store block of a volume's bytes, named by the SHA-256 of its plaintext, which the
/// record repeats so a pack can be read without the catalog.
struct ChunkCodec: Sendable {
  /// zstd level 1. Ingest is CPU-bound on 2 cores and compressing 256 KiB blocks one by
  /// one is most of it: level 1 runs at 1.24× level 2's speed on them (`zstd -b1 -B256K`
  /// vs `-b2` over a tar of /usr: 435 vs 350 MB/s) for 2.3% more space. Measured with
  /// `benchmarks/store.sh` (2026-12-06): ingest 0.81 → 0.90 of `zstd -T2` at the store's
  /// level, store space 0.93 → 0.91 of `zstd -3`. Sealed archives recompress in large
  /// groups at level 3, so cartridges do not pay for it.
  static let compressionLevel: Int32 = 1
  /// Deltas stay at level 2: at level 1, 400,000 random 4 KiB writes grew the packs by
  /// 1.81 GB instead of 1.61 GB (`benchmarks/small-writes.sh`), and a delta's frame is
  /// mostly matches into its base, cheap to find at either level.
  static let deltaCompressionLevel: Int32 = 2

  let compressor = ZstdCompressor(level: ChunkCodec.compressionLevel)
  let deltaCompressor = ZstdCompressor(level: ChunkCodec.deltaCompressionLevel)

  /// Compressed when that saves at least 1/32 of the size; stored raw otherwise.
  func encode(_ plaintext: [UInt8], hash: SHA256Digest) -> [UInt8] {
    plaintext.withUnsafeBytes { encode($0, hash: hash) }
  }

  /// Compresses straight into the record after its header, so a chunk's bytes are copied
  /// once on the way to its pack.
  func encode(_ plaintext: UnsafeRawBufferPointer, hash: SHA256Digest) -> [UInt8] {
    let bound = Zstd.compressBound(plaintext.count)
    let headerSize = ChunkRecordHeader.size
    return [UInt8](unsafeUninitializedCapacity: headerSize + max(bound, plaintext.count)) { buffer, count in
      let record = UnsafeMutableRawBufferPointer(buffer)
      let body = UnsafeMutableRawBufferPointer(rebasing: record[headerSize...])
      var stored = compressor.compress(plaintext, into: body)
      let useZstd = stored + plaintext.count / 32 < plaintext.count
      if !useZstd {
        body.copyMemory(from: plaintext)
        stored = plaintext.count
      }
      hash.bytes.withUnsafeBytes { hash in
        ChunkRecordHeader.write(
          into: UnsafeMutableRawBufferPointer(rebasing: record[0..<headerSize]),
          encoding: useZstd ? ChunkRecordHeader.encodingZstd : ChunkRecordHeader.encodingRaw,
          plaintextLength: plaintext.count, hash: hash, stored: UnsafeRawBufferPointer(rebasing: body[0..<stored]))
      }
      count = headerSize + stored
    }
  }

  /// Stored bytes of a delta record before its zstd frame: the base chunk's SHA-256 name.
  static let deltaBaseNameSize = 32

  /// A delta record of `plaintext`: the base's name, then one zstd frame that refers to
  /// the base's plaintext (docs/store-format.md, "Consolidations as deltas"). nil when
  /// its stored bytes would be more than `limit`.
  func encodeDelta(
    _ plaintext: UnsafeRawBufferPointer, hash: SHA256Digest, base: DeltaBase, limit: Int
  ) -> [UInt8]? {
    let headerSize = ChunkRecordHeader.size
    let nameSize = Self.deltaBaseNameSize
    var fits = true
    let record = [UInt8](
      unsafeUninitializedCapacity: headerSize + nameSize + Zstd.compressBound(plaintext.count)
    ) { buffer, count in
      let record = UnsafeMutableRawBufferPointer(buffer)
      UnsafeMutableRawBufferPointer(rebasing: record[headerSize..<(headerSize + nameSize)]).copyBytes(
        from: base.name.bytes)
      let frame = base.plaintext.withUnsafeBytes { prefix in
        deltaCompressor.compress(
          plaintext, prefix: prefix, into: UnsafeMutableRawBufferPointer(rebasing: record[(headerSize + nameSize)...]))
      }
      let stored = nameSize + frame
      guard stored <= limit else {
        fits = false
        count = 0
        return
      }
      hash.bytes.withUnsafeBytes { hash in
        ChunkRecordHeader.write(
          into: UnsafeMutableRawBufferPointer(rebasing: record[0..<headerSize]),
          encoding: ChunkRecordHeader.encodingDelta,
          plaintextLength: plaintext.count, hash: hash,
          stored: UnsafeRawBufferPointer(rebasing: record[headerSize..<(headerSize + stored)]))
      }
      count = headerSize + stored
    }
    return fits ? record : nil
  }

  /// The name of the base a delta record refers to; nil for any other record. The
  /// record's header and checksum are checked first when it is a delta.
  static func deltaBase(_ record: UnsafeRawBufferPointer, key: ChunkKey) throws -> String? {
    guard record.count > 4, record[4] == ChunkRecordHeader.encodingDelta else { return nil }
    let header = try checkedHeader(record, key: key)
    guard header.encoding == ChunkRecordHeader.encodingDelta else { return nil }
    guard header.storedLength > deltaBaseNameSize else {
      throw damaged(key, "is a delta record too short to name its base")
    }
    let start = ChunkRecordHeader.size
    return SHA256Digest(bytes: Array(record[start..<(start + deltaBaseNameSize)])).hex
  }

  /// The plaintext length a record's header gives.
  static func plaintextLength(_ record: [UInt8]) -> Int {
    ChunkRecordHeader(record)?.plaintextLength ?? 0
  }

  /// Checks a record's header, checksum and name without decoding it; returns the stored
  /// plaintext length.
  @discardableResult
  static func check(_ record: [UInt8], key: ChunkKey) throws -> Int {
    try record.withUnsafeBytes { try check($0, key: key) }
  }

  @discardableResult
  static func check(_ record: UnsafeRawBufferPointer, key: ChunkKey) throws -> Int {
    try checkedHeader(record, key: key).plaintextLength
  }

  /// An unnamed chunk's record is checked against the name it claims: the checksum covers
  /// that name, so a damaged one is caught as damage.
  static func checkedHeader(_ record: UnsafeRawBufferPointer, key: ChunkKey) throws -> ChunkRecordHeader {
    guard let header = ChunkRecordHeader(record) else {
      throw ReelError(.corrupt, "chunk \(key): not a chunk record")
    }
    guard record.count == header.recordLength else {
      throw ReelError(.corrupt, "chunk \(key): record length does not match")
    }
    guard ChunkRecordHeader.checksumMatches(record) else {
      throw ReelError(.corrupt, "chunk \(key): stored bytes fail their checksum")
    }
    if let name = key.name, SHA256Digest(bytes: Array(ChunkRecordHeader.claimedHash(record))).hex != name {
      throw ReelError(.corrupt, "chunk \(key): the record holds another chunk")
    }
    return header
  }

  /// Decodes a record straight into `output`, which must be the plaintext's length. A
  /// delta record needs its base's plaintext (`deltaBase` names it).
  static func decode(
    _ record: UnsafeRawBufferPointer, key: ChunkKey, into output: UnsafeMutableRawBufferPointer,
    base: UnsafeRawBufferPointer? = nil
  ) throws {
    let header = try checkedHeader(record, key: key)
    guard header.plaintextLength == output.count else {
      throw damaged(key, "holds \(header.plaintextLength) bytes where \(output.count) are needed")
    }
    try decodeBody(of: record, header: header, key: key, into: output, base: base)
  }

  /// Decodes a record read from `location`; with `verify`, checks the plaintext's SHA-256.
  static func decode(_ record: [UInt8], key: ChunkKey, verify: Bool, base: [UInt8]? = nil) throws -> [UInt8] {
    try record.withUnsafeBytes { record in
      if let base { return try base.withUnsafeBytes { try decode(record, key: key, verify: verify, base: $0) } }
      return try decode(record, key: key, verify: verify)
    }
  }

  /// Decodes a record in place (no copy of the stored bytes).
  static func decode(
    _ record: UnsafeRawBufferPointer, key: ChunkKey, verify: Bool, base: UnsafeRawBufferPointer? = nil
  ) throws -> [UInt8] {
    let header: ChunkRecordHeader
    do {
      header = try checkedHeader(record, key: key)
    } catch let error as ReelError {
      throw ReelError(error.kind, error.message, remedy: "run `reel store check --read-data` to see what it affects")
    }
    let length = header.plaintextLength
    let plaintext = try [UInt8](unsafeUninitializedCapacity: length) { buffer, count in
      try decodeBody(of: record, header: header, key: key, into: UnsafeMutableRawBufferPointer(buffer), base: base)
      count = length
    }
    if verify, !SHA256Digest.hash(plaintext).bytes.elementsEqual(ChunkRecordHeader.claimedHash(record)) {
      throw damaged(key, "content does not match its SHA-256 name")
    }
    return plaintext
  }

  /// The stored bytes after a checked header, decoded into `output` (the plaintext's length).
  private static func decodeBody(
    of record: UnsafeRawBufferPointer, header: ChunkRecordHeader, key: ChunkKey,
    into output: UnsafeMutableRawBufferPointer, base: UnsafeRawBufferPointer?
  ) throws {
    let body = UnsafeRawBufferPointer(rebasing: record[ChunkRecordHeader.size...])
    switch header.encoding {
    case ChunkRecordHeader.encodingRaw:
      guard body.count == output.count else {
        throw damaged(key, "holds \(body.count) bytes, header says \(output.count)")
      }
      output.copyMemory(from: body)
    case ChunkRecordHeader.encodingZstd:
      try Zstd.decompress(body, into: output, what: "chunk \(key)")
    case ChunkRecordHeader.encodingDelta:
      guard body.count > deltaBaseNameSize else { throw damaged(key, "is a delta record too short to name its base") }
      guard let base else {
        throw ReelError(.corrupt, "chunk \(key) is a delta record and was read without its base chunk")
      }
      try Zstd.decompress(
        UnsafeRawBufferPointer(rebasing: body[deltaBaseNameSize...]), prefix: base, into: output,
        what: "chunk \(key) (a delta of chunk \(SHA256Digest(bytes: Array(body[..<deltaBaseNameSize])).hex))")
    default:
      throw damaged(key, "unknown encoding \(header.encoding)")
    }
  }

  private static func damaged(_ key: ChunkKey, _ reason: String) -> ReelError {
    ReelError(.corrupt, "chunk \(key): \(reason)", remedy: "run `reel store check --read-data` to see what it affects")
  }
}

/// The chunk record format (docs/store-format.md) for code outside the store that carries
/// records as they are, such as sealed archives.
package enum ChunkRecordFormat {
  package static let headerSize = ChunkRecordHeader.size

  /// Checks header, checksum and name; returns the plaintext length.
  @discardableResult
  package static func check(_ record: [UInt8], key: String) throws -> Int {
    try checkedHeader(record, key: key).plaintextLength
  }

  /// The same, on a record in place.
  @discardableResult
  package static func check(_ record: UnsafeRawBufferPointer, key: String) throws -> Int {
    try checkedHeader(record, key: key).plaintextLength
  }

  /// Checks header, checksum and name; returns the header.
  package static func checkedHeader(_ record: [UInt8], key: String) throws -> ChunkRecordHeader {
    try record.withUnsafeBytes { try checkedHeader($0, key: key) }
  }

  /// The same, on a record in place. A delta record is refused: only a live store holds
  /// them (its base is in that store), and every record it hands out is whole.
  package static func checkedHeader(_ record: UnsafeRawBufferPointer, key: String) throws -> ChunkRecordHeader {
    let header = try ChunkCodec.checkedHeader(record, key: .named(key))
    guard header.encoding != ChunkRecordHeader.encodingDelta else {
      throw ReelError(
        .corrupt,
        "chunk \(key): a delta record (encoding 2) where only whole records belong; it cannot be read without the store that wrote it"
      )
    }
    return header
  }

  /// The plaintext, its SHA-256 checked against `key`.
  package static func decodeVerified(_ record: [UInt8], key: String) throws -> [UInt8] {
    try ChunkCodec.decode(record, key: .named(key), verify: true)
  }

  /// The name a record claims, without checking it.
  package static func claimedKey(_ record: UnsafeRawBufferPointer) -> String? {
    guard ChunkRecordHeader(record) != nil else { return nil }
    return SHA256Digest(bytes: Array(ChunkRecordHeader.claimedHash(record))).hex
  }

  /// Encodes plaintext as the store keeps it (zstd when that saves at least 1/32, raw
  /// otherwise), at the store's level: for an archive's chunks that are stored one by one
  /// instead of as the group they came in. Not for concurrent use: give each thread its own.
  package struct Encoder: Sendable {
    let codec = ChunkCodec()
    package init() {}
    package func encode(_ plaintext: [UInt8], hash: SHA256Digest) -> [UInt8] { codec.encode(plaintext, hash: hash) }
    package func encode(_ plaintext: UnsafeRawBufferPointer, hash: SHA256Digest) -> [UInt8] {
      codec.encode(plaintext, hash: hash)
    }
  }

  /// Total length of the record starting at `record`, from its header; nil when the bytes
  /// are not a record header.
  package static func recordLength(_ record: UnsafeRawBufferPointer) -> Int? {
    ChunkRecordHeader(record)?.recordLength
  }
}
