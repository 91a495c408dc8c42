import Foundation
import ReelCodec
import ReelCore
import ReelIO

/// Uploads a local file as one object: one PUT up to the part size, else a multipart
/// upload. A pending upload of the same key (left by a process killed mid-upload) is
/// resumed when every part it holds has the size and MD5 of the file's part of that
/// number, and aborted otherwise. The object counts only after a HEAD shows the file's
/// size, the ETag of the bytes sent and `reel-sha256` metadata equal to `sha256`.
package enum S3FileUpload {
  /// The metadata name of the SHA-256 (hex) Reel knows the object's bytes by.
  package static let sha256Metadata = "reel-sha256"

  /// `progress` gets (bytes uploaded, file size) after each part.
  @discardableResult
  package static func run(
    client: S3Client, bucket: String, key: String, file path: String, sha256: String,
    metadata: [String: String] = [:], retention: S3Retention? = nil,
    progress: ((UInt64, UInt64) -> Void)? = nil
  ) throws -> S3ObjectInfo {
    guard SHA256Digest(hex: sha256) != nil else {
      throw ReelError(.usage, "\"\(sha256)\" is not a SHA-256 in hex (uploading \(path))")
    }
    let file = try PosixFile.openForReading(path)
    let size = try file.size()
    var allMetadata = metadata
    allMetadata[sha256Metadata] = sha256.lowercased()
    let partSize = UInt64(client.settings.partSize)
    let partCount = size == 0 ? 1 : Int((size + partSize - 1) / partSize)
    guard partCount <= s3MaximumParts else {
      throw ReelError(
        .usage, "\(path) is \(size) bytes: more than \(s3MaximumParts) parts of \(partSize >> 20) MiB",
        remedy: "give a larger --s3-part-size (at least \((size / UInt64(s3MaximumParts)) >> 20 + 1) MiB)")
    }

    let pending = try client.pendingUploads(bucket: bucket, prefix: key).filter { $0.key == key }
    let etag: String
    if size <= partSize {
      for upload in pending { try client.abortMultipartUpload(bucket: bucket, key: key, uploadID: upload.uploadID) }
      let body = try file.read(at: 0, count: Int(size))
      guard body.count == Int(size) else { throw ReelError(.io, "\(path) shrank while it was uploaded") }
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
      let missing = (1...partCount).filter { parts[$0] == nil }
      let state = Locked(UploadState())
      // Two parts go out at once: while one connection sends, the other reads and hashes
      // its part, and SeaweedFS and S3 take parts faster side by side. Each part is in
      // memory once (two parts in all).
      let helper = WorkerThread(name: "reel-s3-put") { [settings = client.settings, plan] in
        do {
          let other = try S3Client(settings: settings)
          try uploadParts(
            missing, state: state, plan: plan, file: file, client: other, bucket: bucket, key: key, uploadID: uploadID)
        } catch {
          state.withLock { if $0.failure == nil { $0.failure = error } }
        }
      }
      do {
        try uploadParts(
          missing, state: state, plan: plan, file: file, client: client, bucket: bucket, key: key, uploadID: uploadID
        ) {
          progress?(done + $0, size)
        }
      } catch {
        state.withLock { if $0.failure == nil { $0.failure = error } }
      }
      helper.join()
      let finished = state.withLock { $0 }
      if let failure = finished.failure { throw failure }
      for (number, part) in finished.parts { parts[number] = part }
      done += finished.done
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

  /// Takes the next missing part from `state` until none is left or a worker failed:
  /// reads it, uploads it (its MD5 checked against the ETag), records it.
  private static func uploadParts(
    _ missing: [Int], state: Locked<UploadState>, plan: MultipartPlan, file: PosixFile, client: S3Client,
    bucket: String, key: String, uploadID: String, progress: ((UInt64) -> Void)? = nil
  ) throws {
    while true {
      let next: Int? = state.withLock { state in
        guard state.failure == nil, state.taken < missing.count else { return nil }
        state.taken += 1
        return missing[state.taken - 1]
      }
      guard let number = next else { return }
      let range = plan.range(of: number)
      let bytes = try file.read(at: range.lowerBound, count: Int(range.count))
      guard bytes.count == Int(range.count) else { throw ReelError(.io, "\(file.path) shrank while it was uploaded") }
      let part = try bytes.withUnsafeBytes {
        try client.uploadPart(bucket: bucket, key: key, uploadID: uploadID, number: number, body: $0)
      }
      let done = state.withLock { state in
        state.parts[number] = part
        state.done += part.size
        return state.done
      }
      progress?(done)
    }
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
      parts[part.number] = part
    }
    return parts
  }
}

/// The parts of one upload as its workers store them.
private struct UploadState: Sendable {
  var taken = 0
  var parts: [Int: S3Part] = [:]
  var done: UInt64 = 0
  var failure: (any Error)?
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
