import Foundation
import ReelCodec
import ReelCore
import ReelIO
import ReelStore

/// What `reel seal` is asked to do for one volume.
package struct SealRequest: Sendable {
  package var volume: String
  /// Seal up to this point; nil = the newest flush barrier or bookmark.
  package var until: Point?
  package var outputDirectory: String
  /// The data key is wrapped for each; the first is the owner's, others are escrow keys.
  package var masterKeys: SealKeys
  package var memberLimit: UInt64
  /// Start a new chain with a full base even when the last archive could be continued.
  package var newChain: Bool
  /// The pack layout to write. 2 (the default) groups chunks into 8 MiB zstd frames: about
  /// the size of one `zstd -3` stream of the raw journal. 1 (`reel seal --format 1`)
  /// carries chunk records as the store keeps them: ~5% larger, but much faster to seal
  /// and to rehydrate, as nothing is compressed again (docs/archive-format.md). An archive that
  /// carries lineage (a clone's origin, rollbacks) is format version 3 with this layout.
  package var formatVersion: Int
  package static let defaultFormatVersion = 2
  /// Reed–Solomon parity, in percent of the archive (format version 4); 0 = none, and the
  /// archive is written in the version it would have had before parity existed.
  package var parityPercent: Int = ParityGeometry.defaultPercent

  package init(
    volume: String, until: Point? = nil, outputDirectory: String, masterKeys: [SymmetricKey],
    memberLimit: UInt64 = ArchiveFormat.defaultMemberLimit, newChain: Bool = false,
    formatVersion: Int = SealRequest.defaultFormatVersion
  ) {
    self.init(
      volume: volume, until: until, outputDirectory: outputDirectory, masterKeys: SealKeys(masterKeys),
      memberLimit: memberLimit, newChain: newChain, formatVersion: formatVersion)
  }

  package init(
    volume: String, until: Point? = nil, outputDirectory: String, masterKeys: SealKeys,
    memberLimit: UInt64 = ArchiveFormat.defaultMemberLimit, newChain: Bool = false,
    formatVersion: Int = SealRequest.defaultFormatVersion
  ) {
    precondition(ArchiveManifest.packLayouts.contains(formatVersion))
    self.formatVersion = formatVersion
    self.volume = volume
    self.until = until
    // The catalog records where each archive went; a relative path would only be right
    // from the folder the seal ran in.
    self.outputDirectory = Durable.absolute(outputDirectory)
    self.masterKeys = masterKeys
    self.memberLimit = memberLimit
    self.newChain = newChain
  }
}

package enum SealOutcome: Sendable {
  /// Nothing journaled after the last sealed point (or no barrier to cut at).
  case nothingToSeal(volume: String, sealedSeq: Seq, reason: String)
  case sealed(SealedArchive)
}

package struct SealedArchive: Sendable {
  package var path: String
  package var manifest: ArchiveManifest
  package var size: UInt64
  package var sha256: String
  /// The CRC-32C of the bytes read back from the disk (`SealedArchiveRecord.crc32c`).
  package var crc32c: UInt32
  package var verification: ArchiveVerification
}

/// The master keys a seal wraps its data key for, possibly still being unlocked. Opening a
/// key file runs Argon2id (about 0.2 s at the standard parameters, on one core), and a seal
/// first needs the keys for its manifest, after the packs are built: unlocking on another
/// thread meanwhile takes that time off the seal. A failed unlock (a wrong passphrase)
/// stops the seal as soon as it is noticed, before anything is written.
package final class SealKeys: Sendable {
  private let unlocking: BackgroundTask<[SymmetricKey]>

  package init(_ keys: [SymmetricKey]) {
    unlocking = BackgroundTask { keys }
  }

  package init(unlocking unlock: @escaping @Sendable () throws -> [SymmetricKey]) {
    unlocking = BackgroundTask(unlock)
  }

  /// Waits for the unlock; at least one key, the owner's first.
  package func keys() throws -> [SymmetricKey] {
    let keys = try unlocking.value()
    precondition(!keys.isEmpty, "a seal needs a master key")
    return keys
  }

  /// Throws the unlock's error if it has already failed; does not wait.
  func checkSoFar() throws {
    if unlocking.isFinished { _ = try keys() }
  }
}

