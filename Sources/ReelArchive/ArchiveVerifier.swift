import Foundation
import ReelCodec
import ReelCore
import ReelIO
import ReelStore

/// Something wrong with an archive, named by member and byte offset inside the member.
package struct ArchiveProblem: Sendable, Equatable, CustomStringConvertible {
  package var member: String
  package var offset: UInt64?
  package var message: String

  package var description: String {
    if let offset { return "\(member) at offset \(offset): \(message)" }
    return "\(member): \(message)"
  }
}

/// What the keyless checks found: the manifest and every member's size and digest.
package struct ArchiveStructureReport: Sendable {
  package var manifest: ArchiveManifest
  package var members: [ArchiveManifest.Member]
  /// Bytes of the whole tar stream and its SHA-256.
  package var totalBytes: UInt64
  package var sha256: String
}

package struct ArchiveVerification: Sendable {
  package var structure: ArchiveStructureReport
  /// True when the key opened the archive and every frame, chunk and index row was checked.
  package var keyChecked: Bool
  package var problems: [ArchiveProblem]
  package var framesChecked: Int
  package var chunksChecked: Int
}

/// Checks sealed archives (docs/archive-format.md).
package enum ArchiveVerifier {
  /// Keyless checks while streaming: tar structure, member names and order, every member
  /// against SHA256SUMS and the manifest, frame headers. Throws `.corrupt` naming the first
  /// damaged member; use this on bytes read back from media.
  package static func verifyStructure(source: inout some ArchiveByteSource, label: String = "archive") throws
    -> ArchiveStructureReport
  {
    let scanner = try ArchiveScanner(source: source, label: label, masterKeys: [])
    try scanner.readHead()
    try scanner.readBody(onChunk: nil)
    let result = scanner.result()
    if let problem = result.problems.first {
      throw ReelError(
        .corrupt,
        "\(label): \(problem)" + (result.problems.count > 1 ? " (and \(result.problems.count - 1) more)" : ""),
        remedy: "this copy is damaged; use another copy of the archive")
    }
    return result.structure
  }

  package static func verifyStructure(path: String) throws -> ArchiveStructureReport {
    var source = try FileArchiveSource(path: path)
    let label = (path as NSString).lastPathComponent
    let structure = try verifyStructure(source: &source, label: label)
    if structure.manifest.parity != nil, let problem = parityProblems(path: path, others: []).first {
      throw ReelError(
        .corrupt, "\(label): \(problem)", remedy: "this copy is damaged; `reel repair` may rebuild it from its parity")
    }
    return structure
  }

  /// Every check: without keys the keyless ones; with a key that opens the archive also
  /// the manifest HMAC, every frame's tag, every chunk's content hash and the index.
  /// Problems are collected, not thrown; a tar that cannot be read at all throws.
  package static func verify(path: String, masterKeys: [SymmetricKey], label: String? = nil) throws
    -> ArchiveVerification
  {
    var result = try verify(
      source: try FileArchiveSource(path: path), masterKeys: masterKeys,
      label: label ?? (path as NSString).lastPathComponent)
    if result.structure.manifest.parity != nil {
      result.problems += parityProblems(path: path, others: result.problems)
    }
    return result
  }

  /// Version 4: every shard against its CRC (`ArchiveParity.inspect`). Damage to PARITY
  /// itself is a problem of its own; damage to the bytes before it is already named by
  /// member, and counts here only where no member check saw it (tar padding).
  static func parityProblems(path: String, others: [ArchiveProblem]) -> [ArchiveProblem] {
    do {
      let report = try ArchiveParity.inspect(path: path)
      return zip(report.ranges, report.sentences).compactMap { range, sentence in
        guard range.region != .data || others.isEmpty else { return nil }
        return ArchiveProblem(
          member: range.region == .data ? "(bytes before PARITY)" : ArchiveFormat.parityName, offset: range.offset,
          message: sentence)
      }
    } catch let error as ReelError {
      return [ArchiveProblem(member: ArchiveFormat.parityName, offset: nil, message: error.message)]
    } catch {
      return [ArchiveProblem(member: ArchiveFormat.parityName, offset: nil, message: "\(error)")]
    }
  }

  /// Every check on a stream (an archive read back from media).
  package static func verify(source: any ArchiveByteSource, masterKeys: [SymmetricKey], label: String) throws
    -> ArchiveVerification
  {
    try scan(ArchiveScanner(source: source, label: label, masterKeys: masterKeys))
  }

  /// Every check on the tar stream as it is written (the seal's verification, before the
  /// bytes on disk are compared with it): `pipe` gets every byte the writer produces.
  /// `checkContent` false: chunk records are checked by CRC-32C and name, not re-hashed.
  /// A framed member whose every frame authenticates is not hashed again: the tags bind
  /// each of its bytes to what the seal encrypted and hashed into the manifest (and the
  /// read-back then proves the whole file's SHA-256). `writerHashes`: the writer hashes the
  /// stream itself (`TarWriter.hashStream`) and puts that SHA-256 in the structure, which
  /// leaves it empty.
  static func verify(
    written pipe: ArchiveBytePipe, masterKeys: [SymmetricKey], label: String, checkContent: Bool,
    store: StoreLayout? = nil, writerHashes: Bool = false
  ) throws -> ArchiveVerification {
    defer { pipe.abandon() }
    return try scan(
      ArchiveScanner(
        source: pipe, label: label, masterKeys: masterKeys, checkContent: checkContent, readAhead: false,
        hashAuthenticatedMembers: false, store: store, hashesStream: !writerHashes))
  }

  private static func scan(_ scanner: ArchiveScanner) throws -> ArchiveVerification {
    try scanner.readHead()
    try scanner.readBody(onChunk: nil)
    return scanner.result()
  }

  /// Reads only what precedes the index: the manifest, checked against nothing (`reel inspect`).
  package static func readManifest(path: String) throws -> ArchiveManifest {
    let source = try FileArchiveSource(path: path)
    let scanner = try ArchiveScanner(source: source, label: (path as NSString).lastPathComponent, masterKeys: [])
    return try scanner.readManifestOnly()
  }
}

