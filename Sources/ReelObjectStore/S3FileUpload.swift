import Foundation
import ReelCodec
import ReelCore
import ReelIO

/// Uploads a local file as one object: one PUT up to the part size, else a multipart
/// upload. A pending upload of the same key (left by a process killed mid-upload) is
/// resumed when every part it holds has the size and MD5 of the file's part of that
/// number, and aborted otherwise. The bytes are checked as they are read for sending, and
/// the upload is completed only when they hash to `sha256` or, when the caller knows it,
/// have the CRC-32C `crc32c` (each part's CRC-32C, which the server checks too, combined
/// in file order), so a caller may name the checksums the file should have (recorded when
/// it was sealed) instead of reading it twice. The object counts only after a HEAD shows
/// the file's size, the ETag of the bytes sent and `reel-sha256` metadata equal to `sha256`.
///
/// Why a CRC-32C is enough where the seal recorded one: the check is against accidental
/// change of the file between its seal and its upload (the disk, a stray write), which a
/// 32-bit CRC catches but for one in 4 billion; deliberate change is caught by the key,
/// when the archive is verified or rehydrated (its manifest MAC and every frame's tag).
/// Hashing the file with SHA-256 cost the export 0.5 s of CPU per GB, as much as the
/// upload's own, on a machine whose object store shares its cores.
package enum S3FileUpload {
  /// The metadata name of the SHA-256 (hex) Reel knows the object's bytes by.
  package static let sha256Metadata = "reel-sha256"

  /// `progress` gets (bytes uploaded, file size) after each part.
  @discardableResult
  package static func run(
    client: S3Client, bucket: String, key: String, file path: String, sha256: String, crc32c: UInt32? = nil,
    metadata: [String: String] = [:], retention: S3Retention? = nil,
    progress: ((UInt64, UInt64) -> Void)? = nil
  ) throws -> S3ObjectInfo {
    guard let digest = SHA256Digest(hex: sha256) else {
      throw ReelError(.usage, "\"\(sha256)\" is not a SHA-256 in hex (uploading \(path))")
    }
    let expected = crc32c.map(ContentCheck.crc32c) ?? .sha256(digest)
    let file = try PosixFile.openForReading(path)
    let size = try file.size()
    var allMetadata = metadata
    allMetadata[sha256Metadata] = sha256.lowercased()
    guard size <= s3MaximumObjectSize else {
      throw ReelError(
        .usage, "\(path) is \(ByteSize.describe(size)): larger than S3 takes as one object (5 TiB)",
        remedy: "seal shorter windows (reel seal --until), so that each archive is smaller")
    }
    let partSize = partSize(forFileOf: size, configured: client.settings.partSize)
    let partCount = size == 0 ? 1 : Int((size + partSize - 1) / partSize)

    let pending = try client.pendingUploads(bucket: bucket, prefix: key).filter { $0.key == key }
    let etag: String
    if size <= partSize {
      for upload in pending { try client.abortMultipartUpload(bucket: bucket, key: key, uploadID: upload.uploadID) }
      let body = try file.read(at: 0, count: Int(size))
      guard body.count == Int(size) else { throw ReelError(.io, "\(path) shrank while it was uploaded") }
      let read = body.withUnsafeBytes { expected.ofWhole($0) }
      guard read == expected else { throw notTheExpectedBytes(path, expected: expected, read: read, sha256: sha256) }
      etag = try client.put(bucket: bucket, key: key, body: body, metadata: allMetadata, retention: retention)
      progress?(size, size)
    } else {
      let plan = MultipartPlan(size: size, partSize: partSize)
      let resumed = try resumable(pending, plan: plan, file: file, client: client, bucket: bucket, key: key)
      let uploadID =
        try resumed?.uploadID
        ?? client.createMultipartUpload(bucket: bucket, key: key, metadata: allMetadata, retention: retention)
      var parts = resumed?.parts ?? [:]
      var done = parts.values.reduce(UInt64(0)) { $0 + $1.size }
      progress?(done, size)
      // Every part is read and hashed in order; those the server holds already are not sent.
      let work = UploadWork(count: partCount, stored: Set(parts.keys), checking: expected)
      // Parts go out side by side, each worker on a connection of its own: while one
      // reads and hashes, the others send, and SeaweedFS and S3 take parts faster so
      // (benchmarks/s3.sh: 3 beat 2, 4 no better). Each worker holds one part in memory.
      let helpers = (1..<uploadWorkers).map { _ in
        WorkerThread(name: "reel-s3-put") { [settings = client.settings, plan] in
          do {
            let other = try S3Client(settings: settings)
            try uploadParts(work, plan: plan, file: file, client: other, bucket: bucket, key: key, uploadID: uploadID)
          } catch {
            work.fail(error)
          }
        }
      }
      do {
        try uploadParts(work, plan: plan, file: file, client: client, bucket: bucket, key: key, uploadID: uploadID) {
          progress?(done + $0, size)
        }
      } catch {
        work.fail(error)
      }
      for helper in helpers { helper.join() }
      let finished = try work.finish()
      for (number, part) in finished.parts { parts[number] = part }
      done += finished.done
      guard finished.check == expected else {
        // The parts stay pending only to be aborted: what was sent is not what should be kept.
        try? client.abortMultipartUpload(bucket: bucket, key: key, uploadID: uploadID)
        throw notTheExpectedBytes(path, expected: expected, read: finished.check, sha256: sha256)
      }
      progress?(done, size)
      let ordered = (1...partCount).map { parts[$0]! }
      try client.completeMultipartUpload(bucket: bucket, key: key, uploadID: uploadID, parts: ordered)
      etag = S3Names.multipartETag(ordered)
    }

    guard let info = try client.head(bucket: bucket, key: key) else {
      throw ReelError(
        .io, "s3://\(bucket)/\(key) is not there after its upload completed",
        remedy: "nothing was recorded; export again")
    }
    guard info.size == size, info.metadata[sha256Metadata]?.lowercased() == sha256.lowercased(),
      etag.isEmpty || info.etag == etag
    else {
      throw ReelError(
        .corrupt,
        "s3://\(bucket)/\(key) does not match \(path) after its upload: \(info.size) bytes (expected \(size)), ETag \(info.etag) (expected \(etag)), reel-sha256 \(info.metadata[sha256Metadata] ?? "missing")",
        remedy: "nothing was recorded; is another writer using this bucket? export again")
    }
    return info
  }

  /// Connections one multipart upload sends parts on at once.
  static let uploadWorkers = 3

  /// The part size for a file of `size` bytes: the configured one, grown to whole MiB
  /// where the file would otherwise need more than S3's 10 000 parts.
  package static func partSize(forFileOf size: UInt64, configured: Int) -> UInt64 {
    let parts = UInt64(s3MaximumParts)
    let mebibyte: UInt64 = 1 << 20
    let fitting = ((size + parts - 1) / parts + mebibyte - 1) / mebibyte * mebibyte
    return max(UInt64(configured), fitting)
  }

  /// Takes the next part from `work` until none is left or a worker failed: reads it,
  /// adds it to the file's hash in its turn, and unless the server holds it already
  /// uploads it (its checksum checked by the server, see `S3Client.uploadPart`) and
  /// records it.
  private static func uploadParts(
    _ work: UploadWork, plan: MultipartPlan, file: PosixFile, client: S3Client, bucket: String, key: String,
    uploadID: String, progress: ((UInt64) -> Void)? = nil
  ) throws {
    // One buffer for every part this worker sends: a fresh one per part costs page faults
    // and zeroing worth a good share of the upload's CPU.
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(plan.partSize), alignment: 4096)
    defer { buffer.deallocate() }
    while let (number, stored) = work.take() {
      // The part after this one goes to the next worker done sending: have it in memory
      // by then, as the cold read would stall that worker's connection.
      if number < plan.count { file.prefetch(plan.range(of: number + 1)) }
      let range = plan.range(of: number)
      let bytes = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<Int(range.count)])
      guard try file.read(into: bytes, at: range.lowerBound) == bytes.count else {
        throw ReelError(.io, "\(file.path) shrank while it was uploaded")
      }
      // Needed for the request's header where the server takes checksums, and for the
      // check of the whole file whenever that is a CRC-32C: computed once for both.
      let crc32c =
        work.combinesCRC32C || (!stored && client.sendsCRC32C) ? CRC32C.checksum(UnsafeRawBufferPointer(bytes)) : nil
      guard work.add(UnsafeRawBufferPointer(bytes), crc32c: crc32c, part: number) else { return }
      if stored { continue }
      let part = try client.uploadPart(
        bucket: bucket, key: key, uploadID: uploadID, number: number, body: UnsafeRawBufferPointer(bytes),
        crc32c: crc32c)
      // Recorded whether or not anyone is told: `progress?(work.record(part))` would skip it.
      let done = work.record(part)
      progress?(done)
    }
  }

  private static func notTheExpectedBytes(
    _ path: String, expected: ContentCheck, read: ContentCheck, sha256: String
  ) -> ReelError {
    ReelError(
      .corrupt,
      "\(path) is not the archive it should be: its bytes have \(read), not \(expected) as recorded when it was sealed (SHA-256 \(sha256)); nothing was uploaded",
      remedy: "check it with `reel verify \(path)`; export the archive from a good copy")
  }

  /// The pending upload to continue, with the parts already there that match the file;
  /// every other pending upload of the key is aborted.
  private static func resumable(
    _ pending: [S3PendingUpload], plan: MultipartPlan, file: PosixFile, client: S3Client, bucket: String, key: String
  ) throws -> (uploadID: String, parts: [Int: S3Part])? {
    var chosen: (uploadID: String, parts: [Int: S3Part])?
    // The newest first: it is the one most likely to hold most of the parts.
    for upload in pending.sorted(by: { ($0.initiated ?? .distantPast) > ($1.initiated ?? .distantPast) }) {
      if chosen == nil,
        let parts = try matchingParts(upload, plan: plan, file: file, client: client, bucket: bucket, key: key)
      {
        chosen = (upload.uploadID, parts)
      } else {
        try client.abortMultipartUpload(bucket: bucket, key: key, uploadID: upload.uploadID)
      }
    }
    return chosen
  }

  /// The upload's parts when each has the size and MD5 of the file's part of its number.
  private static func matchingParts(
    _ upload: S3PendingUpload, plan: MultipartPlan, file: PosixFile, client: S3Client, bucket: String, key: String
  ) throws -> [Int: S3Part]? {
    let listed: [S3Part]
    do {
      listed = try client.listParts(bucket: bucket, key: key, uploadID: upload.uploadID)
    } catch let error as ReelError where error.kind == .notFound {
      return nil
    }
    var parts: [Int: S3Part] = [:]
    for part in listed {
      guard part.number <= plan.count else { return nil }
      let range = plan.range(of: part.number)
      guard part.size == UInt64(range.count) else { return nil }
      let bytes = try file.read(at: range.lowerBound, count: Int(range.count))
      let md5 = bytes.withUnsafeBytes { MD5Hasher.digest($0) }
      guard part.etag == Hex.encode(md5) else { return nil }
      // CompleteMultipartUpload names the checksum of every part of an upload begun with one.
      let crc32c = bytes.withUnsafeBytes { S3Names.crc32c($0) }
      guard part.crc32c == nil || part.crc32c == crc32c else { return nil }
      var matching = part
      if client.sendsCRC32C { matching.crc32c = crc32c }
      parts[part.number] = matching
    }
    return parts
  }
}

