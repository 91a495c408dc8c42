import CArchive
import Foundation
import ReelCodec
import ReelCore
import ReelIO

/// `S_IFREG`: tar members Reel writes and accepts are regular files only.
let regularFileType: UInt32 = 0o100000

/// A POSIX pax tar stream written with libarchive in 1 MiB records (the last record padded
/// whole with zeros, so every write to tape is one full block).
final class TarWriter {
  private let archive: OpaquePointer
  private let path: String
  private var closed = false
  /// Where libarchive's bytes go, and the first error writing them. libarchive writes
  /// unblocked and the sink cuts 1 MiB records itself, so `offset` is exact between
  /// members (archive parity needs the offset of PARITY's header, and every byte before
  /// it, before that header is written).
  private final class Sink {
    let writer: DirectFileWriter
    let copy: ArchiveBytePipe?
    var error: (any Error)?
    var tap: ((UnsafeRawBufferPointer) throws -> Void)?
    var hasher: SHA256Hasher?
    var offset: UInt64 = 0
    /// Every byte handed to `writer` (the last record's padding included), counted and
    /// checksummed: what the seal's read-back must find on the disk.
    var written = StreamSum()
    let record = UnsafeMutableRawBufferPointer.allocate(byteCount: ArchiveFormat.recordSize, alignment: 16)
    var filled = 0
    init(writer: DirectFileWriter, copy: ArchiveBytePipe?) {
      self.writer = writer
      self.copy = copy
    }
    deinit { record.deallocate() }

    func take(_ bytes: UnsafeRawBufferPointer) throws {
      hasher?.update(bytes)
      try tap?(bytes)
      offset += UInt64(bytes.count)
      var done = 0
      while done < bytes.count {
        let count = min(bytes.count - done, record.count - filled)
        UnsafeMutableRawBufferPointer(rebasing: record[filled..<(filled + count)])
          .copyMemory(from: UnsafeRawBufferPointer(rebasing: bytes[done..<(done + count)]))
        filled += count
        done += count
        if filled == record.count { try flush() }
      }
    }

    /// Pads the last record whole with zeros (tape wants full blocks) and writes it.
    func finish() throws {
      guard filled > 0 else { return }
      UnsafeMutableRawBufferPointer(rebasing: record[filled...]).initializeMemory(as: UInt8.self, repeating: 0)
      hasher?.update(UnsafeRawBufferPointer(rebasing: record[filled...]))
      filled = record.count
      try flush()
    }

    private func flush() throws {
      let bytes = UnsafeRawBufferPointer(rebasing: record[0..<filled])
      try writer.append(bytes)
      written.add(bytes)
      copy?.push(bytes)
      filled = 0
    }
  }
  private let sink: Sink
  private let unmanagedSink: Unmanaged<Sink>

  /// `copy` also gets every byte written (for a verifier on another thread).
  init(writer: DirectFileWriter, copy: ArchiveBytePipe? = nil) throws {
    try loadLibarchive()
    guard let archive = reel_archive_write_new() else {
      throw ReelError(.io, "libarchive could not start \(writer.path)")
    }
    self.archive = archive
    self.path = writer.path
    sink = Sink(writer: writer, copy: copy)
    unmanagedSink = Unmanaged.passRetained(sink)
    guard reel_archive_write_set_format_pax(archive) == ARCHIVE_OK,
      reel_archive_write_set_bytes_per_block(archive, 0) == ARCHIVE_OK,
      reel_archive_write_open(
        archive, unmanagedSink.toOpaque(), nil,
        { _, context, buffer, length in
          let sink = Unmanaged<Sink>.fromOpaque(context!).takeUnretainedValue()
          do {
            try sink.take(UnsafeRawBufferPointer(start: buffer, count: length))
            return length
          } catch {
            sink.error = error
            return -1
          }
        }, nil) == ARCHIVE_OK
    else { throw failure("start") }
  }

  deinit {
    if !closed { reel_archive_write_close(archive) }
    reel_archive_write_free(archive)
    unmanagedSink.release()
  }

  private func failure(_ what: String) -> ReelError {
    if let error = sink.error as? ReelError { return error }
    let text = reel_archive_error_string(archive).map { String(cString: $0) } ?? "unknown error"
    return ReelError(.io, "\(path): tar \(what) failed: \(text)", remedy: "check the disk has room and is writable")
  }