/// A byte source that also hashes (unless told the writer does) and counts everything
/// read through it.
package final class HashingSource: ArchiveByteSource {
  var inner: any ArchiveByteSource
  package let hasher = SHA256Hasher()
  package let hashes: Bool
  package var total: UInt64 = 0

  package init(_ inner: any ArchiveByteSource, hashes: Bool = true) {
    self.inner = inner
    self.hashes = hashes
  }

  package func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    let count = try inner.read(into: buffer)
    if hashes { hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<count])) }
    total += UInt64(count)
    return count
  }
}

/// One pass over an archive's tar stream, member by member, in the order the format fixes.
/// `readHead` covers README, manifest, MAC and index; `readBody` the packs and SHA256SUMS.
/// An importer calls them with the store's import open in between.
final class ArchiveScanner {
  let label: String
  let masterKeys: [SymmetricKey]
  private let hashing: HashingSource
  private let tar: TarReader
  private(set) var manifest: ArchiveManifest?
  private(set) var keys: ArchiveKeys?
  private(set) var index: ArchiveIndex?
  /// The index's chunk table, read once in `readHead`.
  private(set) var indexLocations: [String: ArchiveChunkLocation] = [:]
  private var cipher: AES256GCM?
  private var archiveUUID: UUID?
  private var found: [ArchiveManifest.Member] = []
  private var problems: [ArchiveProblem] = []
  private var pending: TarReader.Member?
  private var frames = 0
  private var chunks = 0
  /// Chunks delivered from frames that authenticated (with a key) or walked (without).
  private(set) var foundChunks: Set<String> = []
  /// Holds the decrypted index; removed with the scanner.
  private var scratch: PrivateScratch?

  /// Decompress every chunk and compare its SHA-256 with its name; without it, chunk records
  /// are checked by CRC-32C and name only (their frames are still authenticated by GCM).
  let checkContent: Bool
  /// Hand raw records of version 2 frames to `onChunk` re-encoded as the store keeps them
  /// (compressed on the frame workers), not raw.
  let storeRecords: Bool
  /// False: a framed member whose every frame authenticates counts as the manifest's
  /// digest instead of being hashed (the seal's check of what it just wrote).
  let hashAuthenticatedMembers: Bool
  /// Frames being opened at once, on background threads.
  static let framesInFlight = 4
  /// Reading what is left of a damaged archive: after a damaged frame header, go on at the
  /// next frame the (authenticated) index knows in that member instead of giving up on it.
  let salvaging: Bool

  /// Set by `readBody` when version 2 frames are handed over whole.
  private var keepGroups = false

  /// Give up at the first frame after a problem instead of reading on to list them all:
  /// for a reader that will repair the archive and read it again anyway.
  var stopAtFirstProblem = false

