import Foundation
import ReelCore
import ReelObjectStore
import ReelStore

/// An archive object `reel media expire` removes, or would remove.
package struct ExpiringArchive: Sendable, Equatable {
  package var archiveID: String
  package var fileName: String
  package var file: Int
  /// The object's key; nil when an earlier expire deleted it and stopped before the catalog.
  package var key: String?
  package var size: UInt64
  /// Verified copies of the archive the store knows elsewhere (other media, other files).
  package var otherCopies: Int
}

/// `reel media expire`: the one path that deletes archive objects. The store stops
/// counting the copy first, then the object goes, then the bucket's catalog forgets it, so a
/// kill anywhere never leaves a counted copy that is not there, and running it again finishes.
extension ObjectStoreBucket {
  /// The archive `file` or `archiveID` names on this bucket, refused when it is retained.
  package func expiring(file: Int?, archiveID: String?, store: Catalog?) throws -> ExpiringArchive {
    let catalog = try readCatalog()
    guard
      let entry = catalog.files.first(where: {
        $0.kind == .archive && ($0.file == file || (archiveID != nil && $0.archive?.archiveID == archiveID))
      }), let summary = entry.archive
    else {
      throw ReelError(
        .notFound,
        "\(address) holds no archive \(file.map { "numbered \($0)" } ?? archiveID ?? "") in its catalog; nothing was deleted",
        remedy: "`reel media catalog \(address)` lists what it holds (FILE and ARCHIVE columns)")
    }
    let object = try archiveObjects().first { $0.file == entry.file }
    if let object, let info = try client.head(bucket: bucket, key: object.key),
      let text = info.metadata["reel-retain-until"], let until = Timestamp(rfc3339: text), until > .now()
    {
      throw ReelError(
        .usage,
        "\(summary.fileName) (\(address) file \(entry.file)) is retained under Object Lock until \(until.rfc3339); nothing was deleted",
        remedy: "it can be expired after that date")
    }
    let copies = try store?.archiveCopies(archiveID: summary.archiveID) ?? []
    return ExpiringArchive(
      archiveID: summary.archiveID, fileName: summary.fileName, file: entry.file, key: object?.key,
      size: object?.size ?? entry.size ?? 0,
      otherCopies: copies.filter { !($0.cartridgeID == catalog.cartridge.id && $0.tapeFile == entry.file) }.count)
  }

  /// Deletes the archive object and forgets it in the store and the bucket's catalog.
  package func expire(_ archive: ExpiringArchive, store: Catalog?) throws {
    var catalog = try readCatalog()
    try store?.forgetCopy(archiveID: archive.archiveID, cartridgeID: catalog.cartridge.id, tapeFile: archive.file)
    if let key = archive.key {
      do {
        try client.delete(bucket: bucket, key: key)
      } catch let error as ReelError {
        throw ReelError(
          error.kind,
          "\(address): the object store refused to delete \(key): \(error.message); the store no longer counts this copy, the bucket's catalog still lists it",
          remedy:
            "an object under Object Lock retention cannot be deleted before its date; otherwise fix the cause and run the same expire again"
        )
      }
      if try client.head(bucket: bucket, key: key) != nil {
        throw ReelError(
          .io, "\(address): \(key) is still there after DELETE (Object Lock retention?)",
          remedy: "it can be expired after its retention date; the store no longer counts this copy")
      }
    }
    catalog.files.removeAll { $0.file == archive.file && $0.kind == .archive }
    let earlier = try setCatalogs()
    catalog.updateSet(earlier: earlier)
    try writeCatalog(&catalog)
    try store?.recordCartridge(
      CartridgeRecord(
        cartridgeID: catalog.cartridge.id, label: catalog.cartridge.label, mediaSet: catalog.mediaSet?.name,
        mediaSetID: catalog.mediaSet?.id, sequence: catalog.cartridge.sequence, address: address,
        closed: catalog.closed, catalogJSON: String(decoding: try catalog.json(), as: UTF8.self), updated: .now()))
  }
}