/// What the bytes of an upload are checked against: their SHA-256, or their CRC-32C.
enum ContentCheck: Equatable, Sendable, CustomStringConvertible {
  case sha256(SHA256Digest)
  case crc32c(UInt32)

  /// The same kind of check, of `bytes`.
  func ofWhole(_ bytes: UnsafeRawBufferPointer) -> ContentCheck {
    switch self {
    case .sha256: .sha256(SHA256Digest.hash(bytes))
    case .crc32c: .crc32c(CRC32C.checksum(bytes))
    }
  }

  var description: String {
    switch self {
    case .sha256(let digest): "SHA-256 \(digest.hex)"
    case .crc32c(let value): "CRC-32C \(String(format: "%08x", value))"
    }
  }
}

/// The parts of one multipart upload as its workers take, check and store them. Parts are
/// taken in order and each worker adds its part to the check only in its turn, so the
/// SHA-256 covers the file front to back while the other workers send (a CRC-32C is
/// combined from the parts' own in the same order).
private final class UploadWork: @unchecked Sendable {
  // Everything below is guarded by `condition`.
  private let condition = NSCondition()
  private let count: Int
  private let stored: Set<Int>
  private var taken = 0
  private var hashed = 0
  private let hasher: SHA256Hasher?
  private var crc32c = CRC32C.checksum([UInt8]())
  private var parts: [Int: S3Part] = [:]
  private var done: UInt64 = 0
  private var failure: (any Error)?
  /// Whether the file is checked by its CRC-32C: `add` then needs each part's.
  var combinesCRC32C: Bool { hasher == nil }

