import Foundation
import ReelCodec
import ReelCore
import ReelStore

package struct ArchiveImportReport: Sendable {
  package var manifest: ArchiveManifest
  /// False when the store already held this archive's window.
  package var imported: Bool
  package var chunksAdded: Int
  package var chunksAlreadyStored: Int
  package var verification: ArchiveVerification?
}

/// Imports a sealed archive into a live store, verifying every frame and chunk as it goes;
/// the window becomes visible in one catalog transaction only when the whole archive
/// checked out, so an interrupted or failed import leaves nothing half-imported.
package enum ArchiveImporter {
  /// `salvaged`: the archive is damaged beyond repair and was assessed
  /// (`ArchiveSalvage.assess`); only its history through `wholeThrough` is imported — the
  /// versions, records, bookmarks and rollbacks up to that seq and the chunks they need,
  /// every one from a frame that authenticates. It is not recorded as a sealed archive
  /// (the store does not hold its whole window).
  ///
  /// `repairable`: the caller repairs a damaged archive from its parity and imports the
  /// repair, so an archive that carries parity fails at its first damaged frame instead
  /// of being read to its end only to list the damage.
  ///
  /// `knownSHA256`: the SHA-256 (hex) of the whole file, hashed by whoever just wrote it
  /// (a parity repair): recorded instead of hashing the stream again.
  package static func importArchive(
    source: any ArchiveByteSource, label: String, masterKeys: [SymmetricKey], into live: LiveStore,
    verifyContent: Bool = true, expecting: ((ArchiveManifest) throws -> Void)? = nil,
    salvaged: ArchiveSalvage? = nil, repairable: Bool = false, knownSHA256: String? = nil
  ) throws -> ArchiveImportReport {
    // Frames are authenticated one by one, so a member whose every frame passes is what
    // was sealed; hashing it again would only prove SHA256SUMS, which rehydration does not
    // rely on.
    let scanner = try ArchiveScanner(
      source: source, label: label, masterKeys: masterKeys, checkContent: verifyContent, storeRecords: true,
      hashAuthenticatedMembers: false, store: live.store.layout, salvaging: salvaged != nil,
      hashesStream: knownSHA256 == nil)
    try scanner.readHead()
    guard let manifest = scanner.manifest, let index = scanner.index else {
      throw ReelError(.wrongKey, "\(label): a key is needed to import", remedy: "give --key")
    }
    // The manifest is authenticated now (manifest.hmac checked with the key): the caller
    // compares it with what the media claimed before anything is written.
    try expecting?(manifest)
    scanner.stopAtFirstProblem = repairable && salvaged == nil && manifest.parity != nil
    let through = salvaged.map { $0.wholeThrough ?? manifest.range.fromSeq } ?? manifest.range.untilSeq
    if let salvaged {
      guard salvaged.manifest.archiveID == manifest.archiveID, salvaged.importable,
        through >= manifest.range.fromSeq, through <= manifest.range.untilSeq
      else {
        throw ReelError(
          .corrupt,
          "\(label): nothing of this archive can be salvaged (it is not the archive assessed, or no state of it is whole)"
        )
      }
    }
    do {
      try VolumeDescriptor.validate(name: manifest.volume.name)
    } catch {
      throw ReelError(
        .corrupt, "\(label): the manifest names volume \"\(manifest.volume.name.prefix(80))\", not a valid volume name",
        remedy: "nothing was imported; this is not an archive `reel seal` wrote")
    }
    guard let id = VolumeID(string: manifest.volume.id), let created = Timestamp(rfc3339: manifest.volume.created)
    else { throw ReelError(.corrupt, "\(label): the manifest's volume ID or creation time is malformed") }
    guard let storeBlockSize = UInt32(exactly: manifest.volume.storeBlockSize),
      (try? VolumeDescriptor.validate(storeBlockSize: storeBlockSize)) != nil
    else {
      throw ReelError(
        .incompatible,
        "\(label): store blocks of \(manifest.volume.storeBlockSize) bytes are not supported by this Reel",
        remedy: "use the Reel version that wrote the archive")
    }
    guard let blockSize = UInt32(exactly: manifest.volume.blockSize), blockSize >= 512, blockSize % 512 == 0,
      manifest.volume.size % UInt64(blockSize) == 0
    else {
      throw ReelError(
        .corrupt,
        "\(label): the manifest's volume block size \(manifest.volume.blockSize) (volume of \(manifest.volume.size) bytes) is not one Reel gives a volume",
        remedy: "nothing was imported; use another copy of the archive")
    }
    let descriptor = VolumeDescriptor(
      id: id, name: manifest.volume.name, size: manifest.volume.size, blockSize: blockSize,
      created: created, storeBlockSize: storeBlockSize)
    // A clone's chain starts over its origin's state at the clone point: without that
    // history in the store the window would read as holes. Nothing is written.
    if let origin = manifest.origin, manifest.contents.base,
      !(try live.holdsHistory(ofVolumeID: origin.volumeID, at: origin.seq))
    {
      throw ReelError(
        .notFound,
        "\(label): volume \(manifest.volume.name) was cloned from \(origin.description), and this store does not hold that volume's history up to seq \(origin.seq)",
        remedy:
          "nothing was imported; rehydrate \(origin.volumeName)'s archives up to seq \(origin.seq) into the store first (`reel rehydrate --volume \(manifest.volume.name)` brings them when the media hold them)"
      )
    }
    var added = 0
    var present = 0
    var verification: ArchiveVerification?
    let imported = try live.importHistory(
      descriptor, fromSeq: manifest.range.fromSeq, throughSeq: through,
      startsChain: manifest.contents.base, expectedChunkBytes: manifest.contents.chunkBytes
    ) { window in
      let versions = try index.versions().filter { $0.seq <= through }
      // Salvaging: only the chunks the whole part needs (the rest may be lost).
      let needed = salvaged.map { _ in Set(versions.compactMap(\.chunk)) }
      try window.preload(needed.map(Array.init) ?? Array(scanner.indexLocations.keys))
      // The scanner has checked each record's CRC-32C (and with verifyContent its content
      // hash) already. A version 2 archive's groups are stored as they are (compression
      // groups, docs/store-format.md): recompressing every chunk was most of a rehydration.
      do {
        try scanner.readBody(
          onChunk: { key, record in
            try Interrupt.check()
            if let needed, !needed.contains(key) { return }
            try window.addChunkRecord(record, key: key, verified: true)
          },
          onGroup: { group in
            try Interrupt.check()
            let members = needed.map { needed in group.members.filter { needed.contains($0.key) } } ?? group.members
            try group.frame.withUnsafeBytes {
              try window.addGroup(
                frame: $0, contentLength: group.contentLength, recordCount: group.members.count, members: members)
            }
          })
      } catch let error as ReelError where error.kind == .corrupt && salvaged != nil {
        // The damage broke the tar structure after it; what authenticated before counts.
      }
      var result = scanner.result()
      if let knownSHA256 { result.structure.sha256 = knownSHA256 }
      if let needed {
        let missing = needed.subtracting(scanner.foundChunks)
        guard missing.isEmpty else {
          throw ReelError(
            .corrupt,
            "\(label): \(missing.count) chunk(s) the history up to seq \(through) needs did not authenticate this time (it authenticated when assessed)",
            remedy:
              "nothing from this archive was imported; the medium reads differently each time: copy it while it still reads"
          )
        }
      } else {
        guard result.problems.isEmpty else {
          throw ReelError(
            // The first few: damage costs one problem per chunk it took, not worth a page.
            .corrupt,
            "\(label): \(result.problems.prefix(3).map(\.description).joined(separator: "; "))"
              + (result.problems.count > 3 ? " (and \(result.problems.count - 3) more)" : ""),
            remedy: "nothing from this archive was imported; use another copy of it")
        }
        verification = result
      }
      window.add(versions)
      window.add(try index.records().filter { $0.seq <= through })
      window.add(try index.bookmarks().filter { $0.seq <= through })
      window.add(try index.rollbacks().filter { $0.seq <= through })
      if let origin = manifest.origin, manifest.contents.base {
        window.link(
          to: VolumeOrigin(
            volumeID: id.description, originVolumeID: origin.volumeID, originSeq: origin.seq, created: created))
      }
      added = window.chunksAdded
      present = window.chunksAlreadyStored
    }
    if let verification, let fromTime = Timestamp(rfc3339: manifest.range.fromTime),
      let untilTime = Timestamp(rfc3339: manifest.range.untilTime)
    {
      try live.recordSealed(
        SealedArchiveRecord(
          manifest: manifest, fromTime: fromTime, untilTime: untilTime, fileName: label, path: label,
          size: verification.structure.totalBytes, sha256: verification.structure.sha256,
          verified: verifyContent ? Timestamp.now() : nil))
    }
    return ArchiveImportReport(
      manifest: manifest, imported: imported, chunksAdded: added, chunksAlreadyStored: present,
      verification: verification)
  }

  package static func importArchive(path: String, masterKeys: [SymmetricKey], into live: LiveStore) throws
    -> ArchiveImportReport
  {
    try importArchive(
      source: try FileArchiveSource(path: path), label: (path as NSString).lastPathComponent, masterKeys: masterKeys,
      into: live)
  }
}
