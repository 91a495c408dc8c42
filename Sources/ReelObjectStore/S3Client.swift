import Foundation
import ReelCodec
import ReelCore

#if canImport(Glibc)
  import Glibc
#endif

/// An S3 client on one curl easy handle (one connection, reused): use it from one thread
/// at a time. Idempotent requests are tried again with backoff on 5xx, 429, timeouts and
/// broken connections; everything a reply says is checked before it is believed.
package final class S3Client {
  package let settings: S3Settings
  private let connection: CurlConnection
  /// Keys per listing page (1000 is S3's most); tests make it small to exercise continuation.
  package var listPageSize = 1000
  /// The most objects or uploads one listing returns before it is refused as absurd.
  package var listLimit = 10_000_000
  /// Whether uploads carry their CRC-32C (x-amz-checksum-crc32c) for the server to check:
  /// so until a server stores one without echoing it back, which shows it ignored the
  /// header; from then on this client sends Content-MD5, which every server checks.
  package private(set) var sendsCRC32C = true

  package init(settings: S3Settings) throws {
    self.settings = settings
    connection = try CurlConnection(settings: settings)
  }

  // MARK: Buckets

  /// Throws a clear error unless `bucket` exists and these credentials may list it.
  package func checkBucket(_ bucket: String) throws {
    try S3Names.checkBucket(bucket)
    let request = HTTPRequest(method: "GET", url: url(bucket, query: [("list-type", "2"), ("max-keys", "1")]))
    let response = try send(request, doing: "checking", bucket: bucket, key: nil, idempotent: true)
    guard response.isSuccess else { throw failure(response, doing: "checking", bucket: bucket, key: nil) }
  }

  /// Whether `bucket` has Object Lock enabled (false where the server has no Object Lock).
  package func objectLockEnabled(bucket: String) throws -> Bool {
    let request = HTTPRequest(method: "GET", url: url(bucket, query: [("object-lock", "")]))
    let response = try send(
      request, doing: "reading the Object Lock configuration of", bucket: bucket, key: nil, idempotent: true)
    if response.isSuccess {
      let root = try S3XMLElement.parse(response.body, what: "Object Lock configuration")
      return root.value("ObjectLockEnabled") == "Enabled"
    }
    if let (code, _) = S3Failure.code(of: response),
      ["ObjectLockConfigurationNotFoundError", "NotImplemented", "MethodNotAllowed"].contains(code)
    {
      return false
    }
    if response.status == 404 || response.status == 501 || response.status == 405 {
      if S3Failure.code(of: response)?.code == "NoSuchBucket" {
        throw failure(response, doing: "reading the Object Lock configuration of", bucket: bucket, key: nil)
      }
      return false
    }
    throw failure(response, doing: "reading the Object Lock configuration of", bucket: bucket, key: nil)
  }

  // MARK: Objects

  /// The object's size, ETag and metadata; nil when there is no such object.
  package func head(bucket: String, key: String) throws -> S3ObjectInfo? {
    let request = HTTPRequest(method: "HEAD", url: try url(bucket, key: key))
    let response = try send(request, doing: "looking up", bucket: bucket, key: key, idempotent: true)
    if response.status == 404 { return nil }
    guard response.isSuccess else { throw failure(response, doing: "looking up", bucket: bucket, key: key) }
    guard let length = response.headers["content-length"], let size = UInt64(length) else {
      throw ReelError(.protocolViolation, "\(settings.endpoint.url) gave no size for s3://\(bucket)/\(key)")
    }
    var metadata: [String: String] = [:]
    for (name, value) in response.headers where name.hasPrefix("x-amz-meta-") {
      metadata[String(name.dropFirst("x-amz-meta-".count))] = value
    }
    return S3ObjectInfo(
      key: key, size: size, etag: S3Names.unquoted(response.headers["etag"] ?? ""),
      lastModified: S3Time.parse(http: response.headers["last-modified"]), metadata: metadata)
  }

  /// Stores `body` as one object; returns its ETag. The server checks the bytes it got
  /// (see `upload`).
  @discardableResult
  package func put(
    bucket: String, key: String, body: [UInt8], metadata: [String: String] = [:], retention: S3Retention? = nil
  ) throws -> String {
    try body.withUnsafeBytes { bytes in
      let request = HTTPRequest(method: "PUT", url: try url(bucket, key: key))
      return try upload(
        request, body: bytes, metadata: metadata, retention: retention, doing: "storing", bucket: bucket, key: key,
        what: "s3://\(bucket)/\(key)"
      ).etag
    }
  }

  /// The object's bytes, or those in `range`; the length is checked against what was asked.
  package func get(bucket: String, key: String, range: Range<UInt64>? = nil) throws -> [UInt8] {
    var bytes: [UInt8] = []
    if let range { bytes.reserveCapacity(Int(min(range.count, 256 << 20))) }
    try get(bucket: bucket, key: key, range: range) { bytes.append(contentsOf: $0) }
    return bytes
  }

  /// Streams the object's bytes (or those in `range`) to `sink` in the order they come. A
  /// broken transfer is taken up again where it stopped, so `sink` sees each byte once.
  package func get(
    bucket: String, key: String, range: Range<UInt64>?, into sink: (UnsafeRawBufferPointer) throws -> Void
  ) throws {
    try withoutActuallyEscaping(sink) { try stream(bucket: bucket, key: key, range: range, into: $0) }
  }

  private func stream(
    bucket: String, key: String, range: Range<UInt64>?, into sink: @escaping (UnsafeRawBufferPointer) throws -> Void
  ) throws {
    if let range, range.isEmpty { return }
    var delivered: UInt64 = 0
    // Known from the range, or from the first reply's Content-Length.
    var expected: UInt64? = range.map { UInt64($0.count) }
    let objectURL = try url(bucket, key: key)
    try retrying(doing: "reading", bucket: bucket, key: key) {
      var request = HTTPRequest(method: "GET", url: objectURL)
      request.responseLimit = 1 << 20
      if let range {
        request.headers.append("Range: bytes=\(range.lowerBound + delivered)-\(range.upperBound - 1)")
        request.sinkStatus = 206
        request.sinkLength = UInt64(range.count) - delivered
      } else if let expected, delivered > 0 {
        request.headers.append("Range: bytes=\(delivered)-\(expected - 1)")
        request.sinkStatus = 206
        request.sinkLength = expected - delivered
      } else {
        request.sinkStatus = 200
      }
      return try connection.perform(request) { bytes in
        guard delivered + UInt64(bytes.count) <= expected ?? .max else {
          throw ReelError(
            .protocolViolation, "\(self.settings.endpoint.url) sent more of s3://\(bucket)/\(key) than it announced")
        }
        try sink(bytes)
        delivered += UInt64(bytes.count)
      } headers: { headers in
        if expected == nil { expected = headers["content-length"].flatMap(UInt64.init) }
      }
    }
    if let expected, delivered != expected {
      throw ReelError(
        .io, "s3://\(bucket)/\(key) ended after \(delivered) of \(expected) bytes",
        remedy: "try again; the object may be changing")
    }
  }

  /// Every object under `prefix`, following continuation tokens; keys outside the prefix
  /// in a reply are refused.
  package func list(bucket: String, prefix: String) throws -> [S3ObjectInfo] {
    var objects: [S3ObjectInfo] = []
    var token: String?
    var seenTokens = Set<String>()
    repeat {
      var query = [("list-type", "2"), ("prefix", prefix), ("max-keys", String(listPageSize))]
      if let token { query.append(("continuation-token", token)) }
      let request = HTTPRequest(method: "GET", url: url(bucket, query: query))
      let body = try reply(request, doing: "listing", bucket: bucket, key: prefix.isEmpty ? nil : prefix)
      let page = try S3Replies.objects(body, prefix: prefix, source: "\(settings.endpoint.url) listing s3://\(bucket)")
      objects += page.objects
      guard objects.count <= listLimit else {
        throw ReelError(.protocolViolation, "s3://\(bucket)/\(prefix) lists more than \(listLimit) objects")
      }
      if let next = page.next, !seenTokens.insert(next).inserted {
        throw ReelError(
          .protocolViolation, "\(settings.endpoint.url) gave a listing of s3://\(bucket) that goes round in circles")
      }
      token = page.next
    } while token != nil
    return objects
  }

  /// Deletes the object (no error if it is already gone).
  package func delete(bucket: String, key: String) throws {
    let request = HTTPRequest(method: "DELETE", url: try url(bucket, key: key))
    let response = try send(request, doing: "deleting", bucket: bucket, key: key, idempotent: true)
    guard response.isSuccess || (response.status == 404 && S3Failure.code(of: response)?.code != "NoSuchBucket") else {
      throw failure(response, doing: "deleting", bucket: bucket, key: key)
    }
  }

  // MARK: Multipart uploads

  /// Begins a multipart upload; its ID.
  package func createMultipartUpload(
    bucket: String, key: String, metadata: [String: String] = [:], retention: S3Retention? = nil
  ) throws -> String {
    var request = HTTPRequest(method: "POST", url: try url(bucket, key: key, query: [("uploads", "")]))
    request.headers = try uploadHeaders(md5: nil, crc32c: nil, metadata: metadata, retention: retention)
    // S3 takes part checksums only in an upload begun with their algorithm.
    if sendsCRC32C { request.headers.append("x-amz-checksum-algorithm: CRC32C") }
    // Not idempotent: a retry could leave a second upload behind (S3FileUpload cleans such up).
    let root = try document(
      request, doing: "starting the upload of", bucket: bucket, key: key, root: "InitiateMultipartUploadResult",
      idempotent: false)
    guard let id = root.value("UploadId"), !id.isEmpty, id.utf8.count <= 1024 else {
      throw ReelError(
        .protocolViolation, "\(settings.endpoint.url) began an upload of s3://\(bucket)/\(key) with no upload ID")
    }
    return id
  }

  /// Stores part `number` (1…10 000); the server checks the bytes it got (see `upload`).
  /// `crc32c`: the part's CRC-32C when the caller computed it already.
  package func uploadPart(
    bucket: String, key: String, uploadID: String, number: Int, body: UnsafeRawBufferPointer, crc32c: UInt32? = nil
  ) throws -> S3Part {
    guard (1...s3MaximumParts).contains(number) else {
      throw ReelError(.usage, "part \(number) of s3://\(bucket)/\(key) is outside S3's 1…\(s3MaximumParts)")
    }
    let request = HTTPRequest(
      method: "PUT",
      url: try url(bucket, key: key, query: [("partNumber", String(number)), ("uploadId", uploadID)]))
    let stored = try upload(
      request, body: body, crc32c: crc32c, metadata: [:], retention: nil, doing: "storing part \(number) of",
      bucket: bucket, key: key, what: "part \(number) of s3://\(bucket)/\(key)")
    return S3Part(number: number, etag: stored.etag, size: UInt64(body.count), crc32c: stored.crc32c)
  }

  /// Sends an upload's body with its CRC-32C, which the server checks against the bytes it
  /// got and echoes back (S3 and current engines; far cheaper to compute than MD5). A
  /// server that does not echo it ignored it: its ETag must then be the MD5 of the bytes
  /// sent, and this client sends Content-MD5 from then on. Content-MD5 also goes with a
  /// retention date, which S3 requires it for.
  private func upload(
    _ base: HTTPRequest, body: UnsafeRawBufferPointer, crc32c known: UInt32? = nil, metadata: [String: String],
    retention: S3Retention?, doing operation: String, bucket: String, key: String, what: String
  ) throws -> (etag: String, crc32c: String?) {
    let crc32c = sendsCRC32C ? S3Names.crc32c(value: known ?? CRC32C.checksum(body)) : nil
    let md5 = crc32c == nil || retention != nil ? MD5Hasher.digest(body) : nil
    var request = base
    request.headers = try uploadHeaders(md5: md5, crc32c: crc32c, metadata: metadata, retention: retention)
    let response = try send(request, body: body, doing: operation, bucket: bucket, key: key, idempotent: true)
    guard response.isSuccess else { throw failure(response, doing: operation, bucket: bucket, key: key) }
    if let crc32c {
      switch response.headers["x-amz-checksum-crc32c"] {
      case crc32c?:
        let etag = S3Names.unquoted(response.headers["etag"] ?? "")
        guard !etag.isEmpty else {
          throw ReelError(.protocolViolation, "\(settings.endpoint.url) stored \(what) and gave no ETag")
        }
        return (etag, crc32c)
      case let other?:
        throw ReelError(
          .corrupt,
          "\(settings.endpoint.url) stored \(what) with CRC-32C \(other), not that of the bytes sent (\(crc32c))")
      case nil:
        sendsCRC32C = false
      }
    }
    return (try checkedETag(response, md5: md5 ?? MD5Hasher.digest(body), what: what), nil)
  }

  /// The parts an upload holds so far, in order of number.
  package func listParts(bucket: String, key: String, uploadID: String) throws -> [S3Part] {
    var byNumber: [Int: S3Part] = [:]
    var marker = 0
    while true {
      var query = [("uploadId", uploadID), ("max-parts", "1000")]
      if marker > 0 { query.append(("part-number-marker", String(marker))) }
      let request = HTTPRequest(method: "GET", url: try url(bucket, key: key, query: query))
      let body = try reply(request, doing: "listing the parts of", bucket: bucket, key: key)
      let page = try S3Replies.parts(
        body, after: marker, source: "\(settings.endpoint.url) listing the parts of s3://\(bucket)/\(key)")
      // A part stored twice is listed once by S3; do not count on it.
      for part in page.parts { byNumber[part.number] = part }
      guard let next = page.next else { break }
      marker = next
    }
    return byNumber.values.sorted { $0.number < $1.number }
  }

  /// Joins `parts` into the object. A try whose answer was lost is settled by a HEAD: the
  /// object is there with the multipart ETag of exactly these parts, or the upload is still
  /// open and the request is sent again.
  package func completeMultipartUpload(bucket: String, key: String, uploadID: String, parts: [S3Part]) throws {
    guard !parts.isEmpty, parts.count <= s3MaximumParts else {
      throw ReelError(
        .usage, "a multipart upload of s3://\(bucket)/\(key) needs 1…\(s3MaximumParts) parts, not \(parts.count)")
    }
    var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
    for part in parts.sorted(by: { $0.number < $1.number }) {
      let checksum = part.crc32c.map { "<ChecksumCRC32C>\($0)</ChecksumCRC32C>" } ?? ""
      xml += "<Part><PartNumber>\(part.number)</PartNumber><ETag>\"\(part.etag)\"</ETag>\(checksum)</Part>"
    }
    xml += "</CompleteMultipartUpload>"
    let body = Array(xml.utf8)
    let expected = S3Names.multipartETag(parts)
    let operation = "completing the upload of"
    var lastProblem: ReelError?
    for attempt in 1...settings.retry.attempts {
      if attempt > 1 {
        pause(before: attempt - 1)
        if let info = try? head(bucket: bucket, key: key), info.etag == expected { return }
      }
      var request = HTTPRequest(method: "POST", url: try url(bucket, key: key, query: [("uploadId", uploadID)]))
      request.headers = ["Content-Type: application/xml", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]
      let response: HTTPResponse
      do {
        response = try body.withUnsafeBytes {
          try send(request, body: $0, doing: operation, bucket: bucket, key: key, idempotent: false)
        }
      } catch let error as ReelError where error.kind == .io {
        lastProblem = error  // The answer was lost; the HEAD before the next try tells.
        continue
      }
      if response.isSuccess {
        // S3 may answer 200 and then, after a long wait, an error document.
        let root = try S3XMLElement.parse(response.body, what: "reply to \(operation) s3://\(bucket)/\(key)")
        if root.name == "CompleteMultipartUploadResult" { return }
        guard root.name == "Error" else {
          throw ReelError(
            .protocolViolation,
            "\(settings.endpoint.url) answered \(operation) s3://\(bucket)/\(key) with <\(root.name)>")
        }
        let embedded = HTTPResponse(status: 200, headers: [:], body: response.body)
        lastProblem = failure(embedded, doing: operation, bucket: bucket, key: key)
        if S3Failure.isTransient(embedded) { continue }
        throw lastProblem!
      }
      if S3Failure.isTransient(response) {
        lastProblem = failure(response, doing: operation, bucket: bucket, key: key)
        continue
      }
      // An earlier try completed it and its answer was lost.
      if S3Failure.code(of: response)?.code == "NoSuchUpload", let info = try head(bucket: bucket, key: key),
        info.etag == expected
      {
        return
      }
      throw failure(response, doing: operation, bucket: bucket, key: key)
    }
    throw ReelError(
      .io,
      "\(settings.endpoint.url) did not complete the upload of s3://\(bucket)/\(key) in \(settings.retry.attempts) tries: \(lastProblem?.message ?? "")",
      remedy: "try again; the stored parts are kept until the upload is completed or aborted")
  }

  /// Gives up an upload and frees its parts (no error if it is already gone).
  package func abortMultipartUpload(bucket: String, key: String, uploadID: String) throws {
    let request = HTTPRequest(method: "DELETE", url: try url(bucket, key: key, query: [("uploadId", uploadID)]))
    let response = try send(request, doing: "aborting the upload of", bucket: bucket, key: key, idempotent: true)
    guard response.isSuccess || S3Failure.code(of: response)?.code == "NoSuchUpload" else {
      throw failure(response, doing: "aborting the upload of", bucket: bucket, key: key)
    }
  }

  /// Multipart uploads under `prefix` begun and not completed or aborted.
  package func pendingUploads(bucket: String, prefix: String) throws -> [S3PendingUpload] {
    var uploads: [S3PendingUpload] = []
    var markers: (key: String, upload: String)?
    repeat {
      var query = [("uploads", ""), ("prefix", prefix), ("max-uploads", String(listPageSize))]
      if let markers { query += [("key-marker", markers.key), ("upload-id-marker", markers.upload)] }
      let request = HTTPRequest(method: "GET", url: url(bucket, query: query))
      let body = try reply(request, doing: "listing the pending uploads of", bucket: bucket, key: nil)
      let page = try S3Replies.uploads(
        body, prefix: prefix, source: "\(settings.endpoint.url) listing the pending uploads of s3://\(bucket)")
      uploads += page.uploads
      guard uploads.count <= listLimit else {
        throw ReelError(.protocolViolation, "s3://\(bucket)/\(prefix) lists more than \(listLimit) pending uploads")
      }
      if let next = page.next, let markers, next.key == markers.key, next.upload == markers.upload {
        throw ReelError(
          .protocolViolation, "\(settings.endpoint.url) gave an upload listing of s3://\(bucket) that does not move on")
      }
      markers = page.next
    } while markers != nil
    return uploads
  }

  // MARK: Requests

  private func url(_ bucket: String, key: String? = nil, query: [(String, String)] = []) throws -> String {
    try S3Names.checkBucket(bucket)
    if let key { try S3Names.checkKey(key) }
    return S3Names.url(endpoint: settings.endpoint, bucket: bucket, key: key, query: query)
  }

  private func url(_ bucket: String, query: [(String, String)]) -> String {
    S3Names.url(endpoint: settings.endpoint, bucket: bucket, key: nil, query: query)
  }

  private func uploadHeaders(md5: [UInt8]?, crc32c: String?, metadata: [String: String], retention: S3Retention?)
    throws -> [String]
  {
    // The body is checked by its CRC-32C or Content-MD5 (and Reel's own SHA-256, re-read by
    // HEAD), not by a signed payload hash, which would read every byte once more.
    var headers = ["x-amz-content-sha256: UNSIGNED-PAYLOAD", "Content-Type: application/octet-stream"]
    if let md5 { headers.append("Content-MD5: \(Data(md5).base64EncodedString())") }
    if let crc32c { headers.append("x-amz-checksum-crc32c: \(crc32c)") }
    for (name, value) in metadata.sorted(by: { $0.key < $1.key }) {
      try S3Names.checkMetadata(name: name, value: value)
      headers.append("x-amz-meta-\(name.lowercased()): \(value)")
    }
    if let retention {
      headers.append("x-amz-object-lock-mode: \(retention.mode.rawValue)")
      headers.append("x-amz-object-lock-retain-until-date: \(S3Time.iso(retention.until))")
    }
    return headers
  }

  private func checkedETag(_ response: HTTPResponse, md5: [UInt8], what: String) throws -> String {
    let etag = S3Names.unquoted(response.headers["etag"] ?? "")
    // Services that encrypt with KMS give other ETags; a 32-digit one must be the MD5.
    if etag.utf8.count == 32, Hex.decode(etag) != nil, etag.lowercased() != Hex.encode(md5) {
      throw ReelError(
        .corrupt,
        "\(settings.endpoint.url) stored \(what) with ETag \(etag), not the MD5 of the bytes sent (\(Hex.encode(md5)))")
    }
    return etag.isEmpty ? Hex.encode(md5) : etag
  }

  /// Sends a request and returns the body of its successful reply.
  private func reply(_ request: HTTPRequest, doing operation: String, bucket: String, key: String?) throws -> [UInt8] {
    let response = try send(request, doing: operation, bucket: bucket, key: key, idempotent: true)
    guard response.isSuccess else { throw failure(response, doing: operation, bucket: bucket, key: key) }
    return response.body
  }

  /// Sends a request whose successful reply is an XML document with root `root`.
  private func document(
    _ request: HTTPRequest, doing operation: String, bucket: String, key: String?, root: String, idempotent: Bool = true
  ) throws -> S3XMLElement {
    let response = try send(request, doing: operation, bucket: bucket, key: key, idempotent: idempotent)
    guard response.isSuccess else { throw failure(response, doing: operation, bucket: bucket, key: key) }
    let document = try S3XMLElement.parse(response.body, what: "reply to \(operation) s3://\(bucket)")
    guard document.name == root else {
      throw ReelError(
        .protocolViolation,
        "\(settings.endpoint.url) answered \(operation) s3://\(bucket) with <\(document.name)>, not <\(root)>")
    }
    return document
  }

  /// Sends `request`, again after a pause when the service or network failed for now and
  /// the request is idempotent. Returns the last response; throws for transport failures.
  private func send(
    _ request: HTTPRequest, body: UnsafeRawBufferPointer? = nil, doing operation: String, bucket: String, key: String?,
    idempotent: Bool
  ) throws -> HTTPResponse {
    var attempt = 0
    while true {
      attempt += 1
      let retryable = idempotent && attempt < settings.retry.attempts
      do {
        let response = try connection.perform(request, body: body)
        if retryable, S3Failure.isTransient(response) {
          pause(before: attempt)
          continue
        }
        return response
      } catch let failure as TransportFailure {
        if retryable, failure.isTransient {
          pause(before: attempt)
          continue
        }
        throw S3Failure.error(failure, doing: operation, bucket: bucket, key: key, endpoint: settings.endpoint)
      }
    }
  }

  /// `send` for GETs into a sink: `perform` does one try, taking up where the last stopped.
  private func retrying(doing operation: String, bucket: String, key: String, perform: () throws -> HTTPResponse) throws
  {
    var attempt = 0
    while true {
      attempt += 1
      let retryable = attempt < settings.retry.attempts
      do {
        let response = try perform()
        if response.isSuccess { return }
        if retryable, S3Failure.isTransient(response) {
          pause(before: attempt)
          continue
        }
        throw failure(response, doing: operation, bucket: bucket, key: key)
      } catch let failure as TransportFailure {
        if retryable, failure.isTransient {
          pause(before: attempt)
          continue
        }
        throw S3Failure.error(failure, doing: operation, bucket: bucket, key: key, endpoint: settings.endpoint)
      }
    }
  }

  private func failure(_ response: HTTPResponse, doing operation: String, bucket: String, key: String?) -> ReelError {
    S3Failure.error(response, doing: operation, bucket: bucket, key: key, endpoint: settings.endpoint)
  }

  private func pause(before attempt: Int) {
    let delay = settings.retry.delay(before: attempt)
    let microseconds = max(0, delay.milliseconds * 1000)
    usleep(useconds_t(min(microseconds, Int64(UInt32.max))))
  }
}
