import Foundation
import ReelArchive
import ReelCodec
import ReelCore
import ReelIO
import ReelObjectStore

/// Media in an S3-compatible object store (`s3://BUCKET[/PREFIX]`), laid out like a
/// cold-storage folder under the prefix (docs/object-storage.md): `REEL-LABEL.txt`,
/// `set-catalogs.json`, `catalog.json`, and `archives/NNNNNN-NAME.reel.tar` numbered like
/// tape files from 2, each archive carrying its SHA-256 and archive ID as metadata. Only
/// `media expire` deletes archive objects (`expire(file:)`).
package final class ObjectStoreBucket: MediaVolume {
  package let bucket: String
  /// Empty, or path components each followed by `/`.
  package let prefix: String
  package var address: String { MediaAddress.objectStore(bucket: bucket, prefix: prefix).description }
  /// Object Lock retention for the archives this export writes; nil for none.
  package var retention: S3Retention?
  /// Told of upload progress (bytes sent of the archive being written).
  package var progress: (UInt64, UInt64) -> Void = { _, _ in }

  let client: S3Client
  private var checked = false
  private var nextFile = 2
  /// What `append` wrote this session and HEAD confirmed: the read-back `verify` holds it to.
  private var uploaded: [Int: (object: ArchiveObject, archive: VerifiedArchive)] = [:]
  /// The archive objects as `prepareAppend` listed them, with what was appended since: one
  /// listing per export, not one per archive (a listing of a full bucket takes a request
  /// per thousand archives).
  private var appendedTo: [ArchiveObject]?

  var labelKey: String { prefix + "REEL-LABEL.txt" }
  var setCatalogsKey: String { prefix + "set-catalogs.json" }
  var catalogKey: String { prefix + "catalog.json" }
  var archivesPrefix: String { prefix + "archives/" }

  /// The most a label, catalog or set-catalogs object may hold before it is refused.
  static let smallObjectLimit: UInt64 = 64 << 20

  /// Opens the bucket with the process's object-store settings (`S3Settings.current`, set
  /// by the CLI or the pipeline runner), else those the environment gives.
  package init(bucket: String, prefix: String) throws {
    self.bucket = bucket
    self.prefix = prefix
    client = try S3Client(settings: try Self.settings())
  }

  package init(bucket: String, prefix: String, client: S3Client) {
    self.bucket = bucket
    self.prefix = prefix
    self.client = client
  }

  /// Sets the process's object-store settings from flags or a pipeline file, the rest from
  /// the environment. Unless `replacing`, settings made earlier (the command line's) stay.
  package static func configure(
    endpoint: String?, credentialsFile: String?, caBundle: String?, pathStyle: Bool?, partSize: Int?,
    replacing: Bool
  ) throws {
    guard replacing || S3Settings.current == nil else { return }
    S3Settings.current = try S3Settings.resolve(
      endpoint: endpoint, credentialsFile: credentialsFile, caBundle: caBundle, pathStyle: pathStyle,
      partSize: partSize, environment: ProcessInfo.processInfo.environment)
  }

  static func settings() throws -> S3Settings {
    if let current = S3Settings.current { return current }
    return try S3Settings.resolve(
      endpoint: nil, credentialsFile: nil, caBundle: nil, pathStyle: nil, partSize: nil,
      environment: ProcessInfo.processInfo.environment)
  }

  /// Nothing in the bucket says it may not be written; a refusal comes from the server.
  package var isWriteProtected: Bool { false }

  /// The bucket exists and the credentials are accepted, or a clear error says which not.
  private func checkBucket() throws {
    guard !checked else { return }
    try client.checkBucket(bucket)
    checked = true
  }

  package func readLabel() throws -> LabelState {
    try checkBucket()
    guard let bytes = try smallObject(labelKey) else {
      let held = try client.list(bucket: bucket, prefix: prefix).filter { $0.key.hasPrefix(prefix) }
      return held.isEmpty
        ? .blank : .foreign("the bucket holds \(held.count) other object(s) under \"\(prefix)\" and no REEL-LABEL.txt")
    }
    guard let label = try MediaLabel.parse(bytes) else { return .foreign("REEL-LABEL.txt is not a Reel label") }
    return .labeled(label)
  }

  /// Writes a new label. Archives are never deleted by relabeling (only `media expire`
  /// deletes, and Object Lock may forbid it), so a prefix holding archives is refused.
  package func writeLabel(_ label: MediaLabel) throws {
    try checkBucket()
    let archives = try archiveObjects()
    guard archives.isEmpty else {
      throw ReelError(
        .alreadyExists,
        "\(address) holds \(archives.count) archive object(s); relabeling object storage never deletes archives, so nothing was written",
        remedy: "expire them first (reel media expire \(address) --file N --yes), or label another prefix")
    }
    for key in [catalogKey, setCatalogsKey] where try client.head(bucket: bucket, key: key) != nil {
      try client.delete(bucket: bucket, key: key)
    }
    _ = try client.put(
      bucket: bucket, key: labelKey, body: Array(label.text(forTape: false).utf8), metadata: [:], retention: nil)
  }

  package func joinSet(label: MediaLabel, earlier: [CartridgeCatalog]) throws -> [TapeFileEntry] {
    try writeLabel(label)
    _ = try client.put(
      bucket: bucket, key: setCatalogsKey, body: try SetCatalogs(catalogs: earlier).json(), metadata: [:],
      retention: nil)
    return [TapeFileEntry(file: 0, kind: .label), TapeFileEntry(file: 1, kind: .setCatalogs)]
  }

  package func prepareAppend() throws {
    try checkBucket()
    if let retention, try !client.objectLockEnabled(bucket: bucket) {
      throw ReelError(
        .usage,
        "retention until \(Self.rfc3339(retention.until)) was asked for, but bucket \(bucket) has no Object Lock; nothing was written",
        remedy: "export without --retain/--retain-until, or to a bucket created with Object Lock enabled")
    }
    let objects = try archiveObjects()
    appendedTo = objects
    nextFile = (objects.map(\.file).max() ?? 1) + 1
  }

  package func append(_ archive: SourceArchive, dataBlockSize: Int) throws -> AppendResult {
    let label = try requireLabel()
    let objects = try appendedTo ?? archiveObjects()
    let used = objects.reduce(UInt64(0)) { $0 + $1.size }
    if let capacity = label.capacity, used + archive.size > capacity { return .endOfMedia(file: nil) }
    // Checked against the bytes as they are sent, so a recorded hash saves a read of the file.
    let sha256 = try (archive.sealedSHA256 ?? SHA256Digest.hash(fileAt: archive.path)).hex
    // Written before a kill that came ahead of the catalog: the same bytes count once.
    for earlier in objects where earlier.name == archive.summary.fileName && earlier.size == archive.size {
      guard try confirmed(earlier, sha256: sha256) != nil else { continue }
      uploaded[earlier.file] = (
        earlier, VerifiedArchive(manifest: archive.manifest, totalBytes: archive.size, sha256: sha256)
      )
      return .written(file: earlier.file, sha256: sha256, endOfMedia: false)
    }
    let file = nextFile
    let key = archivesPrefix + String(format: "%06d-", file) + archive.summary.fileName
    // One export writes to a prefix at a time; any other pending upload is what an
    // interrupted export left, and parts nobody completes are only a bill.
    for pending in try client.pendingUploads(bucket: bucket, prefix: archivesPrefix) where pending.key != key {
      try client.abortMultipartUpload(bucket: bucket, key: pending.key, uploadID: pending.uploadID)
    }
    var metadata = ["reel-archive-id": archive.manifest.archiveID]
    if let retention { metadata["reel-retain-until"] = Self.rfc3339(retention.until) }
    let info: S3ObjectInfo
    do {
      info = try S3FileUpload.run(
        client: client, bucket: bucket, key: key, file: archive.path, sha256: sha256, crc32c: archive.sealedCRC32C,
        metadata: metadata, retention: retention, progress: progress)
    } catch let error as ReelError where error.kind == .interrupted {
      throw Interrupt.error(
        "the upload of \(key) stays pending in the bucket; run the same export again to resume it")
    }
    guard info.size == archive.size else {
      throw ReelError(
        .corrupt, "\(address): \(key) holds \(info.size) bytes after the upload, not \(archive.size)",
        remedy: "check the object store's health; export again")
    }
    let object = ArchiveObject(file: file, key: key, name: archive.summary.fileName, size: info.size)
    uploaded[file] = (object, VerifiedArchive(manifest: archive.manifest, totalBytes: archive.size, sha256: sha256))
    appendedTo = objects + [object]
    nextFile += 1
    return .written(file: file, sha256: sha256, endOfMedia: false)
  }

  /// An archive written this session counts when HEAD shows its size and Reel's SHA-256
  /// (the upload's part checksums were checked by the server); others are read whole.
  package func verify(file: Int, expectedSize: UInt64, describing what: String) throws -> VerifiedArchive {
    if let written = uploaded[file] {
      guard try confirmed(written.object, sha256: written.archive.sha256)?.size == expectedSize else {
        throw ReelError(
          .corrupt, "\(what): the object's size or SHA-256 is not what was uploaded",
          remedy: "something else writes to this prefix, or the object store lost the upload: export again")
      }
      return written.archive
    }
    var source = try openArchive(file: file, size: expectedSize)
    return try ArchiveCheck.verify(&source, describing: what)
  }

  package func openArchive(file: Int, size: UInt64?) throws -> any ArchiveByteSource {
    guard let found = try archiveObjects().first(where: { $0.file == file }) else {
      throw ReelError(
        .notFound, "\(address) has no archive numbered \(file)",
        remedy: "`reel media catalog \(address) --scan` shows what the bucket holds")
    }
    return try reader(found, limit: size)
  }

  package func writeCatalog(_ catalog: inout CartridgeCatalog) throws {
    _ = try client.put(bucket: bucket, key: catalogKey, body: try catalog.json(), metadata: [:], retention: nil)
  }

  package func readCatalog() throws -> CartridgeCatalog {
    let label = try requireLabel()
    guard let bytes = try smallObject(catalogKey) else {
      return try catalogWithoutCatalogFile(
        label: label, hasSetCatalogs: try client.head(bucket: bucket, key: setCatalogsKey) != nil,
        holdsArchives: try !archiveObjects().isEmpty)
    }
    return try CartridgeCatalog.decode(bytes)
  }

  /// Rebuilds the catalog from a listing: every archive object read whole and verified,
  /// and held to the SHA-256 its metadata recorded when it was uploaded.
  package func scan() throws -> CartridgeCatalog {
    let label = try requireLabel()
    var catalog = CartridgeCatalog(label: label, files: [TapeFileEntry(file: 0, kind: .label)])
    var earlier: [CartridgeCatalog] = []
    if try client.head(bucket: bucket, key: setCatalogsKey) != nil {
      earlier = try setCatalogs()
      catalog.files.append(TapeFileEntry(file: 1, kind: .setCatalogs))
    }
    for found in try archiveObjects() {
      let what = "\(address) \(found.key)"
      let entry = try TapeFileEntry.scanned(file: found.file, describing: what) {
        var source = try reader(found)
        let verified = try ArchiveCheck.verify(&source, describing: what)
        let recorded = try client.head(bucket: bucket, key: found.key)?.metadata["reel-sha256"]
        if let recorded, recorded != verified.sha256 {
          throw ReelError(
            .corrupt, "\(what) was changed after Reel uploaded it: its SHA-256 is not the one recorded with it")
        }
        return verified
      } manifest: {
        try peekManifest(found)
      }
      catalog.files.append(entry)
    }
    catalog.closed = (try? readCatalog().closed) ?? false
    catalog.updateSet(earlier: earlier)
    return catalog
  }

  /// One archive object as the listing names it.
  struct ArchiveObject {
    var file: Int
    var key: String
    /// The archive's file name, after the number.
    var name: String
    var size: UInt64
  }

  /// The numbered archive objects under the prefix, in order; other keys are not Reel's
  /// and are left alone.
  func archiveObjects() throws -> [ArchiveObject] {
    try client.list(bucket: bucket, prefix: archivesPrefix).compactMap { object in
      guard object.key.hasPrefix(archivesPrefix) else { return nil }
      let name = object.key.dropFirst(archivesPrefix.count)
      guard !name.contains("/"), let dash = name.firstIndex(of: "-"),
        name.distance(from: name.startIndex, to: dash) == 6,
        let number = Int(name[..<dash]), (2..<(1 << 24)).contains(number)
      else { return nil }
      return ArchiveObject(
        file: number, key: object.key, name: String(name[name.index(after: dash)...]), size: object.size)
    }.sorted { $0.file < $1.file }
  }

  /// The object read ahead on a connection of its own, cut at `limit` bytes when given.
  private func reader(_ object: ArchiveObject, limit: UInt64? = nil) throws -> S3ObjectReader {
    try S3ObjectReader(
      settings: client.settings, bucket: bucket, key: object.key, range: 0..<min(object.size, limit ?? object.size))
  }

  /// HEAD of an archive object, when its metadata names `sha256`.
  private func confirmed(_ object: ArchiveObject, sha256: String) throws -> S3ObjectInfo? {
    guard let info = try client.head(bucket: bucket, key: object.key), info.metadata["reel-sha256"] == sha256 else {
      return nil
    }
    return info
  }

  /// The catalogs of the set's earlier cartridges this bucket copied when it joined.
  func setCatalogs() throws -> [CartridgeCatalog] {
    try smallObject(setCatalogsKey).map { try SetCatalogs.decode($0).catalogs } ?? []
  }

  /// A label or catalog object, refused past `smallObjectLimit`; nil when there is none.
  private func smallObject(_ key: String) throws -> [UInt8]? {
    guard let info = try client.head(bucket: bucket, key: key) else { return nil }
    guard info.size <= Self.smallObjectLimit else {
      throw ReelError(
        .corrupt, "\(address): \(key) is \(ByteSize.describe(info.size)), too large to be Reel's",
        remedy: "check that this prefix holds Reel media")
    }
    return try client.get(bucket: bucket, key: key, range: nil)
  }

  /// The manifest from an archive object's first bytes (one ranged GET).
  private func peekManifest(_ object: ArchiveObject) throws -> ArchiveManifest {
    let end = min(object.size, UInt64(ArchivePeek.prefixLimit))
    let bytes = try client.get(bucket: bucket, key: object.key, range: 0..<end)
    return try ArchivePeek.manifest(fromPrefix: bytes, describing: "\(address) \(object.key)")
  }

  static func rfc3339(_ date: Date) -> String {
    Timestamp(nanoseconds: Int64(date.timeIntervalSince1970) * 1_000_000_000).rfc3339
  }
}

// Its `read(into:)` is ArchiveByteSource's, so archive checks read objects directly.
extension S3ObjectReader: ArchiveByteSource {}