/// Seals a window of a volume's ingested history into one archive (docs/archive-format.md):
/// staged member by member, written as a tar under a temporary name, fsynced, read back and
/// verified with the key, then renamed into place and recorded in the catalog.
package enum Sealer {
  package static func seal(_ request: SealRequest, live: LiveStore) throws -> SealOutcome {
    let layout = live.store.layout
    let descriptor = try layout.descriptor(of: request.volume)
    // Two seals of one volume (a `reel seal` beside the nightly pipeline, into other
    // folders) would both continue the same parent and fork the chain: the second waits,
    // then seals only what the first left.
    let sealing = try PosixFile.openLock(layout.volumeDirectory(request.volume) + "/seal.lock")
    while flock(sealing.descriptor, LOCK_EX) != 0 {
      guard errno == EINTR else { throw PosixFile.error(errno, "lock", sealing.path) }
      try Interrupt.check()
    }
    defer { flock(sealing.descriptor, LOCK_UN) }
    try live.ingest(volume: request.volume)
    let bounds = try live.historyBounds(of: descriptor)
    let last = try live.lastSealedArchive(of: descriptor)
    let continues = !request.newChain && last.map { $0.untilSeq >= bounds.retainedFrom } ?? false
    let fromSeq = max(last?.untilSeq ?? bounds.retainedFrom, bounds.retainedFrom)
    let alone = Self.stateAloneIsSealable(descriptor: descriptor, bounds: bounds, last: last)
    let untilSeq: Seq
    if let point = request.until {
      untilSeq = try VolumeView(live: live, volume: request.volume, at: point).resolved.seq
      guard untilSeq > fromSeq || (alone && untilSeq == fromSeq) else {
        return .nothingToSeal(
          volume: request.volume, sealedSeq: fromSeq,
          reason: "\(point) (seq \(untilSeq)) is not after the sealed history (up to seq \(fromSeq))")
      }
    } else if let barrier = try live.lastBarrier(of: descriptor, after: fromSeq, through: bounds.ingested) {
      untilSeq = barrier
    } else if alone {
      untilSeq = fromSeq
    } else {
      return .nothingToSeal(
        volume: request.volume, sealedSeq: fromSeq,
        reason: bounds.ingested > fromSeq
          ? "no flush or bookmark after seq \(fromSeq); give --until latest to seal up to seq \(bounds.ingested)"
          : "nothing journaled after seq \(fromSeq)")
    }
    try Durable.makeDirectory(request.outputDirectory)
    let lock = try PosixFile.openLock(request.outputDirectory + "/.reel-seal.lock")
    guard lock.tryLockExclusive() else {
      throw ReelError(
        .alreadyExists, "another `reel seal` is writing into \(request.outputDirectory)",
        remedy: "wait for it to finish, or seal into another folder")
    }
    defer { flock(lock.descriptor, LOCK_UN) }
    removeLeftovers(in: request.outputDirectory)

    let writer = try ArchiveWriter(
      live: live, descriptor: descriptor, request: request, fromSeq: fromSeq, untilSeq: untilSeq,
      parent: continues ? last : nil)
    defer { try? FileManager.default.removeItem(atPath: writer.staging) }
    let sealed: SealedArchive
    do {
      sealed = try writer.write()
    } catch let error as ReelError where error.kind == .interrupted {
      throw Interrupt.error(
        "nothing was sealed for volume \(request.volume); removed the staging folder \(writer.staging) and the partial archive"
      )
    }
    try live.recordSealed(
      SealedArchiveRecord(
        manifest: sealed.manifest, fromTime: try live.time(of: fromSeq, in: descriptor),
        untilTime: try live.time(of: untilSeq, in: descriptor), fileName: (sealed.path as NSString).lastPathComponent,
        path: sealed.path, size: sealed.size, sha256: sealed.sha256, crc32c: sealed.crc32c, verified: Timestamp.now()))
    return .sealed(sealed)
  }

  /// Whether a volume's first archive may hold nothing but its state at the start of its
  /// history (an archive ending where it begins, `fromSeq` = `untilSeq`). Until a volume has
  /// an archive nothing of it is protected, and waiting for a first flush would leave the
  /// image it was created from (or a blank volume's very existence) off the media. A blank
  /// volume with writes but no flush yet is not sealed as zeros: that would look protected
  /// while its data is not.
  package static func stateAloneIsSealable(
    descriptor: VolumeDescriptor, bounds: HistoryBounds, last: SealedArchiveRecord?
  ) -> Bool {
    last == nil && (descriptor.hasBase || bounds.ingested <= bounds.retainedFrom)
  }

  /// Staging folders and partial archives of a seal that was killed: never referenced by
  /// the catalog, so safe to delete while holding the folder's seal lock.
  static func removeLeftovers(in directory: String) {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    for name in names where name.hasPrefix(".reel-seal-") || name.hasSuffix(ArchiveFormat.fileSuffix + ".partial") {
      try? FileManager.default.removeItem(atPath: directory + "/" + name)
    }
  }
}