  /// Whose private temp folder gets the decrypted index; nil: the store this process
  /// opened, else a private folder in $TMPDIR (`PrivateScratch`).
  let store: StoreLayout?

  /// `readAhead` false: the source already arrives from another thread.
  init(
    source: any ArchiveByteSource, label: String, masterKeys: [SymmetricKey], checkContent: Bool = true,
    storeRecords: Bool = false, readAhead: Bool = true, hashAuthenticatedMembers: Bool = true,
    store: StoreLayout? = nil, salvaging: Bool = false, hashesStream: Bool = true
  ) throws {
    self.store = store
    self.salvaging = salvaging
    self.hashAuthenticatedMembers = hashAuthenticatedMembers
    self.label = label
    self.masterKeys = masterKeys
    self.checkContent = checkContent
    self.storeRecords = storeRecords
    hashing = HashingSource(readAhead ? ReadAheadSource(source) : source, hashes: hashesStream)
    tar = try TarReader(source: hashing, label: label)
  }

  private func problem(_ member: String, _ offset: UInt64?, _ message: String) {
    problems.append(ArchiveProblem(member: member, offset: offset, message: message))
  }

  private func corrupt(_ message: String) -> ReelError {
    ReelError(
      .corrupt, "\(label): \(message)", remedy: "this copy is damaged or is not a Reel archive; use another copy")
  }

  private func expect(_ name: String) throws -> TarReader.Member {
    guard let member = try tar.next() else { throw corrupt("the archive ends before member \(name)") }
    guard member.name == name else {
      throw corrupt("member \"\(member.name)\" found where \(name) belongs")
    }
    return member
  }

  /// Reads a small member whole, hashing it.
  private func small(_ member: TarReader.Member, limit: Int) throws -> [UInt8] {
    guard member.size <= UInt64(limit) else {
      throw corrupt("member \(member.name) claims \(member.size) bytes; at most \(limit) are allowed")
    }
    let bytes = try tar.readAll(limit: limit, name: member.name)
    found.append(
      ArchiveManifest.Member(
        name: member.name, role: "", size: UInt64(bytes.count), sha256: SHA256Digest.hash(bytes).hex))
    return bytes
  }

  func readManifestOnly() throws -> ArchiveManifest {
    _ = try small(try expect(ArchiveFormat.readmeName), limit: 1 << 20)
    return try decodeManifest(try small(try expect(ArchiveFormat.manifestName), limit: ArchiveFormat.smallMemberLimit))
  }

  private func decodeManifest(_ bytes: [UInt8]) throws -> ArchiveManifest {
    struct Probe: Decodable {
      var format: String?
      var formatVersion: Int?
    }
    guard let probe = try? JSONDecoder().decode(Probe.self, from: Data(bytes)),
      probe.format == ArchiveManifest.formatName
    else { throw corrupt("manifest.json is not a Reel archive manifest") }
    guard let version = probe.formatVersion, version >= 1, version <= ArchiveManifest.currentVersion else {
      throw ReelError(
        .incompatible,
        "\(label): archive format version \(probe.formatVersion.map(String.init) ?? "?") is not one this Reel reads (1 to \(ArchiveManifest.currentVersion))",
        remedy: "use a newer Reel; README.txt in the archive describes the format")
    }
    do {
      return try JSONDecoder().decode(ArchiveManifest.self, from: Data(bytes))
    } catch {
      throw corrupt("manifest.json does not hold every field of format version \(version) (\(error))")
    }
  }

