import Foundation
import ReelCore
import ReelStore

/// A volume's place among clones: what it was cloned from and what was cloned from it.
package struct VolumeRelations: Sendable, Equatable {
  package struct Link: Sendable, Equatable {
    /// The other volume's name (its id when its folder is gone).
    package var volume: String
    package var volumeID: String
    /// The clone point, a seq of the origin.
    package var seq: Seq
    /// When the clone was made (its creation instant reads as the origin at `seq`).
    package var created: Timestamp
  }

  package var origin: Link?
  package var clones: [Link] = []
}

extension Clones {
  package static func relations(live: LiveStore, of descriptor: VolumeDescriptor) throws -> VolumeRelations {
    let byID = live.store.volumesByID()
    var relations = VolumeRelations()
    if let link = try live.origin(of: descriptor) {
      relations.origin = VolumeRelations.Link(
        volume: byID[link.originVolumeID]?.name ?? link.originVolumeID, volumeID: link.originVolumeID,
        seq: link.originSeq, created: link.created)
    }
    relations.clones = try live.clones(of: descriptor).map {
      VolumeRelations.Link(
        volume: $0.clone.name, volumeID: $0.clone.id.description, seq: $0.origin.originSeq, created: $0.origin.created)
    }
    return relations
  }
}