/// A byte stream's length and CRC-32C: what a seal wrote, and what it read back from the
/// disk. The read-back guards against the disk or the file system changing bytes between
/// the write and the read, which a CRC-32C misses once in 4 billion (and it catches every
/// burst of up to 32 bits); the key's checks (manifest MAC, every frame's tag) catch a
/// deliberate change whenever the archive is read. A SHA-256 here cost a third pass of
/// the archive through SHA-256 on the seal's critical path; the stream's SHA-256, which
/// SHA256SUMS and the catalog record, is computed once, as it is written.
struct StreamSum: Sendable, Equatable {
  private(set) var total: UInt64 = 0
  private var crc32c = CRC32C()

  var checksum: UInt32 { crc32c.value }

  /// Counts and checksums the next bytes of the stream.
  mutating func add(_ bytes: UnsafeRawBufferPointer) {
    crc32c.update(bytes)
    total += UInt64(bytes.count)
  }

  mutating func add(_ bytes: [UInt8]) {
    bytes.withUnsafeBytes { add($0) }
  }

  static func == (left: StreamSum, right: StreamSum) -> Bool {
    left.total == right.total && left.checksum == right.checksum
  }
}

/// Reads a file back from the disk while it is being written with direct I/O: each piece
/// as soon as its direct write has returned (a direct read then gets what the device holds,
/// not a cached copy), hashing as it goes, so reading back overlaps the writing instead of
/// following it. Direct writes and reads share no page cache, so nothing read can be a copy
/// the kernel kept; the caller still fsyncs before it relies on the result.
final class FollowingReadBack {
  private let task: BackgroundTask<StreamSum?>

  init(path: String, writer: DirectFileWriter) throws {
    let reader = try DirectFileReader(path: path)
    task = BackgroundTask {
      var sum = StreamSum()
      while true {
        let (completed, final) = writer.waitForWrites(beyond: sum.total)
        while sum.total < completed {
          let count = Int(min(UInt64(DirectIO.blockSize), completed - sum.total))
          sum.add(try reader.read(exactly: count, at: sum.total))
        }
        if final { break }
      }
      // A read the file system refused directly went through the cache: not proof.
      return reader.direct ? sum : nil
    }
  }

  /// Waits for the writer to finish and the reading to catch up: the bytes read back,
  /// counted and checksummed, or nil when they could not all be read directly from the disk.
  func result() throws -> StreamSum? {
    try task.value()
  }
}