  func readHead() throws {
    _ = try small(try expect(ArchiveFormat.readmeName), limit: 1 << 20)
    let manifestBytes = try small(try expect(ArchiveFormat.manifestName), limit: ArchiveFormat.smallMemberLimit)
    let manifest = try decodeManifest(manifestBytes)
    self.manifest = manifest
    guard let uuid = UUID(uuidString: manifest.archiveID) else {
      throw corrupt("the manifest's archive ID is not a UUID")
    }
    archiveUUID = uuid
    let macText = try small(try expect(ArchiveFormat.manifestMACName), limit: 4096)
    if !masterKeys.isEmpty {
      let master = masterKeys.first { key in manifest.keys.contains { $0.fingerprint == key.fingerprint } }
      let keys = try ArchiveKeys.unwrap(manifest, with: master ?? masterKeys[0], archive: label)
      let expected = SHA256Digest(bytes: HMACSHA256.authenticate(manifestBytes, key: keys.manifestKey)).hex
      let stored = String(decoding: macText, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
      guard HMACSHA256.equal(Array(expected.utf8), Array(stored.utf8)) else {
        throw ReelError(
          .corrupt, "\(label): manifest.json does not match manifest.hmac: one of them was altered or damaged",
          remedy: "use another copy of the archive")
      }
      self.keys = keys
      cipher = AES256GCM(key: keys.frameKey)
    }
    let indexMember = try expect(ArchiveFormat.indexName)
    var decrypted: PosixFile?
    if cipher != nil {
      // The plaintext index names every chunk and bookmark: never in a shared folder.
      let folder = try PrivateScratch(store: store)
      scratch = folder
      decrypted = try PosixFile.createNew(folder.path + "/index.sqlite")
    }
    var written: UInt64 = 0
    try readFrames(indexMember, content: ArchiveFrame.contentIndex) { _, opened in
      guard let decrypted else { return }
      try decrypted.write(opened.plaintext, at: written)
      written += UInt64(opened.plaintext.count)
    }
    if let decrypted, problems.isEmpty {
      let index = try ArchiveIndex.open(at: decrypted.path, archive: label)
      self.index = index
      indexLocations = try index.chunkLocations()
    } else if decrypted != nil {
      throw corrupt("the index cannot be read: \(problems.map(\.description).joined(separator: "; "))")
    }
  }

  /// Walks the packs and SHA256SUMS; `onChunk` gets every verified chunk record. With
  /// `onGroup`, a version 2 frame whose records all check out is handed over whole instead
  /// (its records do not go to `onChunk`).
  func readBody(
    onChunk: ((String, [UInt8]) throws -> Void)?, onGroup: ((ArchiveGroup) throws -> Void)? = nil
  ) throws {
    keepGroups = onGroup != nil
    var packNumber = 1
    let packContent = ArchiveFormat.packContent(formatVersion: manifest?.packFormat ?? 1)
    var sumsBytes: [UInt8]?
    while let member = try tar.next() {
      try Interrupt.check()
      if member.name == ArchiveFormat.checksumsName {
        sumsBytes = try small(member, limit: 1 << 20)
        break
      }
      guard ArchiveFormat.packNumber(member.name) == packNumber else {
        throw corrupt(
          "member \"\(member.name)\" found where \(ArchiveFormat.packName(packNumber)) or SHA256SUMS belongs")
      }
      try readFrames(member, content: packContent, deliver: onChunk != nil) { frame, opened in
        try self.accept(
          opened, member: member.name, number: packNumber, frameOffset: frame.memberOffset, onChunk: onChunk,
          onGroup: onGroup)
      }
      packNumber += 1
    }
    guard let sumsBytes else { throw corrupt("the archive ends before SHA256SUMS (truncated?)") }
    var ended = false
    if manifest?.parity != nil {
      if let member = try tar.next() {
        guard member.name == ArchiveFormat.parityName else {
          throw corrupt("member \"\(member.name)\" found where PARITY belongs")
        }
        try readParity(member)
      } else {
        problem(ArchiveFormat.parityName, nil, "is missing: the archive ends after SHA256SUMS (truncated?)")
        ended = true
      }
    }
    if !ended, let extra = try tar.next() {
      throw corrupt("member \"\(extra.name)\" follows \(manifest?.parity != nil ? "PARITY" : "SHA256SUMS")")
    }
    // Drain the padding so the whole-stream digest covers every byte.
    let drain = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 16, alignment: 16)
    defer { drain.deallocate() }
    var trailing = try hashing.read(into: drain)
    while trailing > 0 {
      if drain[0..<trailing].contains(where: { $0 != 0 }) {
        problem("(end of archive)", nil, "bytes after the last member are not the zero padding tar requires")
      }
      trailing = try hashing.read(into: drain)
    }
    checkSums(sumsBytes)
    checkManifest()
    if index != nil { try checkIndexCoverage() }
  }

  /// The largest archive a PARITY member of `memberSize` bytes can protect (its parity is at
  /// least 1/64 of the data, plus a margin), saturating: the size comes from the tar header
  /// on the media, and a hostile one of 2^63 overflowed the arithmetic (a trap, found by
  /// `benchmarks/fuzz.sh`).
  static func parityFileBound(_ memberSize: UInt64) -> UInt64 {
    let (scaled, overflow) = memberSize.multipliedReportingOverflow(by: 64)
    let (bound, overflowAgain) = scaled.addingReportingOverflow(1 << 30)
    return overflow || overflowAgain ? .max : bound
  }

