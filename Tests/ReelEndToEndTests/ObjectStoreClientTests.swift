import Foundation
import ReelCodec
import ReelCore
import ReelObjectStore
import ReelTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// The S3 client against a real SeaweedFS (one per suite, with an HTTPS port too):
/// objects, ranges, listings, multipart uploads and their resumption after a kill -9,
/// refused credentials, missing buckets, a stopped and restarted server, TLS. Serialized:
/// one case stops the server.
@Suite(.serialized, .seaweedServer(tls: true))
struct ObjectStoreClientTests {
  let server: SeaweedServer
  let work = TemporaryDirectory("reel-s3-client")

  init() throws {
    server = try SeaweedServer.current
  }

  func bucket(_ name: String, objectLock: Bool = false) throws -> String {
    try server.createBucket(name, objectLock: objectLock)
    return name
  }

  func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
    var generator = SplitMix(seed: seed)
    var bytes = [UInt8](repeating: 0, count: count)
    bytes.withUnsafeMutableBytes { buffer in
      let words = buffer.bindMemory(to: UInt64.self)
      for index in words.indices { words[index] = generator.next() }
    }
    return bytes
  }

  func file(_ name: String, _ bytes: [UInt8]) throws -> String {
    let path = work.path + "/" + name
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
  }

  @Test func objectsRoundTripWithRangesMetadataAndHead() throws {
    let bucket = try bucket("client-objects")
    let client = try S3Client(settings: server.settings)
    try client.checkBucket(bucket)
    let body = randomBytes(300_000, seed: 1)
    let etag = try client.put(bucket: bucket, key: "dir/a b+c.bin", body: body, metadata: ["reel-sha256": "abc"])
    #expect(etag == Hex.encode(body.withUnsafeBytes { MD5Hasher.digest($0) }))

    let info = try #require(try client.head(bucket: bucket, key: "dir/a b+c.bin"))
    #expect(info.size == 300_000)
    #expect(info.etag == etag)
    #expect(info.metadata["reel-sha256"] == "abc")
    #expect(try client.head(bucket: bucket, key: "dir/missing") == nil)

    #expect(try client.get(bucket: bucket, key: "dir/a b+c.bin") == body)
    #expect(try client.get(bucket: bucket, key: "dir/a b+c.bin", range: 1000..<70_000) == Array(body[1000..<70_000]))
    #expect(try client.get(bucket: bucket, key: "dir/a b+c.bin", range: 5..<5) == [])
    var streamed: [UInt8] = []
    try client.get(bucket: bucket, key: "dir/a b+c.bin", range: 299_000..<300_000) { streamed.append(contentsOf: $0) }
    #expect(streamed == Array(body[299_000...]))

    // A range past the end is refused rather than read short.
    #expect(throws: ReelError.self) { try client.get(bucket: bucket, key: "dir/a b+c.bin", range: 299_000..<300_001) }
    #expect {
      try client.get(bucket: bucket, key: "dir/missing")
    } throws: { ($0 as? ReelError)?.kind == .notFound }

    try client.delete(bucket: bucket, key: "dir/a b+c.bin")
    try client.delete(bucket: bucket, key: "dir/a b+c.bin")
    #expect(try client.head(bucket: bucket, key: "dir/a b+c.bin") == nil)
  }

  @Test func listingsFollowContinuationAndStayInsideThePrefix() throws {
    let bucket = try bucket("client-list")
    let client = try S3Client(settings: server.settings)
    client.listPageSize = 2
    let inside = (0..<7).map { "set/archives/\(String(format: "%06d", $0 + 2))-x.reel.tar" }
    for key in inside + ["other/one", "set-other"] {
      try client.put(bucket: bucket, key: key, body: Array(key.utf8))
    }
    let listed = try client.list(bucket: bucket, prefix: "set/")
    #expect(listed.map(\.key) == inside)
    #expect(listed.allSatisfy { $0.size == UInt64($0.key.utf8.count) && !$0.etag.isEmpty && $0.lastModified != nil })
    #expect(try client.list(bucket: bucket, prefix: "nothing/").isEmpty)
    #expect(try client.list(bucket: bucket, prefix: "").count == 9)
  }

  @Test func multipartUploadsCompleteAbortAndReadBack() throws {
    let bucket = try bucket("client-multipart")
    let client = try S3Client(settings: server.settings)
    let body = randomBytes(12 << 20, seed: 2)
    let path = try file("twelve.bin", body)
    let sha256 = SHA256Digest.hash(body).hex
    var reported: [UInt64] = []
    let info = try S3FileUpload.run(
      client: client, bucket: bucket, key: "archives/000002-twelve.reel.tar", file: path, sha256: sha256,
      metadata: ["reel-archive-id": "twelve"]
    ) { done, _ in reported.append(done) }
    #expect(info.size == UInt64(body.count))
    #expect(info.etag.hasSuffix("-3"))
    #expect(info.metadata["reel-sha256"] == sha256)
    #expect(info.metadata["reel-archive-id"] == "twelve")
    #expect(reported.last == UInt64(body.count))
    #expect(try client.pendingUploads(bucket: bucket, prefix: "").isEmpty)

    // Read back front to back by ranged GETs of 1 MiB, fetched ahead.
    let reader = try S3ObjectReader(
      settings: server.settings, bucket: bucket, key: "archives/000002-twelve.reel.tar", chunkSize: 1 << 20)
    #expect(reader.length == UInt64(body.count))
    var read: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 700_000)
    while true {
      let count = try buffer.withUnsafeMutableBytes { try reader.read(into: $0) }
      if count == 0 { break }
      read.append(contentsOf: buffer[0..<count])
    }
    #expect(read == body)

    // Begun, one part stored, aborted: nothing pending, no object.
    let id = try client.createMultipartUpload(bucket: bucket, key: "abandoned")
    let part = try body.withUnsafeBytes {
      try client.uploadPart(
        bucket: bucket, key: "abandoned", uploadID: id, number: 1,
        body: UnsafeRawBufferPointer(rebasing: $0[0..<(5 << 20)]))
    }
    // The server checked the part's CRC-32C and echoed it; its listing need not repeat it.
    #expect(part.crc32c == body.withUnsafeBytes { S3Names.crc32c(UnsafeRawBufferPointer(rebasing: $0[0..<(5 << 20)])) })
    let listed = try client.listParts(bucket: bucket, key: "abandoned", uploadID: id)
    #expect(listed.map(\.number) == [1] && listed.map(\.size) == [part.size] && listed.map(\.etag) == [part.etag])
    #expect(try client.pendingUploads(bucket: bucket, prefix: "aband").map(\.uploadID) == [id])
    try client.abortMultipartUpload(bucket: bucket, key: "abandoned", uploadID: id)
    try client.abortMultipartUpload(bucket: bucket, key: "abandoned", uploadID: id)
    #expect(try client.pendingUploads(bucket: bucket, prefix: "").isEmpty)
    #expect(try client.head(bucket: bucket, key: "abandoned") == nil)
  }

  @Test func anUploadKilledMidwayIsResumedFromItsStoredParts() throws {
    let bucket = try bucket("client-resume")
    let body = randomBytes(12 << 20 + 12345, seed: 3)
    let path = try file("resume.bin", body)
    let key = "archives/000002-resume.reel.tar"
    let child = URL(fileURLWithPath: reelExecutable).deletingLastPathComponent().appendingPathComponent("S3UploadChild")
      .path
    var environment: [String: String?] = server.environment.mapValues { $0 }
    environment["REEL_S3_PART_SIZE_MIB"] = "5"
    let killed = try run(child, [path, bucket, key, "2"], environment: environment)
    #expect(killed.signal == SIGKILL, "\(killed.output)")
    #expect(killed.stdout.contains("stored"))

    let client = try S3Client(settings: server.settings)
    let pending = try client.pendingUploads(bucket: bucket, prefix: key)
    try #require(pending.count == 1)
    // At least the two parts it saw stored (two go out at once, so maybe the third).
    let stored = try client.listParts(bucket: bucket, key: key, uploadID: pending[0].uploadID)
    #expect(stored.count >= 2)
    #expect(try client.head(bucket: bucket, key: key) == nil)

    // A second, stale upload of the key whose part is of other bytes: aborted, not used.
    let stale = try client.createMultipartUpload(bucket: bucket, key: key)
    _ = try randomBytes(5 << 20, seed: 4).withUnsafeBytes {
      try client.uploadPart(bucket: bucket, key: key, uploadID: stale, number: 1, body: $0)
    }

    var first: UInt64?
    let info = try S3FileUpload.run(
      client: client, bucket: bucket, key: key, file: path, sha256: SHA256Digest.hash(body).hex
    ) {
      done, _ in if first == nil { first = done }
    }
    // It started from the parts the killed process stored. The part that was in flight at
    // the kill may still have landed after the listing above, so the resume can start
    // further on, but only at a part boundary.
    let storedBytes = stored.reduce(0) { $0 + $1.size }
    let resumedFrom = try #require(first)
    #expect(resumedFrom >= storedBytes)
    #expect(resumedFrom % UInt64(5 << 20) == 0 || resumedFrom == UInt64(body.count))
    #expect(info.size == UInt64(body.count))
    #expect(try client.pendingUploads(bucket: bucket, prefix: "").isEmpty)
    #expect(try client.get(bucket: bucket, key: key) == body)
  }

  /// A server that ignores x-amz-checksum-crc32c does not echo it: the client then checks
  /// the ETag against the bytes' MD5 and sends Content-MD5 from then on, single objects and
  /// parts alike, and the upload still comes out whole.
  @Test func aServerThatIgnoresChecksumsIsCheckedByMD5Instead() throws {
    let bucket = try bucket("client-no-checksums")
    let s3Port = try #require(Int(server.endpoint.split(separator: ":").last ?? ""))
    let relay = try ConnectionCutter(target: s3Port, cutAfter: Int.max, withholdingChecksums: true)
    defer { relay.close() }
    var settings = server.settings(endpoint: "http://127.0.0.1:\(relay.port)")
    settings.partSize = 5 << 20
    let client = try S3Client(settings: settings)
    #expect(client.sendsCRC32C)
    let small = randomBytes(300_000, seed: 9)
    let etag = try client.put(bucket: bucket, key: "small", body: small)
    #expect(etag == Hex.encode(small.withUnsafeBytes { MD5Hasher.digest($0) }))
    #expect(!client.sendsCRC32C, "a checksum not echoed was not checked")

    let body = randomBytes(11 << 20, seed: 10)
    let path = try file("unchecked.bin", body)
    let info = try S3FileUpload.run(
      client: client, bucket: bucket, key: "archives/000002-unchecked.reel.tar", file: path,
      sha256: SHA256Digest.hash(body).hex)
    #expect(info.etag.hasSuffix("-3"))
    #expect(try client.get(bucket: bucket, key: "archives/000002-unchecked.reel.tar") == body)
  }

  @Test func refusedCredentialsAndMissingBucketsSaySo() throws {
    let bucket = try bucket("client-refusals")
    var wrongSecret = server.settings
    wrongSecret.credentials.secretAccessKey = "not-the-secret"
    #expect {
      try S3Client(settings: wrongSecret).checkBucket(bucket)
    } throws: { error in
      let error = error as? ReelError
      return error?.kind == .wrongKey && error?.description.contains("AWS_SECRET_ACCESS_KEY") == true
    }
    var unknownKey = server.settings
    unknownKey.credentials.accessKeyID = "NOSUCHKEY"
    #expect(throws: ReelError.self) { try S3Client(settings: unknownKey).put(bucket: bucket, key: "x", body: [1]) }

    let client = try S3Client(settings: server.settings)
    #expect {
      try client.checkBucket("no-such-bucket")
    } throws: { error in
      let error = error as? ReelError
      return error?.kind == .notFound && error?.description.contains("no-such-bucket") == true
    }
    #expect(throws: ReelError.self) { try client.checkBucket("Not_A_Bucket") }
  }

  @Test func objectLockIsReportedPerBucket() throws {
    let plain = try bucket("client-nolock")
    let locked = try bucket("client-locked", objectLock: true)
    let client = try S3Client(settings: server.settings)
    #expect(try client.objectLockEnabled(bucket: plain) == false)
    #expect(try client.objectLockEnabled(bucket: locked) == true)

    // Retention set with the PUT is what the server then reports for the object.
    let until = Date(timeIntervalSinceNow: 86_400)
    try client.put(
      bucket: locked, key: "retained", body: [1, 2, 3], retention: S3Retention(mode: .governance, until: until))
    let retention = try runChecked(
      try tool("curl"), ["-fsS"] + server.signing + ["\(server.endpoint)/\(locked)/retained?retention="])
    #expect(retention.stdout.contains("<Mode>GOVERNANCE</Mode>"), "\(retention.stdout)")
  }

  @Test func tlsIsVerifiedAndTheCABundleIsHonoured() throws {
    let bucket = try bucket("client-tls")
    let https = try #require(server.httpsEndpoint)
    #expect {
      try S3Client(settings: server.settings(endpoint: https)).checkBucket(bucket)
    } throws: { ($0 as? ReelError)?.description.contains("--s3-ca-bundle") == true }
    let trusted = try S3Client(settings: server.settings(endpoint: https, caBundle: server.caBundle))
    try trusted.checkBucket(bucket)
    try trusted.put(bucket: bucket, key: "over-tls", body: [1, 2, 3])
    #expect(try trusted.get(bucket: bucket, key: "over-tls") == [1, 2, 3])
  }

  @Test func aReadCutMidwayIsTakenUpWhereItStopped() throws {
    let bucket = try bucket("client-cut")
    let body = randomBytes(3 << 20, seed: 5)
    try S3Client(settings: server.settings).put(bucket: bucket, key: "cut", body: body)
    let s3Port = try #require(Int(server.endpoint.split(separator: ":").last ?? ""))
    let relay = try ConnectionCutter(target: s3Port, cutAfter: 1 << 20)
    defer { relay.close() }
    let client = try S3Client(settings: server.settings(endpoint: "http://127.0.0.1:\(relay.port)"))
    var pieces: [UInt8] = []
    try client.get(bucket: bucket, key: "cut", range: nil) { pieces.append(contentsOf: $0) }
    #expect(relay.didCut)
    #expect(pieces == body)
    // The second request asked only for what the first did not deliver.
    let requests = relay.seen
    #expect(requests.count == 2, "\(requests)")
    #expect(
      requests.last?.contains("bytes=") == true && requests.last?.hasSuffix("-\(body.count - 1)") == true, "\(requests)"
    )
  }

  @Test func anUploadCutMidwayIsSentAgain() throws {
    let bucket = try bucket("client-cut-put")
    let body = randomBytes(3 << 20, seed: 6)
    let s3Port = try #require(Int(server.endpoint.split(separator: ":").last ?? ""))
    let relay = try ConnectionCutter(target: s3Port, cutAfter: 1 << 20, cuttingRequest: true)
    defer { relay.close() }
    let client = try S3Client(settings: server.settings(endpoint: "http://127.0.0.1:\(relay.port)"))
    let etag = try client.put(bucket: bucket, key: "cut", body: body)
    #expect(relay.didCut)
    #expect(relay.seen.count == 2, "\(relay.seen)")
    #expect(etag == Hex.encode(body.withUnsafeBytes { MD5Hasher.digest($0) }))
    #expect(try S3Client(settings: server.settings).get(bucket: bucket, key: "cut") == body)
  }

  @Test func aCompletionWhoseAnswerIsLostIsSettledByLookingAtTheObject() throws {
    let bucket = try bucket("client-lost-complete")
    let body = randomBytes(5 << 20, seed: 7)
    let direct = try S3Client(settings: server.settings)
    let id = try direct.createMultipartUpload(bucket: bucket, key: "joined")
    let part = try body.withUnsafeBytes {
      try direct.uploadPart(bucket: bucket, key: "joined", uploadID: id, number: 1, body: $0)
    }
    let s3Port = try #require(Int(server.endpoint.split(separator: ":").last ?? ""))
    // The server completes the upload; its answer never arrives.
    let relay = try ConnectionCutter(target: s3Port, cutAfter: 0)
    defer { relay.close() }
    let client = try S3Client(settings: server.settings(endpoint: "http://127.0.0.1:\(relay.port)"))
    try client.completeMultipartUpload(bucket: bucket, key: "joined", uploadID: id, parts: [part])
    #expect(relay.didCut)
    #expect(relay.seen.first?.hasPrefix("POST") == true, "\(relay.seen)")
    #expect(relay.seen.dropFirst().allSatisfy { $0.hasPrefix("HEAD") }, "\(relay.seen)")
    #expect(try direct.get(bucket: bucket, key: "joined") == body)
    #expect(try direct.pendingUploads(bucket: bucket, prefix: "").isEmpty)
  }

  /// Last in the suite (serialized): stops and restarts the server.
  @Test func aStoppedServerFailsClearlyAndARestartWithinTheRetriesIsRidden() throws {
    let bucket = try bucket("client-restart")
    let client = try S3Client(settings: server.settings)
    try client.put(bucket: bucket, key: "kept", body: [7, 7, 7])

    server.stop()
    #expect {
      try client.head(bucket: bucket, key: "kept")
    } throws: { error in
      let text = (error as? ReelError)?.description ?? ""
      return text.contains("is the server running") && text.contains(server.endpoint)
    }

    // Restarted while a patient client is still retrying: the read succeeds, and what was
    // stored before the stop is still there.
    var patient = server.settings
    patient.retry = S3RetryPolicy(attempts: 12, firstDelay: .milliseconds(200), maxDelay: .seconds(2))
    let restart = BackgroundTask(name: "restart-weed") { [server] in try server.start() }
    let read = try S3Client(settings: patient).get(bucket: bucket, key: "kept")
    try restart.value()
    #expect(read == [7, 7, 7])
  }
}