/// Builds one archive: stages the index and packs, then writes the tar. Pack frames are
/// built (store records decoded and hashed, grouped, compressed) on background threads
/// while the store is read and finished frames are encrypted and written in order.
final class ArchiveWriter {
  let live: LiveStore
  let descriptor: VolumeDescriptor
  let request: SealRequest
  let fromSeq: Seq
  let untilSeq: Seq
  let parent: SealedArchiveRecord?
  let archiveID = UUID()
  let keys = ArchiveKeys.random()
  let cipher: AES256GCM
  /// The encrypted members (packs, index) on their way into the tar, beside the output.
  let staging: String
  /// The index in plaintext, while it is built: in the store's private temp folder, never
  /// beside the output (which may be a shared folder or a NAS).
  let plaintext: PrivateScratch
  var plaintextIndexPath: String { plaintext.path + "/index.sqlite" }
  let created = Timestamp.now()

  private var packs: [ArchiveManifest.Member] = []
  private var currentPack: StagedMember?
  /// Store records waiting to make the next pack frame, and their content bytes.
  private var group: [StoreRecord] = []
  private var groupBytes = 0
  /// Frames being built at once: enough queued work (12 MiB of records to check for
  /// version 1, 48 MiB to compress for version 2) that both cores stay busy while the next
  /// batch of store records is read.
  private lazy var frameWork = OrderedWork<Result<BuiltPackFrame, any Error>>(
    window: formatVersion < 2 ? 12 : (48 << 20) / ArchiveFormat.groupTarget)
  private var pendingLocations: [(String, ArchiveChunkLocation)] = []
  private var sealedChunks: Set<String> = []
  /// Bytes of data (not zeros) the window's versions put on the volume.
  private var dataBytes: UInt64 = 0
  private var contents = ArchiveManifest.Contents(
    base: false, blockVersions: 0, chunks: 0, chunkBytes: 0, storedBytes: 0, frames: 0)

  init(
    live: LiveStore, descriptor: VolumeDescriptor, request: SealRequest, fromSeq: Seq, untilSeq: Seq,
    parent: SealedArchiveRecord?
  ) throws {
    self.live = live
    self.descriptor = descriptor
    self.request = request
    self.fromSeq = fromSeq
    self.untilSeq = untilSeq
    self.parent = parent
    cipher = AES256GCM(key: keys.frameKey)
    staging = request.outputDirectory + "/.reel-seal-" + archiveID.uuidString.lowercased()
    plaintext = try PrivateScratch(store: live.store.layout)
    try Durable.makeDirectory(staging)
  }

  var archiveIDText: String { archiveID.uuidString.lowercased() }