  /// PARITY (format version 4), as it streams past: both table copies must parse, agree
  /// and name this archive, and every parity shard must match its CRC. (The data shards'
  /// CRCs are checked by `ArchiveParity.inspect`, which `verify(path:)` runs: a stream
  /// cannot see bytes 0 ..< P again.)
  private func readParity(_ member: TarReader.Member) throws {
    let headerBytes = ParityGeometry.headerSize + ParityGeometry.tarHeaderRoom
    var first: [UInt8] = []
    var header: ParityHeader?
    var table: [UInt32?] = []
    var shard: [UInt8] = []
    var shardIndex = 0
    var badShards = 0
    var firstBad: UInt64?
    var last: [UInt8] = []
    var offset: UInt64 = 0
    var unreadable = false
    try tar.readData { piece in
      var rest = piece[...]
      while !rest.isEmpty && !unreadable {
        guard let header else {
          let take = min(rest.count, headerBytes - first.count)
          first += rest.prefix(take)
          rest = rest.dropFirst(take)
          offset += UInt64(take)
          if first.count == headerBytes {
            guard let decoded = ParityHeader.decode(first, fileSize: Self.parityFileBound(member.size)),
              decoded.geometry.memberSize == member.size
            else {
              unreadable = true
              return
            }
            header = decoded
          }
          continue
        }
        let g = header.geometry
        if first.count < g.copySize {
          let take = min(rest.count, g.copySize - first.count)
          first += rest.prefix(take)
          rest = rest.dropFirst(take)
          offset += UInt64(take)
          if first.count == g.copySize { table = header.tableEntries(ofCopy: first) }
        } else if shardIndex < g.parityShardCount {
          let take = min(rest.count, g.shardSize - shard.count)
          shard += rest.prefix(take)
          rest = rest.dropFirst(take)
          offset += UInt64(take)
          if shard.count == g.shardSize {
            let expected = table[g.dataShards + shardIndex]
            if expected == nil || expected != CRC32C.checksum(shard) {
              badShards += 1
              if firstBad == nil { firstBad = offset - UInt64(g.shardSize) }
            }
            shard.removeAll(keepingCapacity: true)
            shardIndex += 1
          }
        } else {
          last += rest
          offset += UInt64(rest.count)
          rest = rest.dropFirst(rest.count)
        }
      }
    }
    guard let header, !unreadable else {
      problem(
        ArchiveFormat.parityName, 0, "its first table copy is damaged (the copy at its end may still serve a repair)")
      return
    }
    if header.archiveID.uuidString.lowercased() != manifest?.archiveID.lowercased() {
      problem(
        ArchiveFormat.parityName, 0,
        "belongs to archive \(header.archiveID.uuidString.lowercased()), not this one (spliced in from another archive)"
      )
    }
    if table.contains(where: { $0 == nil }) {
      problem(ArchiveFormat.parityName, 0, "its first shard table copy is damaged")
    }
    if badShards > 0 {
      problem(ArchiveFormat.parityName, firstBad, "\(badShards) parity shard(s) fail their CRC-32C")
    }
    var second = ParityHeader.decode(last, fileSize: Self.parityFileBound(member.size))
    second?.copy = 0
    var expected = header
    expected.copy = 0
    let headerEnd = ParityGeometry.headerSize + ParityGeometry.tarHeaderRoom
    if second != expected || last.count != first.count || last[headerEnd...] != first[headerEnd...] {
      problem(ArchiveFormat.parityName, offset - UInt64(last.count), "its second shard table copy is damaged")
    }
  }

  /// A frame read from a member, still sealed.
  private struct SealedFrame: Sendable {
    var header: ArchiveFrame.Header
    var headerBytes: [UInt8]
    var sealed: [UInt8]
    var memberOffset: UInt64
  }

  /// A frame after opening: its plaintext (index frames) or its checked chunk records.
  private struct OpenedFrame: Sendable {
    var plaintext: [UInt8] = []
    var records: [OpenedRecord] = []
    var problems: [String] = []
    var authentic = true
    /// Set when the frame's group is kept whole (`plaintext` is then that zstd frame).
    var groupContentLength: Int?
  }

