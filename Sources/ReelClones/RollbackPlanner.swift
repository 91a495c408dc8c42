import ReelCore
import ReelJournal
import ReelStore

/// Works out a rollback: which extents of a volume go back to which seq. Every store block
/// with a version after the target (and up to the journal's last record, ingested first)
/// is covered, so the plan's size and the work it causes follow what changed since the
/// target, not the volume's size.
package enum RollbackPlanner {
  /// Catches the store up with the journal through `through`, resolves `point` against
  /// that history and lists the changed blocks as store-block-aligned extents.
  package static func plan(live: LiveStore, volume name: String, to point: String, through: Seq) throws
    -> RollbackPlan
  {
    let parsed = try Point.parse(point)
    try live.ingest(volume: name, upTo: through)
    let view = try VolumeView(live: live, volume: name, at: parsed.point)
    let descriptor = view.descriptor
    let target = view.resolved.seq
    guard target <= through else {
      throw ReelError(
        .usage, "\(parsed.point) is seq \(target) of \(name), after its last record (seq \(through))",
        remedy: "choose a point in `reel timeline \(name)`")
    }
    let blocks = try live.changedBlocks(of: descriptor, after: target, through: through)
    let extents = extents(of: blocks, blockSize: UInt64(descriptor.storeBlockSize), volumeSize: descriptor.size)
    guard extents.count <= RollbackPayload.maxExtents else {
      throw ReelError(
        .usage,
        "rolling \(name) back to \(parsed.point) touches \(extents.count) separate extents, more than one journal record holds (\(RollbackPayload.maxExtents))",
        remedy: "restore the volume instead: reel restore \(name) --at \(point) --output FILE")
    }
    return RollbackPlan(
      payload: RollbackPayload(targetSeq: target, extents: extents), targetTime: view.resolved.time,
      target: parsed.point.description)
  }

  /// Runs of consecutive blocks as byte extents; the last block may end at the volume's end.
  static func extents(of blocks: [UInt64], blockSize: UInt64, volumeSize: UInt64) -> [RollbackPayload.Extent] {
    var extents: [RollbackPayload.Extent] = []
    for block in blocks {
      let start = block * blockSize
      let end = min(start + blockSize, volumeSize)
      guard start < end else { continue }
      if let last = extents.last, last.end == start {
        extents[extents.count - 1].length += end - start
      } else {
        extents.append(RollbackPayload.Extent(offset: start, length: end - start))
      }
    }
    return extents
  }
}