  func write() throws -> SealedArchive {
    let lineage = try ArchiveLineage(live: live, descriptor: descriptor, fromSeq: fromSeq, untilSeq: untilSeq)
    let version =
      request.parityPercent > 0 ? ArchiveManifest.parityVersion : lineage.formatVersion(packLayout: formatVersion)
    let index = try ArchiveIndex.create(at: plaintextIndexPath, schema: ArchiveIndex.schema(forFormat: version))
    contents.base = parent == nil
    if parent == nil {
      let base = try live.stateVersions(of: descriptor, at: fromSeq)
      try add(base, base: true, to: index)
    }
    try live.versions(of: descriptor, after: fromSeq, through: untilSeq) { page in
      try add(page, base: false, to: index)
    }
    try submitGroup()
    try frameWork.drain { try place($0.get()) }
    try index.add(versions: [], base: false, chunks: pendingLocations)
    pendingLocations.removeAll()
    if let pack = currentPack { packs.append(try pack.finish()) }
    let records = try live.records(of: descriptor, after: fromSeq, through: untilSeq)
    let bookmarks = try live.bookmarks(of: descriptor, after: fromSeq, through: untilSeq)
    try index.add(records: records, bookmarks: bookmarks)
    if lineage.isNeeded { try index.add(rollbacks: lineage.rollbacks) }
    try index.setInfo(
      [
        "archive_id": archiveIDText, "volume_id": descriptor.id.description, "volume_name": descriptor.name,
        "from_seq": String(fromSeq), "until_seq": String(untilSeq),
      ].merging(lineage.indexInfo) { first, _ in first })
    try index.close()
    let indexMember = try encryptIndex()

    var manifest = try makeManifest(records: records, bookmarks: bookmarks, indexMember: indexMember)
    lineage.describe(in: &manifest)
    if request.parityPercent > 0 {
      manifest.packLayout = manifest.packLayout ?? manifest.formatVersion
      manifest.formatVersion = ArchiveManifest.parityVersion
      manifest.rollbacks = manifest.rollbacks ?? []
      manifest.parity = ArchiveManifest.Parity(percent: request.parityPercent)
    }
    let readme = Array(ArchiveReadme.text(for: manifest).utf8)
    var finalManifest = manifest
    finalManifest.members.insert(
      ArchiveManifest.Member(
        name: ArchiveFormat.readmeName, role: "readme", size: UInt64(readme.count),
        sha256: SHA256Digest.hash(readme).hex), at: 0)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    let manifestBytes = Array(try encoder.encode(finalManifest)) + [0x0A]
    let mac = Array(
      (SHA256Digest(bytes: HMACSHA256.authenticate(manifestBytes, key: keys.manifestKey)).hex + "\n").utf8)
    var sums: [(String, String)] = [
      (SHA256Digest.hash(readme).hex, ArchiveFormat.readmeName),
      (SHA256Digest.hash(manifestBytes).hex, ArchiveFormat.manifestName),
      (SHA256Digest.hash(mac).hex, ArchiveFormat.manifestMACName),
    ]
    for member in [indexMember] + packs { sums.append((member.sha256, member.name)) }
    let checksums = Array(sums.map { "\($0.0)  \($0.1)\n" }.joined().utf8)

    let fileName = ArchiveFormat.fileName(
      volume: descriptor.name, fromSeq: fromSeq, untilSeq: untilSeq, archiveID: archiveIDText)
    let finalPath = request.outputDirectory + "/" + fileName
    guard !FileManager.default.fileExists(atPath: finalPath) else {
      throw ReelError(.alreadyExists, "\(finalPath) already exists; nothing was written")
    }
    let partial = request.outputDirectory + "/." + fileName + ".partial"
    do {
      let output = try DirectFileWriter(creating: partial, mode: 0o400)
      // Read back from the disk piece by piece as the direct writes complete, while the
      // rest is written; nil where the writes go through the page cache.
      let following = output.direct ? try FollowingReadBack(path: partial, writer: output) : nil
      // Every check with the key runs on the tar stream while it is written (frame tags,
      // every frame's zstd content, every chunk record's CRC-32C and name, member digests,
      // manifest, index coverage; for version 1 also every chunk's SHA-256); then the file
      // is read back from the disk and must be exactly that stream (size and SHA-256).
      let written = ArchiveBytePipe()
      let masterKeys = try request.masterKeys.keys()
      let checkContent = formatVersion < 2
      let store = live.store.layout
      // With parity the writer hashes the stream (the parity records the hash of all of it
      // before PARITY), so the verifier need not hash it again.
      let writerHashes = request.parityPercent > 0
      let verifying = BackgroundTask {
        try ArchiveVerifier.verify(
          written: written, masterKeys: masterKeys, label: fileName, checkContent: checkContent, store: store,
          writerHashes: writerHashes)
      }
      var streamSHA256: SHA256Digest?
      var writtenSum: StreamSum?
      do {
        let tar = try TarWriter(writer: output, copy: written)
        if writerHashes { tar.hashStream() }
        let parity = try ArchiveParityWriter(
          percent: request.parityPercent, archiveID: archiveID, staging: staging,
          capacity: ArchiveParityWriter.capacity(
            memberSizes: [readme.count, manifestBytes.count, mac.count, checksums.count].map(UInt64.init)
              + ([indexMember] + packs).map(\.size)))
        if let parity {
          tar.tap = { try parity.encoder.consume($0) }
          precondition(tar.offset == 0)
        }
        try tar.addFile(name: ArchiveFormat.readmeName, bytes: readme, modified: created)
        try tar.addFile(name: ArchiveFormat.manifestName, bytes: manifestBytes, modified: created)
        try tar.addFile(name: ArchiveFormat.manifestMACName, bytes: mac, modified: created)
        for member in [indexMember] + packs {
          try Interrupt.check()
          try tar.addFile(name: member.name, size: member.size, modified: created) { write in
            try copyStaged(staging + "/" + member.name, size: member.size, into: write)
          }
        }
        try tar.addFile(name: ArchiveFormat.checksumsName, bytes: checksums, modified: created)
        if let parity { try parity.add(to: tar, modified: created) }
        try tar.close()
        streamSHA256 = tar.streamSHA256()
        writtenSum = tar.streamSum
        try output.finish()
        written.close()
      } catch {
        written.close(failure: error)
        _ = try? verifying.value()
        try? output.finish()
        _ = try? following?.result()
        throw error
      }
      let stagingRemoved = BackgroundTask { [staging] in try? FileManager.default.removeItem(atPath: staging) }
      defer { try? stagingRemoved.value() }
      var verification = try verifying.value()
      if let streamSHA256 { verification.structure.sha256 = streamSHA256.hex }
      try output.file.sync()
      guard verification.problems.isEmpty else {
        throw ReelError(
          .corrupt,
          "\(fileName) failed its verification: \(verification.problems.map(\.description).joined(separator: "; "))",
          remedy: "nothing was sealed; check the disk and the store (`reel store check --read-data`), then seal again"
        )
      }
      // From the disk, not the page cache: direct reads that followed the direct writes, or,
      // where the writes went through the cache, a read after fsync with the pages dropped.
      guard let writtenSum, writtenSum.total == verification.structure.totalBytes else {
        throw ReelError(
          .corrupt,
          "\(fileName): the verifier saw \(verification.structure.totalBytes) bytes of the stream, the writer wrote \(writtenSum?.total ?? 0)",
          remedy: "nothing was sealed; this is a bug in Reel: report it with this message")
      }
      let readBack: StreamSum
      if let followed = try following?.result(), output.direct {
        try Self.require(followed, label: fileName, matches: writtenSum)
        readBack = followed
      } else {
        if !output.direct { posix_fadvise(output.file.descriptor, 0, 0, Int32(POSIX_FADV_DONTNEED)) }
        readBack = try Self.readBack(partial, label: fileName, matches: writtenSum)
      }
      try Durable.rename(partial, to: finalPath)
      return SealedArchive(
        path: finalPath, manifest: finalManifest, size: verification.structure.totalBytes,
        sha256: verification.structure.sha256, crc32c: readBack.checksum, verification: verification)
    } catch {
      unlink(partial)
      throw error
    }
  }