  /// Streams a framed member, checking each header; with a key, opens the frames (several
  /// at a time on background threads, while reading goes on) and hands each to `body` in
  /// order. `deliver`: keep the chunk records' bytes for `body`.
  private func readFrames(
    _ member: TarReader.Member, content: UInt8, deliver: Bool = false,
    _ body: (SealedFrame, OpenedFrame) throws -> Void
  ) throws {
    let hasher = SHA256Hasher()
    var buffer: [UInt8] = []
    var consumed = 0
    var memberOffset: UInt64 = 0
    var expectedNumber: UInt64 = 0
    var broken = false
    let memberNumber = member.name == ArchiveFormat.indexName ? 0 : ArchiveFormat.packNumber(member.name) ?? -1
    var total: UInt64 = 0
    let hashesMember = hashAuthenticatedMembers || cipher == nil
    var everyFrameAuthentic = true
    let work = OrderedWork<(SealedFrame, OpenedFrame)>(window: Self.framesInFlight)
    func handle(_ done: (SealedFrame, OpenedFrame)) throws {
      let (frame, opened) = done
      if !opened.authentic {
        everyFrameAuthentic = false
        problem(
          member.name, frame.memberOffset,
          "frame \(frame.header.frameNumber) fails its authentication tag (damaged or altered)")
      }
      for message in opened.problems { problem(member.name, frame.memberOffset, message) }
      try body(frame, opened)
    }
    let opener = opener(content: content, deliver: deliver)
    // Salvaging: where the index says this member's frames start, to go on after a
    // damaged header (frame numbers then jump; each frame's tag still binds its number).
    let knownStarts =
      salvaging && content != ArchiveFrame.contentIndex
      ? Set(indexLocations.values.filter { $0.member == memberNumber }.map(\.frameOffset)).sorted() : []
    var skipTo: UInt64?
    try tar.readData { piece in
      if hashesMember { hasher.update(piece) }
      total += UInt64(piece.count)
      guard !broken else { return }
      buffer += piece
      while !broken {
        var available = buffer.count - consumed
        if let target = skipTo {
          let skip = Int(target - memberOffset)
          guard available >= skip else {
            memberOffset += UInt64(available)
            consumed = buffer.count
            break
          }
          consumed += skip
          memberOffset = target
          available -= skip
          skipTo = nil
        }
        guard available >= ArchiveFrame.headerSize else { break }
        let header = buffer.withUnsafeBytes {
          ArchiveFrame.decodeHeader(
            UnsafeRawBufferPointer(rebasing: $0[consumed..<(consumed + ArchiveFrame.headerSize)]))
        }
        guard let header, header.content == content, header.member == memberNumber,
          salvaging ? header.frameNumber >= expectedNumber : header.frameNumber == expectedNumber,
          header.plaintextLength <= 16 << 20
        else {
          problem(member.name, memberOffset, "frame \(expectedNumber) has a damaged or misplaced header")
          if let next = knownStarts.first(where: { $0 > memberOffset }) {
            skipTo = next
            expectedNumber += 1
            continue
          }
          broken = true
          break
        }
        expectedNumber = header.frameNumber
        let frameLength = ArchiveFrame.headerSize + header.sealedLength
        guard available >= frameLength else { break }
        if cipher != nil {
          let start = consumed + ArchiveFrame.headerSize
          let frame = SealedFrame(
            header: header, headerBytes: Array(buffer[consumed..<start]),
            sealed: Array(buffer[start..<(start + header.sealedLength)]), memberOffset: memberOffset)
          if let opener { try work.submit({ (frame, opener(frame)) }, handle: handle) }
        }
        frames += 1
        consumed += frameLength
        memberOffset += UInt64(frameLength)
        expectedNumber += 1
      }
      if consumed > 4 << 20 {
        buffer.removeFirst(consumed)
        consumed = 0
      }
    }
    try work.drain(handle)
    if !broken && buffer.count - consumed != 0 {
      problem(member.name, memberOffset, "ends inside a frame (\(buffer.count - consumed) stray bytes)")
    }
    var digest = hashesMember ? hasher.finish().hex : "(not hashed: not every frame authenticated)"
    if !hashesMember, everyFrameAuthentic, !broken, buffer.count == consumed,
      let listed = manifest?.members.first(where: { $0.name == member.name }), listed.size == total
    {
      digest = listed.sha256
    }
    found.append(ArchiveManifest.Member(name: member.name, role: "", size: total, sha256: digest))
  }

