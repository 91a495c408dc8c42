import Foundation
import ReelCore
import ReelStore

/// What `reel volume promote` did.
package struct PromoteReport: Sendable, Equatable {
  package var volume: String
  package var origin: String
  package var originSeq: Seq
  package var promotion: ClonePromotion
}

extension Clones {
  /// Makes clone `name` independent of its origin: what it still reads from the origin is
  /// written into its own history at the clone point (chunks shared where they can be), and
  /// the link is removed in the same transaction. Works while the clone is served. The
  /// origin may then be pruned or deleted.
  package static func promote(live: LiveStore, volume name: String) throws -> PromoteReport {
    let descriptor = try live.store.layout.descriptor(of: name)
    guard let link = try live.origin(of: descriptor) else {
      throw ReelError(
        .usage, "volume \(name) is not a clone: it reads nothing from another volume",
        remedy: "`reel volume list` shows which volumes are clones")
    }
    try live.ingest(volume: name)
    let promotion = try live.promote(descriptor)
    let originName = live.store.volumesByID()[link.originVolumeID]?.name ?? link.originVolumeID
    return PromoteReport(volume: name, origin: originName, originSeq: link.originSeq, promotion: promotion)
  }
}