  /// Reads the archive back and requires exactly the bytes written.
  @discardableResult
  static func readBack(_ path: String, label: String, matches written: StreamSum) throws -> StreamSum {
    let reader = ReadAheadSource(try DirectArchiveSource(path: path))
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: DirectIO.blockSize, alignment: 16)
    defer { buffer.deallocate() }
    var sum = StreamSum()
    while case let count = try reader.read(into: buffer), count > 0 {
      sum.add(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
    }
    try require(sum, label: label, matches: written)
    return sum
  }

  /// Fails unless what was read back (its length and CRC-32C) is what was written.
  static func require(_ readBack: StreamSum, label: String, matches written: StreamSum) throws {
    guard readBack == written else {
      throw ReelError(
        .corrupt,
        "\(label): read back from the disk, it is not what was written and verified (\(readBack.total) bytes with CRC-32C \(String(format: "%08x", readBack.checksum)); written: \(written.total) bytes with CRC-32C \(String(format: "%08x", written.checksum)))",
        remedy: "nothing was sealed; check the disk (`dmesg`, SMART), then seal again")
    }
  }

  private func add(_ versions: [HistoryVersion], base: Bool, to index: ArchiveIndex) throws {
    contents.blockVersions += versions.count
    if !base {
      for version in versions where !version.isZeros { dataBytes += UInt64(version.length) }
    }
    let versions = try named(versions, index: index)
    var wanted: [String] = []
    var seen: Set<String> = []
    for version in versions {
      if let key = version.chunk, !sealedChunks.contains(key), seen.insert(key).inserted { wanted.append(key) }
    }
    var position = 0
    while position < wanted.count {
      // Small batches, so reading the store alternates with handing groups to the workers.
      let batch = Array(wanted[position..<min(position + 512, wanted.count)])
      let records = try live.chunkRecords(batch)
      for key in batch {
        try append(records[key]!, key: key, index: index)
      }
      position += batch.count
    }
    try index.add(versions: versions, base: base, chunks: pendingLocations)
    pendingLocations.removeAll()
  }

