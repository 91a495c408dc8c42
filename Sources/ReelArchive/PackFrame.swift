import Foundation
import ReelCodec
import ReelCore
import ReelStore

/// One chunk record's place in a pack frame's content (docs/archive-format.md).
struct PlacedRecord: Sendable {
  var key: String
  /// Offset and length of the record in the frame's content: the plaintext for format
  /// version 1, the decompressed zstd frame for version 2.
  var offset: Int
  var length: Int
  /// Plaintext bytes of the chunk.
  var size: Int
}

/// A store chunk record on its way into a pack frame.
struct StoreRecord: Sendable {
  var key: String
  var record: [UInt8]
}

/// A pack frame's plaintext, ready to be encrypted.
struct BuiltPackFrame: Sendable {
  var plaintext: [UInt8]
  var records: [PlacedRecord]
  /// Bytes of the frame's content (equal to the plaintext for format version 1).
  var contentLength: Int
}

/// A chunk record checked after decryption, with the bytes a reader asked for.
struct OpenedRecord: Sendable {
  var key: String
  /// Empty unless records were asked for: for version 1 the record as stored; for
  /// version 2 a store record re-encoded from the raw one (or the raw one, if not asked to).
  var record: [UInt8]
  var offset: Int
  /// Plaintext bytes of the chunk.
  var size = 0
}

/// Builds and opens the contents of pack frames.
///
/// - Version 1 (content 1): the plaintext is store chunk records exactly as the live store
///   keeps them, each compressed on its own.
/// - Version 2 (content 3): the plaintext is one zstd frame (level 3, content size in its
///   header) that decompresses to raw (encoding 0) chunk records.
enum PackFrame {
  /// zstd level 3 (its own 2^17-entry hash table) with the window raised to 8 MiB, the
  /// whole group: the size of one `zstd -3` stream of the same data (0.997×), so an
  /// archive with its default 5% of parity stays within 1.05× of `tar | zstd -3`. Level 2
  /// with a 2^16-entry table sealed 6.7% faster but 3.3% larger, beyond that bound with
  /// parity (docs/archive-format.md has the measurements).
  static let groupCompressionLevel: Int32 = 3
  static let groupWindowLog: Int32 = 23
  static let groupHashLog: Int32 = 17

  static func groupCompressor() -> ZstdCompressor {
    ZstdCompressor(level: groupCompressionLevel, windowLog: groupWindowLog, hashLog: groupHashLog)
  }

  /// Builds a frame from store records. Version 1 checks each record's CRC-32C and name and
  /// carries it as it is. Version 2 decodes each one (CRC-32C of the stored bytes,
  /// decompression to exactly the size its header records), lays it out raw with a CRC-32C
  /// over the plaintext, and compresses the whole group. Content hashes are checked when
  /// the written archive is verified, not here.
  static func build(_ records: [StoreRecord], formatVersion: Int) throws -> BuiltPackFrame {
    var placed: [PlacedRecord] = []
    placed.reserveCapacity(records.count)
    var content: [UInt8] = []
    if formatVersion < 2 {
      content.reserveCapacity(records.reduce(0) { $0 + $1.record.count })
      for item in records {
        let size = try ChunkRecordFormat.check(item.record, key: item.key)
        placed.append(PlacedRecord(key: item.key, offset: content.count, length: item.record.count, size: size))
        content += item.record
      }
      return BuiltPackFrame(plaintext: content, records: placed, contentLength: content.count)
    }
    // Every record's checksum first (so the lengths in the headers can be trusted), then
    // each is decoded straight into its place in the group and the raw record's checksum
    // computed over those same bytes.
    let headers = try records.map { try ChunkRecordFormat.checkedHeader($0.record, key: $0.key) }
    let headerSize = ChunkRecordHeader.size
    let total = headers.reduce(0) { $0 + headerSize + $1.plaintextLength }
    content = try [UInt8](unsafeUninitializedCapacity: total) { buffer, count in
      let group = UnsafeMutableRawBufferPointer(buffer)
      var at = 0
      for (item, header) in zip(records, headers) {
        let size = header.plaintextLength
        let plaintext = UnsafeMutableRawBufferPointer(rebasing: group[(at + headerSize)..<(at + headerSize + size)])
        try item.record.withUnsafeBytes { record in
          let stored = UnsafeRawBufferPointer(rebasing: record[headerSize...])
          switch header.encoding {
          case ChunkRecordHeader.encodingRaw:
            guard stored.count == size else {
              throw ReelError(.corrupt, "chunk \(item.key): holds \(stored.count) bytes, header says \(size)")
            }
            plaintext.copyMemory(from: stored)
          case ChunkRecordHeader.encodingZstd:
            try Zstd.decompress(stored, into: plaintext, what: "chunk \(item.key)")
          default:
            throw ReelError(.corrupt, "chunk \(item.key): unknown encoding \(header.encoding)")
          }
          writeRawHeader(
            into: UnsafeMutableRawBufferPointer(rebasing: group[at..<(at + headerSize)]),
            hash: ChunkRecordHeader.claimedHash(record), plaintext: UnsafeRawBufferPointer(plaintext))
        }
        placed.append(PlacedRecord(key: item.key, offset: at, length: headerSize + size, size: size))
        at += headerSize + size
      }
      count = total
    }
    let compressed = groupCompressor().compress(content)
    return BuiltPackFrame(plaintext: compressed, records: placed, contentLength: content.count)
  }