  init(count: Int, stored: Set<Int>, checking expected: ContentCheck) {
    self.count = count
    self.stored = stored
    if case .crc32c = expected { hasher = nil } else { hasher = SHA256Hasher() }
  }

  /// The next part number and whether the server holds it already; nil when all are
  /// taken or a worker failed.
  func take() -> (number: Int, stored: Bool)? {
    condition.withLock {
      guard failure == nil, taken < count else { return nil }
      taken += 1
      return (taken, stored.contains(taken))
    }
  }

  /// Adds part `number` to the check once every part before it is in: its bytes to the
  /// SHA-256, or its CRC-32C (given whenever `combinesCRC32C`) to the file's. False when a
  /// worker failed meanwhile (the part is then not needed).
  func add(_ bytes: UnsafeRawBufferPointer, crc32c partCRC: UInt32?, part number: Int) -> Bool {
    condition.lock()
    defer { condition.unlock() }
    while failure == nil && hashed != number - 1 { condition.wait() }
    guard failure == nil else { return false }
    if let hasher {
      hasher.update(bytes)
    } else if let partCRC {
      crc32c = CRC32C.combine(crc32c, partCRC, secondLength: UInt64(bytes.count))
    } else {
      preconditionFailure("a part's CRC-32C is given when the file is checked by its CRC-32C")
    }
    hashed = number
    condition.broadcast()
    return true
  }

  /// Records a part the server stored; the bytes stored so far this run.
  func record(_ part: S3Part) -> UInt64 {
    condition.withLock {
      parts[part.number] = part
      done += part.size
      return done
    }
  }

  func fail(_ error: any Error) {
    condition.withLock {
      if failure == nil { failure = error }
      condition.broadcast()
    }
  }

  /// The parts stored this run, the bytes they hold and the file's check; rethrows what a
  /// worker failed with.
  func finish() throws -> (parts: [Int: S3Part], done: UInt64, check: ContentCheck) {
    try condition.withLock {
      if let failure { throw failure }
      precondition(hashed == count, "every part is checked before the workers stop")
      return (parts, done, hasher.map { .sha256($0.finish()) } ?? .crc32c(crc32c))
    }
  }
}

/// How a file of `size` bytes divides into parts of `partSize` (the last may be shorter).
struct MultipartPlan: Sendable {
  let size: UInt64
  let partSize: UInt64

  var count: Int { Int((size + partSize - 1) / partSize) }

  /// Part `number` (from 1) as a byte range of the file.
  func range(of number: Int) -> Range<UInt64> {
    let start = UInt64(number - 1) * partSize
    return start..<min(size, start + partSize)
  }
}