  /// Adds a regular file of `size` bytes, read-only, owned by root; `body` must supply
  /// exactly `size` bytes through the writer it is given.
  func addFile(
    name: String, size: UInt64, modified: Timestamp,
    _ body: ((UnsafeRawBufferPointer) throws -> Void) throws -> Void
  ) throws {
    let entry = reel_archive_entry_new()
    defer { reel_archive_entry_free(entry) }
    reel_archive_entry_set_pathname_utf8(entry, name)
    reel_archive_entry_set_size(entry, Int64(size))
    reel_archive_entry_set_filetype(entry, regularFileType)
    reel_archive_entry_set_perm(entry, 0o444)
    reel_archive_entry_set_uid(entry, 0)
    reel_archive_entry_set_gid(entry, 0)
    reel_archive_entry_set_uname(entry, "root")
    reel_archive_entry_set_gname(entry, "root")
    let nanoseconds = modified.nanoseconds
    reel_archive_entry_set_mtime(entry, time_t(nanoseconds / 1_000_000_000), Int(nanoseconds % 1_000_000_000))
    guard reel_archive_write_header(archive, entry) == ARCHIVE_OK else { throw failure("header of \(name)") }
    var written: UInt64 = 0
    try body { bytes in
      var offset = 0
      while offset < bytes.count {
        let count = reel_archive_write_data(archive, bytes.baseAddress! + offset, bytes.count - offset)
        guard count > 0 else { throw self.failure("write of \(name)") }
        offset += count
      }
      written += UInt64(bytes.count)
    }
    precondition(written == size, "tar member \(name): wrote \(written) of \(size) bytes")
    guard reel_archive_write_finish_entry(archive) == ARCHIVE_OK else { throw failure("end of \(name)") }
  }

  func addFile(name: String, bytes: [UInt8], modified: Timestamp) throws {
    try addFile(name: name, size: UInt64(bytes.count), modified: modified) { write in
      try bytes.withUnsafeBytes { try write($0) }
    }
  }

  /// Bytes of the tar stream so far (exact between members).
  var offset: UInt64 { sink.offset }

  /// Hashes the whole stream as it is written, padding included (set before the first
  /// byte): `streamSHA256(soFar:)` then gives the digest of any prefix on the way.
  func hashStream() {
    precondition(sink.offset == 0 && sink.hasher == nil)
    sink.hasher = SHA256Hasher()
  }

  /// The SHA-256 of the stream so far (`soFar`, hashing goes on) or, after `close`, of all of it.
  func streamSHA256(soFar: Bool = false) -> SHA256Digest? {
    guard let hasher = sink.hasher else { return nil }
    return soFar ? hasher.copy().finish() : hasher.finish()
  }

  /// The length and CRC-32C of every byte written so far (all of them after `close`).
  var streamSum: StreamSum { sink.written }

  /// Sees every byte of the stream as libarchive produces it, before it is blocked.
  var tap: ((UnsafeRawBufferPointer) throws -> Void)? {
    get { sink.tap }
    set { sink.tap = newValue }
  }

  func close() throws {
    closed = true
    guard reel_archive_write_close(archive) == ARCHIVE_OK else { throw failure("close") }
    do { try sink.finish() } catch {
      sink.error = error
      throw failure("close")
    }
  }
}