  /// The versions with every chunk named: the store keeps the names of partial versions'
  /// chunks only in their records, which are read here and checked; such a record is
  /// appended to the archive right away, as it is already in hand.
  private func named(_ versions: [HistoryVersion], index: ArchiveIndex) throws -> [HistoryVersion] {
    let rows = versions.compactMap { $0.chunk == nil ? $0.chunkRow : nil }
    guard !rows.isEmpty else { return versions }
    var names: [Int64: String] = [:]
    for start in stride(from: 0, to: rows.count, by: 512) {
      let batch = Array(rows[start..<min(start + 512, rows.count)])
      for (row, stored) in try live.unnamedChunkRecords(batch) {
        names[row] = stored.key
        if !sealedChunks.contains(stored.key) { try append(stored.record, key: stored.key, index: index) }
      }
    }
    return versions.map { version in
      var version = version
      if version.chunk == nil, let row = version.chunkRow { version.chunk = names[row] }
      return version
    }
  }

  var formatVersion: Int { request.formatVersion }

  private func append(_ record: [UInt8], key: String, index: ArchiveIndex) throws {
    sealedChunks.insert(key)
    group.append(StoreRecord(key: key, record: record))
    contents.chunks += 1
    if formatVersion < 2 {
      groupBytes += record.count
      contents.storedBytes += UInt64(record.count)
      if groupBytes >= ArchiveFormat.frameTarget { try submitGroup() }
    } else {
      groupBytes += ChunkRecordFormat.headerSize + PackFrame.plaintextLength(of: record)
      if groupBytes >= ArchiveFormat.groupTarget { try submitGroup() }
    }
  }

  /// Hands the waiting records to a background worker to become a frame; places frames
  /// that are done, in order.
  private func submitGroup() throws {
    guard !group.isEmpty else { return }
    try Interrupt.check()
    try request.masterKeys.checkSoFar()
    let records = group
    let version = formatVersion
    group.removeAll(keepingCapacity: true)
    groupBytes = 0
    try frameWork.submit({ Result { try PackFrame.build(records, formatVersion: version) } }) {
      try place($0.get())
    }
  }