  /// What opens one frame on a background thread: decrypts it and checks its chunk records
  /// (CRC-32C, name, and with `checkContent` the SHA-256 of the plaintext); nil without a key.
  private func opener(content: UInt8, deliver: Bool) -> (@Sendable (SealedFrame) -> OpenedFrame)? {
    guard let keys, let archiveUUID else { return nil }
    let frameKey = keys.frameKey
    let checkContent = self.checkContent
    let storeRecords = self.storeRecords
    let keepGroups = self.keepGroups
    return { frame in
      var opened = OpenedFrame()
      do {
        opened.plaintext = try frame.sealed.withUnsafeBytes { (raw) throws(AuthenticationFailure) -> [UInt8] in
          try ArchiveFrame.open(
            raw, header: frame.header, headerBytes: frame.headerBytes, archiveID: archiveUUID,
            cipher: AES256GCM(key: frameKey))
        }
      } catch {
        opened.authentic = false
        return opened
      }
      guard content != ArchiveFrame.contentIndex else { return opened }
      let checked = PackFrame.open(
        opened.plaintext, content: content, frameNumber: frame.header.frameNumber, checkContent: checkContent,
        deliver: deliver, storeEncode: storeRecords, keepGroup: keepGroups)
      opened.records = checked.records
      opened.problems = checked.problems
      opened.groupContentLength = checked.groupContentLength
      if checked.groupContentLength == nil { opened.plaintext = [] }
      return opened
    }
  }

  private func accept(
    _ opened: OpenedFrame, member: String, number: Int, frameOffset: UInt64,
    onChunk: ((String, [UInt8]) throws -> Void)?, onGroup: ((ArchiveGroup) throws -> Void)?
  ) throws {
    if stopAtFirstProblem, let first = problems.first { throw corrupt(first.description) }
    let problemsBefore = problems.count
    for (key, record, offset) in opened.records.map({ ($0.key, $0.record, $0.offset) }) {
      chunks += 1
      foundChunks.insert(key)
      if let location = indexLocations[key],
        location.member != number || location.frameOffset != frameOffset || location.recordOffset != offset
      {
        problem(member, frameOffset, "chunk \(key) is not where the index says")
      }
      if opened.groupContentLength == nil { try onChunk?(key, record) }
    }
    // A group is kept whole only when every record in it checked out; otherwise its
    // chunks are lost to the reader, as the damaged records of any frame are.
    if let contentLength = opened.groupContentLength, opened.problems.isEmpty, problems.count == problemsBefore {
      try onGroup?(
        ArchiveGroup(
          frame: opened.plaintext, contentLength: contentLength,
          members: opened.records.map { ($0.key, $0.offset, $0.size) }))
    } else if opened.groupContentLength != nil {
      for key in opened.records.map(\.key) { foundChunks.remove(key) }
    }
  }

