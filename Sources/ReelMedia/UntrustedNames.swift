import Foundation
import ReelArchive
import ReelCore

/// What media catalogs, labels and unauthenticated manifests say is written by whoever had
/// the medium last. Before a name from them reaches a path or a plan it must pass the rule
/// Reel itself names things by: volume names as `reel volume create` takes them, archive,
/// chain and volume IDs as lower-case UUIDs (docs/tape-format.md, "What media are trusted for").
package enum UntrustedNames {
  /// Throws a `.corrupt` error naming `what` when `id` is not a lower-case UUID.
  package static func requireUUID(_ id: String, _ field: String, in what: String) throws {
    guard id.utf8.count == 36, let uuid = UUID(uuidString: id), uuid.uuidString.lowercased() == id else {
      throw ReelError(
        .corrupt, "\(what): its \(field) \"\(id.prefix(80))\" is not a lower-case UUID",
        remedy: "the media's catalog was altered or damaged; it is not used")
    }
  }

  package static func requireVolumeName(_ name: String, in what: String) throws {
    do {
      try VolumeDescriptor.validate(name: name)
    } catch {
      throw ReelError(
        .corrupt, "\(what): the volume name \"\(name.prefix(80))\" is not one Reel gives a volume",
        remedy: "the media's catalog was altered or damaged; it is not used, and nothing is written under that name")
    }
  }
}

extension ArchiveSummary {
  /// Checks every field that becomes a file name, a folder or a position in a plan.
  package func validate(describing what: String) throws {
    try UntrustedNames.requireVolumeName(volume, in: what)
    try UntrustedNames.requireUUID(archiveID, "archive ID", in: what)
    try UntrustedNames.requireUUID(chainID, "chain ID", in: what)
    try UntrustedNames.requireUUID(volumeID, "volume ID", in: what)
    if let parentID { try UntrustedNames.requireUUID(parentID, "parent ID", in: what) }
    if let origin {
      try UntrustedNames.requireUUID(origin.volumeID, "origin volume ID", in: what)
      try UntrustedNames.requireVolumeName(origin.volumeName, in: what)
      guard origin.seq <= fromSeq, origin.volumeID != volumeID else {
        throw ReelError(
          .corrupt,
          "\(what): its origin (volume \(origin.volumeID) at seq \(origin.seq)) is not a clone point for volume \(volumeID) and a window starting after seq \(fromSeq)",
          remedy: "the media's catalog was altered or damaged; it is not used")
      }
    }
    guard chainIndex >= 0, chainIndex < 1 << 40, fromSeq <= untilSeq,
      (chainIndex == 0) == (parentID == nil)
    else {
      throw ReelError(
        .corrupt,
        "\(what): chain position \(chainIndex) with seq window \(fromSeq)…\(untilSeq) and \(parentID == nil ? "no parent" : "a parent") is not a place in a chain",
        remedy: "the media's catalog was altered or damaged; it is not used")
    }
  }

  /// The name an archive copied into the store gets: its ID alone, so nothing a catalog
  /// says can steer where the file goes.
  var setAsideFileName: String { archiveID + ArchiveFormat.fileSuffix }
}
