import Foundation
import ReelCore
import ReelStore

/// What an archive says about its volume's history beyond its own records (format
/// version 3, docs/archive-format.md): the origin a clone reads through for every block it
/// has not written, and the rollbacks in the window. An archive without either is written
/// in the pack layout's own version, readable by Reels that predate clones.
struct ArchiveLineage {
  var origin: ArchiveManifest.Origin?
  var rollbacks: [RollbackEvent]

  var isNeeded: Bool { origin != nil || !rollbacks.isEmpty }

  init(live: LiveStore, descriptor: VolumeDescriptor, fromSeq: Seq, untilSeq: Seq) throws {
    origin = try live.archiveOrigin(of: descriptor)
    rollbacks = try live.rollbacks(of: descriptor, after: fromSeq, through: untilSeq)
  }

  func formatVersion(packLayout: Int) -> Int { isNeeded ? ArchiveManifest.lineageVersion : packLayout }

  /// The index's `info` rows that name the origin.
  var indexInfo: [String: String] {
    guard let origin else { return [:] }
    return [
      "origin_volume_id": origin.volumeID, "origin_volume_name": origin.volumeName,
      "origin_seq": String(origin.seq), "origin_time": origin.time,
    ]
  }

  /// Makes `manifest` (written for its pack layout) a version 3 manifest when lineage is needed.
  func describe(in manifest: inout ArchiveManifest) {
    guard isNeeded else { return }
    manifest.packLayout = manifest.formatVersion
    manifest.formatVersion = ArchiveManifest.lineageVersion
    manifest.origin = origin
    manifest.rollbacks = rollbacks.map(ArchiveManifest.Rollback.init)
  }
}

extension LiveStore {
  /// A clone's origin as its archives name it: volume ID, the name and the time of the
  /// clone point as they are now; nil for a volume that is no clone.
  package func archiveOrigin(of descriptor: VolumeDescriptor) throws -> ArchiveManifest.Origin? {
    guard let link = try origin(of: descriptor) else { return nil }
    guard let origin = store.volumesByID()[link.originVolumeID] else {
      throw ReelError(
        .corrupt,
        "volume \(descriptor.name) is a clone of volume id \(link.originVolumeID), which this store no longer has",
        remedy: "run `reel store check`")
    }
    // A store pruned before clone points kept their time knows the clone's creation,
    // the instant the clone read the origin at that seq.
    let time = (try? time(of: link.originSeq, in: origin)) ?? descriptor.created
    return ArchiveManifest.Origin(
      volumeID: link.originVolumeID, volumeName: origin.name, seq: link.originSeq, time: time.rfc3339)
  }

  /// Whether the store can read volume `volumeID` as of `seq`: the volume exists and its
  /// ingested, retained history covers that seq. What importing a clone's first archive
  /// needs of its origin.
  package func holdsHistory(ofVolumeID volumeID: String, at seq: Seq) throws -> Bool {
    guard let volume = store.volumesByID()[volumeID] else { return false }
    let bounds = try historyBounds(of: volume)
    return bounds.retainedFrom <= seq && seq <= bounds.ingested
  }
}