  private func checkSums(_ bytes: [UInt8]) {
    var listed: [String: String] = [:]
    for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
      let parts = line.split(separator: " ", maxSplits: 1)
      guard parts.count == 2, parts[0].count == 64 else {
        problem(ArchiveFormat.checksumsName, nil, "line \"\(line)\" is not in sha256sum format")
        continue
      }
      listed[String(parts[1].drop { $0 == " " || $0 == "*" })] = String(parts[0])
    }
    for member in found where member.name != ArchiveFormat.checksumsName {
      guard let sum = listed.removeValue(forKey: member.name) else {
        problem(member.name, nil, "is not listed in SHA256SUMS")
        continue
      }
      guard sum != member.sha256 else { continue }
      let manifestEntry = manifest?.members.first { $0.name == member.name }
      let authentic = keys != nil && [ArchiveFormat.manifestName, ArchiveFormat.manifestMACName].contains(member.name)
      if manifestEntry?.sha256 == member.sha256 || authentic {
        problem(
          ArchiveFormat.checksumsName, nil,
          "its line for \(member.name) does not match that member (SHA256SUMS is damaged)")
      } else {
        problem(member.name, nil, "its SHA-256 does not match SHA256SUMS (damaged)")
      }
    }
    for name in listed.keys.sorted() { problem(name, nil, "is listed in SHA256SUMS but missing from the archive") }
  }

  private func checkManifest() {
    guard let manifest else { return }
    let actual = Dictionary(found.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    for member in manifest.members {
      guard let seen = actual[member.name] else {
        problem(member.name, nil, "is listed in manifest.json but missing from the archive")
        continue
      }
      if seen.size != member.size || seen.sha256 != member.sha256 {
        problem(member.name, nil, "does not match manifest.json (size or SHA-256)")
      }
    }
    let listed = Set(manifest.members.map(\.name))
    for member in found
    where !listed.contains(member.name)
      && ![ArchiveFormat.manifestName, ArchiveFormat.manifestMACName, ArchiveFormat.checksumsName].contains(member.name)
    {
      problem(member.name, nil, "is in the archive but not in manifest.json")
    }
  }

  private func checkIndexCoverage() throws {
    guard let index, let manifest else { return }
    for (key, location) in indexLocations where !foundChunks.contains(key) {
      problem(
        ArchiveFormat.packName(location.member), location.frameOffset, "chunk \(key) listed in the index is missing")
    }
    let versions = try index.versions()
    for version in versions {
      if let key = version.chunk, indexLocations[key] == nil {
        problem(
          ArchiveFormat.indexName, nil,
          "block \(version.block) at seq \(version.seq) refers to chunk \(key), which the archive does not hold")
        break
      }
      if version.seq > manifest.range.untilSeq {
        problem(
          ArchiveFormat.indexName, nil,
          "block \(version.block) has a version at seq \(version.seq), after the archive's range")
        break
      }
    }
    let records = try index.records()
    if records.count != manifest.range.records
      || records.contains(where: { $0.seq <= manifest.range.fromSeq || $0.seq > manifest.range.untilSeq })
    {
      problem(ArchiveFormat.indexName, nil, "its journal records do not match the manifest's range")
    }
    let bookmarks = try index.bookmarks().map(ArchiveManifest.Bookmark.init)
    if bookmarks != manifest.bookmarks {
      problem(ArchiveFormat.indexName, nil, "its bookmarks do not match the manifest")
    }
    try checkLineage(index: index, manifest: manifest, versions: versions)
  }

  /// Version 3: the index's schema, origin and rollbacks agree with the manifest, and a
  /// clone's archive holds none of its origin's history.
  private func checkLineage(index: ArchiveIndex, manifest: ArchiveManifest, versions: [HistoryVersion]) throws {
    if index.schema != ArchiveIndex.schema(forFormat: manifest.formatVersion) {
      problem(
        ArchiveFormat.indexName, nil,
        "it has schema \(index.schema), but archives of format version \(manifest.formatVersion) carry schema \(ArchiveIndex.schema(forFormat: manifest.formatVersion))"
      )
      return
    }
    let rollbacks = try index.rollbacks().map(ArchiveManifest.Rollback.init)
    if rollbacks != manifest.rollbacks ?? [] {
      problem(ArchiveFormat.indexName, nil, "its rollbacks do not match the manifest")
    }
    if rollbacks.contains(where: { $0.seq <= manifest.range.fromSeq || $0.seq > manifest.range.untilSeq }) {
      problem(ArchiveFormat.indexName, nil, "it lists rollbacks outside the archive's range")
    }
    let info = try index.info()
    let origin = manifest.origin
    if info["origin_volume_id"] != origin?.volumeID || info["origin_seq"] != origin.map({ String($0.seq) }) {
      problem(ArchiveFormat.indexName, nil, "its origin does not match the manifest's")
    }
    if let origin {
      if origin.seq > manifest.range.fromSeq {
        problem(
          ArchiveFormat.manifestName, nil,
          "it names clone point seq \(origin.seq), after the seq \(manifest.range.fromSeq) the archive starts at")
      }
      if let early = versions.first(where: { $0.seq <= origin.seq }) {
        problem(
          ArchiveFormat.indexName, nil,
          "block \(early.block) has a version at seq \(early.seq), not after the clone point seq \(origin.seq)")
      }
    }
  }

  func result() -> ArchiveVerification {
    ArchiveVerification(
      structure: ArchiveStructureReport(
        manifest: manifest!, members: found, totalBytes: hashing.total,
        sha256: hashing.hashes ? hashing.hasher.finish().hex : ""),
      keyChecked: keys != nil, problems: problems, framesChecked: frames, chunksChecked: chunks)
  }
}

/// A version 2 pack frame's group, handed over whole: its zstd frame, the length of its
/// decompressed content, and where each chunk record starts in that content.
package struct ArchiveGroup: Sendable {
  package var frame: [UInt8]
  package var contentLength: Int
  package var members: [(key: String, recordOffset: Int, size: Int)]
}