  /// Encrypts a built frame into the current pack member (starting the next one when the
  /// member limit would be passed) and notes where its records are.
  private func place(_ built: BuiltPackFrame) throws {
    let frameLength = ArchiveFrame.headerSize + built.plaintext.count + AES256GCM.tagSize
    if let pack = currentPack, pack.size + UInt64(frameLength) > request.memberLimit, pack.size > 0 {
      packs.append(try pack.finish())
      currentPack = nil
    }
    if currentPack == nil {
      let number = packs.count + 1
      let name = ArchiveFormat.packName(number)
      currentPack = try StagedMember(name: name, number: number, path: staging + "/" + name)
    }
    let pack = currentPack!
    let placed = try built.plaintext.withUnsafeBytes {
      try pack.appendFrame(
        $0, content: ArchiveFormat.packContent(formatVersion: formatVersion), archiveID: archiveID, cipher: cipher)
    }
    for record in built.records {
      pendingLocations.append(
        (
          record.key,
          ArchiveChunkLocation(
            member: pack.number, frameOffset: placed.offset, frameLength: placed.length,
            recordOffset: record.offset, recordLength: record.length, size: record.size)
        ))
      contents.chunkBytes += UInt64(record.size)
    }
    if formatVersion >= 2 { contents.storedBytes += UInt64(built.plaintext.count) }
    contents.frames += 1
  }

  private func encryptIndex() throws -> ArchiveManifest.Member {
    let source = try PosixFile.openForReading(plaintextIndexPath)
    let member = try StagedMember(
      name: ArchiveFormat.indexName, number: 0, path: staging + "/" + ArchiveFormat.indexName)
    let size = try source.size()
    var offset: UInt64 = 0
    while offset < size {
      let piece = try source.read(at: offset, count: Int(min(UInt64(ArchiveFormat.frameTarget), size - offset)))
      _ = try piece.withUnsafeBytes {
        try member.appendFrame($0, content: ArchiveFrame.contentIndex, archiveID: archiveID, cipher: cipher)
      }
      offset += UInt64(piece.count)
    }
    return try member.finish()
  }

  private func makeManifest(
    records: [HistoryRecord], bookmarks: [Bookmark], indexMember: ArchiveManifest.Member
  ) throws -> ArchiveManifest {
    return ArchiveManifest(
      format: ArchiveManifest.formatName, formatVersion: formatVersion, archiveID: archiveIDText,
      parentID: parent?.id, chainID: parent?.chainID ?? archiveIDText,
      chainIndex: parent.map { $0.chainIndex + 1 } ?? 0,
      createdAt: created.rfc3339, writer: "reel \(ReelVersion.current)",
      volume: ArchiveManifest.Volume(
        name: descriptor.name, id: descriptor.id.description, size: descriptor.size,
        blockSize: Int(descriptor.blockSize), storeBlockSize: Int(descriptor.storeBlockSize),
        created: descriptor.created.rfc3339),
      range: ArchiveManifest.Range(
        fromSeq: fromSeq, untilSeq: untilSeq, fromTime: try live.time(of: fromSeq, in: descriptor).rfc3339,
        untilTime: try live.time(of: untilSeq, in: descriptor).rfc3339, records: records.count,
        bytesWritten: dataBytes),
      bookmarks: bookmarks.map(ArchiveManifest.Bookmark.init),
      members: [indexMember] + packs,
      compression: ArchiveManifest.Compression(
        algorithm: "zstd", level: formatVersion >= 2 ? Int(PackFrame.groupCompressionLevel) : 3,
        frameSize: formatVersion < 2 ? ArchiveFormat.frameTarget : ArchiveFormat.groupTarget,
        windowLog: formatVersion >= 2 ? Int(PackFrame.groupWindowLog) : nil),
      cipher: ArchiveManifest.Cipher(
        algorithm: "AES-256-GCM",
        nonce: "member number (4 bytes, big-endian) || frame number within the member (8 bytes, big-endian)",
        associatedData: "\"reel-archive-v1\" || archive UUID (16 bytes) || frame header bytes 0..<28",
        keyDerivation:
          "frame key = HMAC-SHA256(data key, \"\(ArchiveFormat.frameKeyPurpose)\"); manifest MAC key = HMAC-SHA256(data key, \"\(ArchiveFormat.manifestKeyPurpose)\")"
      ),
      keys: try request.masterKeys.keys().map { keys.wrapped(for: $0) },
      contents: contents)
  }
}