/// A tar stream read member by member with libarchive, from any `ArchiveByteSource`.
/// Only regular files with plain relative names are accepted: a member that is a link, a
/// device, has `..` or an absolute path is refused before its bytes are read. The one
/// reader of tar headers in Reel.
package final class TarReader {
  package struct Member: Sendable {
    package var name: String
    package var size: UInt64
  }

  private final class Feed {
    var source: any ArchiveByteSource
    var buffer: UnsafeMutableRawBufferPointer
    var error: Error?
    var consumed: UInt64 = 0

    init(source: any ArchiveByteSource) {
      self.source = source
      buffer = .allocate(byteCount: ArchiveFormat.recordSize, alignment: 16)
    }

    deinit { buffer.deallocate() }
  }

  private let archive: OpaquePointer
  private let feed: Feed
  private let unmanaged: Unmanaged<Feed>
  let label: String

  package init(source: any ArchiveByteSource, label: String) throws {
    try loadLibarchive()
    guard let archive = reel_archive_read_new() else {
      throw ReelError(.io, "libarchive could not start reading \(label)")
    }
    self.archive = archive
    self.label = label
    feed = Feed(source: source)
    unmanaged = Unmanaged.passRetained(feed)
    reel_archive_read_support_format_tar(archive)
    let status = reel_archive_read_open(
      archive, unmanaged.toOpaque(), nil,
      { _, context, buffer in
        let feed = Unmanaged<Feed>.fromOpaque(context!).takeUnretainedValue()
        do {
          let count = try feed.source.read(into: feed.buffer)
          feed.consumed += UInt64(count)
          buffer?.pointee = UnsafeRawPointer(feed.buffer.baseAddress)
          return count
        } catch {
          feed.error = error
          return -1
        }
      }, nil)
    // deinit frees the handle and the feed: it runs for a class whose init throws after
    // every property is set.
    guard status == ARCHIVE_OK else { throw failure("opening") }
  }

  deinit {
    reel_archive_read_free(archive)
    unmanaged.release()
  }

  /// Bytes taken from the source so far.
  var consumed: UInt64 { feed.consumed }

  private func failure(_ what: String) -> ReelError {
    if let error = feed.error as? ReelError { return error }
    if let error = feed.error { return ReelError(.io, "\(label): \(error)") }
    let text = reel_archive_error_string(archive).map { String(cString: $0) } ?? "unexpected end of data"
    return ReelError(
      .corrupt, "\(label): not a readable tar archive (\(what): \(text))",
      remedy: "the file is truncated or damaged; use another copy of the archive")
  }

  /// The next member's header; its data, if not read, is skipped.
  package func next() throws -> Member? {
    var entry: OpaquePointer?
    let status = reel_archive_read_next_header(archive, &entry)
    if status == ARCHIVE_EOF { return nil }
    guard status == ARCHIVE_OK || status == ARCHIVE_WARN, let entry else { throw failure("reading a member header") }
    guard let rawName = reel_archive_entry_pathname_utf8(entry) ?? reel_archive_entry_pathname(entry) else {
      throw ReelError(.corrupt, "\(label): a member has no name")
    }
    let name = String(cString: rawName)
    let type = reel_archive_entry_filetype(entry)
    guard type == regularFileType else {
      throw ReelError(
        .corrupt, "\(label): member \"\(name)\" is not a regular file (a link, folder or device)",
        remedy: "this is not an archive Reel wrote; it is refused so nothing outside it is touched")
    }
    guard !name.hasPrefix("/"), !name.split(separator: "/").contains(".."), !name.isEmpty else {
      throw ReelError(
        .corrupt, "\(label): member \"\(name)\" has an absolute or parent-escaping path",
        remedy: "this is not an archive Reel wrote; it is refused")
    }
    let size = reel_archive_entry_size(entry)
    guard reel_archive_entry_size_is_set(entry) != 0, size >= 0 else {
      throw ReelError(.corrupt, "\(label): member \"\(name)\" has no size")
    }
    // A sparse member's size is the file it stands for, not the bytes stored, and its
    // holes read as zeros nobody wrote: Reel writes none.
    guard reel_archive_entry_sparse_count(entry) == 0 else {
      throw ReelError(
        .corrupt, "\(label): member \"\(name)\" is a sparse file (GNU.sparse headers)",
        remedy: "this is not an archive Reel wrote; it is refused")
    }
    return Member(name: name, size: UInt64(size))
  }

  /// Reads the current member's data in pieces as libarchive delivers them.
  func readData(_ body: (UnsafeRawBufferPointer) throws -> Void) throws {
    var buffer: UnsafeRawPointer? = nil
    var size = 0
    var offset: Int64 = 0
    while true {
      let status = reel_archive_read_data_block(archive, &buffer, &size, &offset)
      if status == ARCHIVE_EOF { return }
      guard status == ARCHIVE_OK || status == ARCHIVE_WARN else { throw failure("reading member data") }
      if size > 0, let buffer { try body(UnsafeRawBufferPointer(start: buffer, count: size)) }
    }
  }

  /// The whole current member, refused when larger than `limit`.
  package func readAll(limit: Int, name: String) throws -> [UInt8] {
    var bytes: [UInt8] = []
    try readData { piece in
      guard bytes.count + piece.count <= limit else {
        throw ReelError(.corrupt, "\(label): member \(name) is larger than \(limit) bytes", remedy: "use another copy")
      }
      bytes += piece
    }
    return bytes
  }

  /// Whether a 512-byte block is a ustar (or pax) header with a valid checksum: how a
  /// tape file holding an archive is told from one holding something else, before the
  /// stream is read. The first header of a Reel archive is a pax extended header whose
  /// data follows it, so libarchive cannot judge the block alone.
  package static func isHeader(_ block: [UInt8]) -> Bool {
    guard block.count == 512, Array(block[257..<262]) == Array("ustar".utf8) else { return false }
    // The checksum counts the checksum field itself as eight spaces.
    var sum = 0
    for (index, byte) in block.enumerated() {
      sum += (148..<156).contains(index) ? 32 : Int(byte)
    }
    var recorded = 0
    for byte in block[148..<156] {
      if byte == 0 || byte == 32 {
        if recorded > 0 { break } else { continue }
      }
      guard byte >= 48 && byte <= 55 else { break }
      recorded = recorded * 8 + Int(byte - 48)
    }
    return sum == recorded
  }
}

/// Opens libarchive the first time a tar is read or written (CLazyLibrary).
private func loadLibarchive() throws {
  if let message = reel_archive_load() { throw ReelError(.notFound, String(cString: message)) }
}
