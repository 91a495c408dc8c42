import Foundation
import ReelArchive
import ReelCodec
import ReelCore
import ReelIO
import ReelMedia
import ReelObjectStore
import ReelStore
import ReelTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// `s3://` media on a real SeaweedFS (one per suite): export, scan, rehydrate, interrupted
/// uploads, a server that dies mid-export, refusals, expiry and retention
/// (docs/object-storage.md). Archives are about a megabyte, one of 12 MiB for multipart.
@Suite(.serialized, .seaweedServer()) struct ObjectStoreMediaTests {
  let server: SeaweedServer

  init() throws { server = try SeaweedServer.current }

  /// A sandbox whose `reel` reaches the server; tests share the bucket `reel`, each under a
  /// prefix of its own (SeaweedFS gives every bucket volumes of its own, and a test server
  /// has few).
  func sandbox() throws -> (MediaSandbox, [String: String]) {
    let sandbox = try MediaSandbox()
    S3Settings.current = server.settings
    if (try? client().checkBucket("reel")) == nil {
      try server.createBucket("reel")
      try waitUntilWritable("reel")
    }
    return (sandbox, server.environment.merging(["REEL_STORE": sandbox.store]) { _, new in new })
  }

  func client() throws -> S3Client { try S3Client(settings: server.settings) }

  /// SeaweedFS grows a new bucket's first volume on its first write, refusing writes
  /// (HTTP 500) until then; a probe object, removed again, waits for that.
  func waitUntilWritable(_ bucket: String) throws {
    let s3 = try client()
    for attempt in 0..<100 {
      do {
        try s3.put(bucket: bucket, key: "reel-probe", body: [1])
        try s3.delete(bucket: bucket, key: "reel-probe")
        return
      } catch  where attempt < 99 {
        usleep(100_000)
      }
    }
  }

  @Test func exportScanAndRehydrateFromABucketRestoreEveryBookmarkBitExact() throws {
    let (sandbox, environment) = try sandbox()
    let maker = try ArchiveMaker()
    var states: [String: String] = [:]
    var archives: [SealedArchive] = []
    for bookmark in ["a", "b", "c"] {
      archives.append(try maker.seal(randomBytes: 700_000, bookmark: bookmark))
      states[bookmark] = SHA256Digest.hash(maker.fixture.model).hex
    }
    let media = "s3://reel/site-a"
    func reel(_ arguments: String...) throws -> CommandResult {
      try run(reelExecutable, arguments, environment: environment)
    }
    #expect(try reel("init").status == 0)
    let label = try reel("media", "label", media, "--name", "S3A")
    #expect(label.status == 0, "\(label.output)")
    let export = try reel("export", archives[0].path, archives[1].path, archives[2].path, "--to", media)
    #expect(export.status == 0 && export.stdout.contains("S3A file 4, verified"), "\(export.output)")
    // The bucket holds the documented layout, each archive byte for byte with its metadata.
    let keys = try client().list(bucket: "reel", prefix: "site-a/").map(\.key).sorted()
    let names = archives.enumerated().map {
      "site-a/archives/" + String(format: "%06d-", $0.offset + 2) + ($0.element.path as NSString).lastPathComponent
    }
    #expect(keys == (names + ["site-a/REEL-LABEL.txt", "site-a/catalog.json", "site-a/set-catalogs.json"]).sorted())
    let head = try #require(try client().head(bucket: "reel", key: names[1]))
    #expect(head.metadata["reel-sha256"] == sandbox.digest(archives[1].path))
    #expect(head.metadata["reel-archive-id"] == archives[1].manifest.archiveID)
    let again = try reel("export", archives[0].path, "--to", media)
    #expect(again.status == 0 && again.stdout.contains("already on S3A file 2, skipped"), "\(again.output)")

    // The store is lost: a new one learns the bucket from a scan, then the bucket and the
    // key alone give every bookmark back.
    try FileManager.default.removeItem(atPath: sandbox.store)
    #expect(try reel("init").status == 0)
    let scan = try reel("media", "catalog", media, "--scan")
    #expect(scan.status == 0 && scan.stdout.contains("S3A"), "\(scan.output)")
    let needed = try reel("media", "needed", "b", "--volume", "disk")
    #expect(needed.status == 0 && needed.stdout.contains("S3A (files 2, 3)"), "\(needed.output)")
    let target = sandbox.root + "/rehydrated"
    let rehydrated = try run(
      reelExecutable, ["rehydrate", "--from", media, "--key", maker.keyPath, "--store", target],
      environment: environment.merging(["REEL_STORE": target, "REEL_PASSPHRASE": ArchiveMaker.passphrase]) { $1 })
    #expect(rehydrated.status == 0 && rehydrated.stdout.contains("3 archive(s) imported"), "\(rehydrated.output)")
    try sandbox.expectEveryBookmarkRestores(states, from: target)
  }

  /// What a kill -9 in the middle of a multipart upload leaves: parts of this archive's
  /// upload, and an upload of another key nobody will finish. Exporting again completes
  /// one object from the parts, aborts the other, and records it once.
  @Test func anUploadInterruptedMidwayIsResumedAndNoPartsAreLeft() throws {
    let (sandbox, environment) = try sandbox()
    let maker = try ArchiveMaker()
    let archive = try maker.seal(randomBytes: 12 << 20, bookmark: "big")
    #expect(archive.size > 10 << 20)
    #expect(try run(reelExecutable, ["init"], environment: environment).status == 0)
    let media = "s3://reel/interrupted"
    #expect(try run(reelExecutable, ["media", "label", media, "--name", "BIG"], environment: environment).status == 0)
    let s3 = try client()
    let key = "interrupted/archives/000002-" + (archive.path as NSString).lastPathComponent
    let bytes = sandbox.bytes(archive.path)
    let upload = try s3.createMultipartUpload(bucket: "reel", key: key, metadata: [:], retention: nil)
    try bytes[0..<(5 << 20)].withUnsafeBytes {
      _ = try s3.uploadPart(bucket: "reel", key: key, uploadID: upload, number: 1, body: $0)
    }
    let orphan = try s3.createMultipartUpload(
      bucket: "reel", key: "interrupted/archives/000002-other.reel.tar", metadata: [:], retention: nil)
    try bytes[0..<(5 << 20)].withUnsafeBytes {
      _ = try s3.uploadPart(
        bucket: "reel", key: "interrupted/archives/000002-other.reel.tar", uploadID: orphan, number: 1, body: $0)
    }
    #expect(try s3.pendingUploads(bucket: "reel", prefix: "interrupted/").count == 2)

    // A real kill -9 of an export in flight, wherever it lands, changes none of that.
    let child = try ChildProcess(
      reelExecutable, ["export", archive.path, "--to", media, "--s3-part-size", "5"],
      environment: environment.mapValues { $0 })
    for _ in 0..<2000 where child.isRunning {
      if try s3.pendingUploads(bucket: "reel", prefix: "interrupted/").contains(where: {
        $0.uploadID != upload && $0.uploadID != orphan
      }) {
        break
      }
      usleep(1000)
    }
    child.signal(SIGKILL)
    _ = child.wait()

    let export = try run(
      reelExecutable, ["export", archive.path, "--to", media, "--s3-part-size", "5"], environment: environment)
    #expect(export.status == 0 && export.stdout.contains("BIG file 2"), "\(export.output)")
    let objects = try s3.list(bucket: "reel", prefix: "interrupted/archives/")
    #expect(objects.map(\.key) == [key], "one complete object")
    #expect(objects.first?.size == archive.size)
    #expect(try s3.pendingUploads(bucket: "reel", prefix: "interrupted/").isEmpty, "no parts left behind")
    let catalog = try ObjectStoreBucket(bucket: "reel", prefix: "interrupted/").readCatalog()
    #expect(catalog.completeArchives.map(\.file) == [2])
    #expect(catalog.completeArchives.first?.sha256 == sandbox.digest(archive.path))
    let copies = try Store.open(StoreLayout(root: sandbox.store)).catalog.archiveCopies()
    #expect(copies.map(\.archiveID) == [archive.manifest.archiveID])
  }

  /// An export killed after its upload completed and before the bucket's catalog was
  /// written: the next export takes the object as it is (same name, size and SHA-256)
  /// instead of uploading it again under the next number.
  @Test func anArchiveUploadedJustBeforeAKillIsTakenAsItIs() throws {
    let (sandbox, environment) = try sandbox()
    let maker = try ArchiveMaker()
    let archives = try ["k1", "k2"].map { try maker.seal(randomBytes: 300_000, bookmark: $0) }
    func reel(_ arguments: String...) throws -> CommandResult {
      try run(reelExecutable, arguments, environment: environment)
    }
    #expect(try reel("init").status == 0)
    #expect(try reel("media", "label", "s3://reel/killed", "--name", "K").status == 0)
    #expect(try reel("export", archives[0].path, "--to", "s3://reel/killed").status == 0)
    try S3FileUpload.run(
      client: client(), bucket: "reel",
      key: "killed/archives/000003-" + (archives[1].path as NSString).lastPathComponent, file: archives[1].path,
      sha256: sandbox.digest(archives[1].path))
    let export = try reel("export", archives[1].path, "--to", "s3://reel/killed")
    #expect(export.status == 0 && export.stdout.contains("K file 3, verified"), "\(export.output)")
    #expect(try client().list(bucket: "reel", prefix: "killed/archives/").count == 2)
    let catalog = try ObjectStoreBucket(bucket: "reel", prefix: "killed/").readCatalog()
    #expect(catalog.completeArchives.map(\.file) == [2, 3])
    #expect(try Store.open(StoreLayout(root: sandbox.store)).catalog.archiveCopies().count == 2)
  }

  /// The store recorded each archive's SHA-256 when it sealed it, and the export names that
  /// hash to the bucket instead of reading the file twice. The bytes are hashed as they are
  /// sent: an archive file changed since its seal is refused before its upload completes,
  /// with no object, no pending parts and no copy left; an unchanged one is exported.
  @Test func anArchiveChangedSinceItsSealIsRefusedBeforeItsUploadCompletes() throws {
    _ = try sandbox()
    S3Settings.current?.partSize = 5 << 20
    defer { S3Settings.current = server.settings }
    let maker = try ArchiveMaker()
    let changed = try maker.seal(randomBytes: 6 << 20, bookmark: "changed")
    let intact = try maker.seal(randomBytes: 300_000, bookmark: "intact")
    let catalog = maker.fixture.live.store.catalog
    let source = try SourceArchive(path: changed.path, store: catalog)
    #expect(source.sealedSHA256?.hex == changed.sha256)
    let sealedBytes = try PosixFile.openForReading(changed.path).read(at: 0, count: Int(changed.size))
    #expect(source.sealedCRC32C == CRC32C.checksum(sealedBytes), "the seal recorded the CRC-32C it read back")
    #expect(changed.size > 5 << 20, "two parts")
    // One byte of the second part, past what the manifest check reads.
    let file = try PosixFile(path: changed.path, flags: O_RDWR)
    var byte = try file.read(at: 5 << 20 + 100, count: 1)
    byte[0] ^= 0x40
    try byte.withUnsafeBytes { _ = try file.write($0, at: 5 << 20 + 100) }

    let bucket = try ObjectStoreBucket(bucket: "reel", prefix: "changed/")
    try bucket.writeLabel(MediaLabel(name: "CHG1", mediaSet: nil, capacity: nil))
    let exporter = Exporter(
      mediaSet: "offsite", targets: [.objectStore(bucket: "reel", prefix: "changed/")], store: catalog)
    // Checked by the CRC-32C the seal recorded, then, with that forgotten (an archive
    // sealed before catalog schema 12), by its SHA-256.
    for check in ["CRC-32C", "SHA-256"] {
      #expect {
        try exporter.export([changed.path])
      } throws: { error in
        let error = error as? ReelError
        return error?.kind == .corrupt && error?.description.contains("recorded when it was sealed") == true
          && error?.description.contains(changed.sha256) == true
          && error?.description.contains("bytes have \(check)") == true
      }
      let s3 = try client()
      #expect(try s3.list(bucket: "reel", prefix: "changed/archives/").isEmpty, "no object")
      #expect(try s3.pendingUploads(bucket: "reel", prefix: "changed/").isEmpty, "no parts left behind")
      #expect(try catalog.archiveCopies().isEmpty)
      try catalog.database.write { db in try db.execute(sql: "UPDATE sealed_archive SET crc32c = NULL") }
    }
    let s3 = try client()

    let report = try exporter.export([intact.path])
    #expect(report.exported.map(\.archiveID) == [intact.manifest.archiveID])
    let object = try #require(try s3.list(bucket: "reel", prefix: "changed/archives/").first)
    #expect(try s3.head(bucket: "reel", key: object.key)?.metadata["reel-sha256"] == intact.sha256)
  }

  /// The server dies after the export has read the bucket's label and before the archive
  /// is written: a clear error in bounded time and no copy recorded; once it is back, the
  /// same export finishes.
  @Test func aServerThatDiesMidExportFailsClearlyAndRecordsNothing() throws {
    let (sandbox, _) = try sandbox()
    let maker = try ArchiveMaker()
    let archive = try maker.seal(randomBytes: 600_000, bookmark: "o")
    let store = try Store.initialize(StoreLayout(root: sandbox.store)).store
    let bucket = try ObjectStoreBucket(bucket: "reel", prefix: "outage/")
    try bucket.writeLabel(MediaLabel(name: "OUT1", mediaSet: nil, capacity: nil))
    var exporter = Exporter(
      mediaSet: "offsite", targets: [.objectStore(bucket: "reel", prefix: "outage/")], store: store.catalog)
    var stopped = false
    exporter.progress = { (line: String) in
      if line.hasPrefix("writing"), !stopped {
        stopped = true
        server.stop()
      }
    }
    #expect {
      try exporter.export([archive.path])
    } throws: { error in
      let message = "\(error)"
      return message.contains("127.0.0.1") || message.contains("running") || message.contains("reach")
    }
    #expect(stopped)
    #expect(try store.catalog.archiveCopies().isEmpty, "nothing that is not there is recorded")
    try server.start()
    // The restarted volume server registers with its master a moment after S3 answers.
    for attempt in 0..<100 {
      do {
        _ = try bucket.readLabel()
        break
      } catch  where attempt < 99 {
        usleep(100_000)
      }
    }
    exporter.progress = { (_: String) in }
    let report = try exporter.export([archive.path])
    #expect(report.exported.map(\.alreadyThere) == [false])
    #expect(try store.catalog.archiveCopies().map(\.archiveID) == [archive.manifest.archiveID])
    #expect(try bucket.readCatalog().completeArchives.count == 1)
  }

  @Test func wrongCredentialsMissingBucketsAndOtherSetsAreRefusedByName() throws {
    let (sandbox, environment) = try sandbox()
    let maker = try ArchiveMaker()
    let archive = try maker.seal(randomBytes: 300_000, bookmark: "r")
    #expect(try run(reelExecutable, ["init"], environment: environment).status == 0)
    var wrong = environment
    wrong["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
    let refused = try run(reelExecutable, ["media", "catalog", "s3://reel/refusals"], environment: wrong)
    #expect(refused.status != 0 && refused.stderr.lowercased().contains("credentials"), "\(refused.output)")
    let missing = try run(
      reelExecutable, ["export", archive.path, "--to", "s3://no-such-bucket"], environment: environment)
    #expect(missing.status != 0 && missing.stderr.contains("no-such-bucket"), "\(missing.output)")
    let labeled = try run(
      reelExecutable, ["media", "label", "s3://reel/refusals-other", "--name", "OTHER", "--media-set", "theirs"],
      environment: environment)
    #expect(labeled.status == 0, "\(labeled.output)")
    let other = try run(
      reelExecutable, ["export", archive.path, "--to", "s3://reel/refusals-other", "--media-set", "ours"],
      environment: environment)
    #expect(other.status != 0 && other.stderr.contains("belongs to media set \"theirs\""), "\(other.output)")
    #expect(try client().list(bucket: "reel", prefix: "refusals-other/archives/").isEmpty)
    let noCredentials = try run(
      reelExecutable, ["media", "catalog", "s3://reel/refusals"],
      environment: [
        "REEL_S3_ENDPOINT": environment["REEL_S3_ENDPOINT"], "AWS_ACCESS_KEY_ID": nil, "AWS_SECRET_ACCESS_KEY": nil,
      ])
    #expect(noCredentials.status != 0 && noCredentials.stderr.contains("AWS_ACCESS_KEY_ID"), "\(noCredentials.output)")
    #expect(
      try run(reelExecutable, ["media", "label", "s3://reel/unlocked", "--name", "U"], environment: environment)
        .status == 0)
    let retained = try run(
      reelExecutable, ["export", archive.path, "--to", "s3://reel/unlocked", "--retain", "1"], environment: environment)
    #expect(retained.status == 64 && retained.stderr.contains("has no Object Lock"), "\(retained.output)")
    #expect(try client().list(bucket: "reel", prefix: "unlocked/archives/").isEmpty)
    _ = sandbox
  }

  /// An archive object rewritten behind Reel's back (its metadata kept): a scan marks it
  /// damaged and says why, and rehydration names the damage it repaired from parity.
  @Test func anObjectChangedBehindReelsBackIsNamedByScanAndRehydrate() throws {
    let (sandbox, environment) = try sandbox()
    let maker = try ArchiveMaker()
    let archive = try maker.seal(randomBytes: 600_000, bookmark: "t")
    #expect(try run(reelExecutable, ["init"], environment: environment).status == 0)
    #expect(
      try run(reelExecutable, ["media", "label", "s3://reel/tampered", "--name", "T"], environment: environment).status
        == 0)
    #expect(
      try run(reelExecutable, ["export", archive.path, "--to", "s3://reel/tampered"], environment: environment).status
        == 0)
    let s3 = try client()
    let key = try #require(try s3.list(bucket: "reel", prefix: "tampered/archives/").first?.key)
    let info = try #require(try s3.head(bucket: "reel", key: key))
    var bytes = try s3.get(bucket: "reel", key: key, range: nil)
    bytes[bytes.count / 2] ^= 0x40
    _ = try s3.put(bucket: "reel", key: key, body: bytes, metadata: info.metadata, retention: nil)

    let scan = try run(reelExecutable, ["media", "catalog", "s3://reel/tampered", "--scan"], environment: environment)
    #expect(scan.status == 65 && scan.stdout.contains("damaged"), "\(scan.output)")
    let target = sandbox.root + "/rehydrated"
    let rehydrated = try run(
      reelExecutable, ["rehydrate", "--from", "s3://reel/tampered", "--key", maker.keyPath, "--store", target],
      environment: environment.merging(["REEL_STORE": target, "REEL_PASSPHRASE": ArchiveMaker.passphrase]) { $1 })
    // The archive's parity repairs one flipped byte; the report still names the medium.
    #expect(
      rehydrated.status == 3 && rehydrated.stdout.contains("REPAIRED")
        && rehydrated.stdout.contains(
          "MEDIA     \((archive.path as NSString).lastPathComponent) (T (s3://reel/tampered) file 2)"),
      "\(rehydrated.output)")
  }

  @Test func expireDeletesOnlyWhenToldAndTheStoreStopsCountingTheCopy() throws {
    let (sandbox, environment) = try sandbox()
    let maker = try ArchiveMaker()
    let archives = try ["e1", "e2"].map { try maker.seal(randomBytes: 300_000, bookmark: $0) }
    func reel(_ arguments: String...) throws -> CommandResult {
      try run(reelExecutable, arguments, environment: environment)
    }
    #expect(try reel("init").status == 0)
    #expect(try reel("media", "label", "s3://reel/expiry", "--name", "E").status == 0)
    #expect(try reel("export", archives[0].path, archives[1].path, "--to", "s3://reel/expiry").status == 0)
    let asked = try reel("media", "expire", "s3://reel/expiry", "--file", "2")
    #expect(asked.status == 64 && asked.stdout.contains("Would delete"), "\(asked.output)")
    #expect(try client().list(bucket: "reel", prefix: "expiry/archives/").count == 2)
    let expired = try reel("media", "expire", "s3://reel/expiry", "--archive", archives[0].manifest.archiveID, "--yes")
    #expect(expired.status == 0 && expired.stdout.contains("Deleted"), "\(expired.output)")
    #expect(
      try client().list(bucket: "reel", prefix: "expiry/archives/").map(\.key).allSatisfy { $0.contains("000003-") })
    let copies = try Store.open(StoreLayout(root: sandbox.store)).catalog.archiveCopies()
    #expect(copies.map(\.archiveID) == [archives[1].manifest.archiveID])
    let catalog = try ObjectStoreBucket(bucket: "reel", prefix: "expiry/").readCatalog()
    #expect(catalog.completeArchives.map(\.file) == [3])
    let gone = try reel("media", "expire", "s3://reel/expiry", "--file", "2", "--yes")
    #expect(gone.status == 66, "\(gone.output)")
  }

  /// Archives exported with retention to a bucket with Object Lock are locked on the server
  /// and refused by `media expire` until their date, nothing deleted.
  @Test func retainedArchivesAreLockedAndExpireRefusesThemUntilTheirDate() throws {
    let (sandbox, environment) = try sandbox()
    try server.createBucket("locked", objectLock: true)
    try waitUntilWritable("locked")
    let maker = try ArchiveMaker()
    let archive = try maker.seal(randomBytes: 300_000, bookmark: "l")
    func reel(_ arguments: String...) throws -> CommandResult {
      try run(reelExecutable, arguments, environment: environment)
    }
    #expect(try reel("init").status == 0)
    #expect(try reel("media", "label", "s3://locked", "--name", "L").status == 0)
    let export = try reel("export", archive.path, "--to", "s3://locked", "--retain-until", "2099-01-01")
    #expect(export.status == 0, "\(export.output)")
    let key = try #require(try client().list(bucket: "locked", prefix: "archives/").first?.key)
    let head = try #require(try client().head(bucket: "locked", key: key))
    #expect(head.metadata["reel-retain-until"] == "2099-01-01T00:00:00.000000000Z")
    let refused = try reel("media", "expire", "s3://locked", "--file", "2", "--yes")
    #expect(
      refused.status == 64 && refused.stderr.contains("retained under Object Lock until 2099-01-01"),
      "\(refused.output)")
    #expect(try client().head(bucket: "locked", key: key) != nil)
    #expect(try Store.open(StoreLayout(root: sandbox.store)).catalog.archiveCopies().count == 1)
  }
}