  /// The plaintext length a chunk record's header claims.
  static func plaintextLength(of record: [UInt8]) -> Int {
    ChunkRecordHeader(record)?.plaintextLength ?? 0
  }

  /// Writes the header of a raw (encoding 0) chunk record for `plaintext`: stored bytes =
  /// the plaintext.
  static func writeRawHeader(
    into header: UnsafeMutableRawBufferPointer, hash: UnsafeRawBufferPointer, plaintext: UnsafeRawBufferPointer
  ) {
    ChunkRecordHeader.write(
      into: header, encoding: ChunkRecordHeader.encodingRaw, plaintextLength: plaintext.count, hash: hash,
      stored: plaintext)
  }

  /// Appends a raw (encoding 0) chunk record: the store's record layout, stored bytes =
  /// the plaintext, CRC-32C over header bytes 0..<48 and the plaintext.
  static func appendRaw(_ plaintext: [UInt8], hash: ArraySlice<UInt8>, to content: inout [UInt8]) {
    var header = [UInt8](repeating: 0, count: ChunkRecordHeader.size)
    header.withUnsafeMutableBytes { header in
      Array(hash).withUnsafeBytes { hash in
        plaintext.withUnsafeBytes { writeRawHeader(into: header, hash: hash, plaintext: $0) }
      }
    }
    content += header
    content += plaintext
  }

  /// What opening one frame's plaintext found.
  struct Opened: Sendable {
    var records: [OpenedRecord] = []
    var problems: [String] = []
    /// With `keepGroup`, for a version 2 frame: the length of its decompressed content
    /// (the frame's plaintext is the group, to be kept as it is).
    var groupContentLength: Int?
  }

  /// Checks the chunk records of a decrypted pack frame: for content 1 the records as they
  /// are; for content 3 the zstd frame is decompressed first and every record must be raw.
  /// Each record's CRC-32C and name are checked; with `checkContent` also the SHA-256 of its
  /// plaintext. `deliver`: keep each record's bytes; `storeEncode`: re-encode raw records
  /// as the store keeps them (compressed). `keepGroup`: a version 2 frame's records are
  /// checked but not delivered; the caller keeps the whole group (`groupContentLength`).
  static func open(
    _ plaintext: [UInt8], content: UInt8, frameNumber: UInt64, checkContent: Bool, deliver: Bool, storeEncode: Bool,
    keepGroup: Bool = false
  ) -> Opened {
    var opened = Opened()
    let body: [UInt8]
    if content == ArchiveFrame.contentGroup {
      guard
        let size = plaintext.withUnsafeBytes({ Zstd.singleFrameContentSize($0) }),
        size <= ArchiveFormat.groupLimit
      else {
        opened.problems.append(
          "frame \(frameNumber) does not hold one whole zstd frame of at most \(ArchiveFormat.groupLimit) bytes")
        return opened
      }
      do {
        body = try Zstd.decompress(plaintext, expectedSize: size, what: "frame \(frameNumber)")
      } catch let error as ReelError {
        opened.problems.append(error.message)
        return opened
      } catch {
        opened.problems.append("frame \(frameNumber): \(error)")
        return opened
      }
    } else {
      body = plaintext
    }
    let raw = content == ArchiveFrame.contentGroup
    if raw && keepGroup { opened.groupContentLength = body.count }
    let deliverRecords = deliver && !(raw && keepGroup)
    let encoder = raw && deliverRecords && storeEncode ? ChunkRecordFormat.Encoder() : nil
    body.withUnsafeBytes { bytes in
      var offset = 0
      while offset < bytes.count {
        let rest = UnsafeRawBufferPointer(rebasing: bytes[offset...])
        guard let length = ChunkRecordFormat.recordLength(rest), length <= rest.count,
          let key = ChunkRecordFormat.claimedKey(rest)
        else {
          opened.problems.append(
            "frame \(frameNumber) holds a damaged chunk record at byte \(offset) of its \(raw ? "decompressed " : "")content"
          )
          return
        }
        do {
          if raw {
            // Checked in place: verifying alone copies nothing.
            let record = UnsafeRawBufferPointer(rebasing: rest[0..<length])
            let header = try ChunkRecordFormat.checkedHeader(record, key: key)
            guard header.encoding == ChunkRecordHeader.encodingRaw, header.plaintextLength == header.storedLength
            else {
              throw ReelError(.corrupt, "chunk \(key): not a raw record, as format version 2 requires")
            }
            let plaintext = UnsafeRawBufferPointer(rebasing: record[ChunkRecordHeader.size...])
            let digest = SHA256Digest(bytes: Array(ChunkRecordHeader.claimedHash(record)))
            if checkContent, SHA256Digest.hash(plaintext) != digest {
              throw ReelError(.corrupt, "chunk \(key): content does not match its SHA-256 name")
            }
            var delivered: [UInt8] = []
            if let encoder {
              delivered = encoder.encode(plaintext, hash: digest)
            } else if deliverRecords {
              delivered = Array(record)
            }
            opened.records.append(
              OpenedRecord(key: key, record: delivered, offset: offset, size: header.plaintextLength))
          } else {
            let record = Array(rest[0..<length])
            if checkContent {
              _ = try ChunkRecordFormat.decodeVerified(record, key: key)
            } else {
              try ChunkRecordFormat.check(record, key: key)
            }
            opened.records.append(OpenedRecord(key: key, record: deliver ? record : [], offset: offset))
          }
        } catch let error as ReelError {
          opened.problems.append(error.message)
        } catch {
          opened.problems.append("\(error)")
        }
        offset += length
      }
    }
    return opened
  }
}
