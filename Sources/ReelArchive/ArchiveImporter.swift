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
  package static func importArchive(
    source: any ArchiveByteSource, label: String, masterKeys: [SymmetricKey], into live: LiveStore,
    verifyContent: Bool = true, expecting: ((ArchiveManifest) throws -> Void)? = nil
  ) throws -> ArchiveImportReport {
    // Frames are authenticated one by one, so a member whose every frame passes is what
    // was sealed; hashing it again would only prove SHA256SUMS, which rehydration does not
    // rely on.
    let scanner = try ArchiveScanner(
      source: source, label: label, masterKeys: masterKeys, checkContent: verifyContent, storeRecords: true,
      hashAuthenticatedMembers: false, store: live.store.layout)
    try scanner.readHead()
    guard let manifest = scanner.manifest, let index = scanner.index else {
      throw ReelError(.wrongKey, "\(label): a key is needed to import", remedy: "give --key")
    }
    // The manifest is authenticated now (manifest.hmac checked with the key): the caller
    // compares it with what the media claimed before anything is written.
    try expecting?(manifest)
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
      descriptor, fromSeq: manifest.range.fromSeq, throughSeq: manifest.range.untilSeq,
      startsChain: manifest.contents.base, expectedChunkBytes: manifest.contents.chunkBytes
    ) { window in
      try window.preload(Array(scanner.indexLocations.keys))
      // The scanner has checked each record's CRC-32C (and with verifyContent its content
      // hash) already; records of version 2 archives arrive re-encoded as the store keeps them.
      try scanner.readBody { key, record in
        try Interrupt.check()
        try window.addChunkRecord(record, key: key, verified: true)
      }
      let result = scanner.result()
      guard result.problems.isEmpty else {
        throw ReelError(
          .corrupt, "\(label): \(result.problems.map(\.description).joined(separator: "; "))",
          remedy: "nothing from this archive was imported; use another copy of it")
      }
      verification = result
      window.add(try index.versions())
      window.add(try index.records())
      window.add(try index.bookmarks())
      window.add(try index.rollbacks())
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
