import Foundation
import ReelCore
import ReelIO

/// What a lazy live image lacks and where it reads it from: the volume as of `seq` in the
/// live store. A region (one store block) is filled once the image holds its bytes; until
/// then the image's bytes there mean nothing and reads take the store's.
///
/// A filled region holds the store's bytes as of `seq` with every journal record applied
/// to it since, in order; so a record that changes only part of an unfilled region first
/// copies the region from the store. Changes are serialised by the caller (the applier,
/// or the replay at start), reads run alongside them: a region's bit is set only after its
/// bytes are in the image, and a reader that saw it unset reads the store's bytes, which
/// are the region's bytes apart from records still in the pending map.
final class LazyBacking: Sendable {
  let seq: Seq
  /// Names this lazy image in `live.state` and `live.filled`, so a bitmap of an earlier
  /// image is never taken for this one's.
  let generation: UUID
  let source: any VolumeSource
  private let regions: Locked<FilledRegions>
  /// How many regions were filled when `live.filled` was last written.
  private let persistedCount: Locked<Int>

  var regionSize: UInt64 { regions.withLock { $0.regionSize } }

  init(seq: Seq, generation: UUID, source: any VolumeSource, regions: FilledRegions) {
    self.seq = seq
    self.generation = generation
    self.source = source
    self.regions = Locked(regions)
    persistedCount = Locked(regions.filledCount)
  }

  func snapshot() -> FilledRegions { regions.withLock { $0 } }

  /// Whether each region of `range` is filled, read under one lock.
  func filled(_ range: ClosedRange<Int>) -> [Bool] {
    regions.withLock { regions in range.map { regions.contains($0) } }
  }

  /// Fills the regions that `offset..<end` changes only in part and that are not filled
  /// yet, from the store, so the change lands on the right bytes.
  func prepare(offset: UInt64, end: UInt64, size: UInt64, image: PosixFile) throws {
    let regionSize = self.regionSize
    let first = Int(offset / regionSize)
    let last = Int((end - 1) / regionSize)
    for region in Set([first, last]) {
      let start = UInt64(region) * regionSize
      let stop = min(start + regionSize, size)
      if offset <= start && end >= stop { continue }
      if regions.withLock({ $0.contains(region) }) { continue }
      let bytes = try source.read(offset: start, length: Int(stop - start))
      if bytes.allSatisfy({ $0 == 0 }) {
        try image.punchHole(offset: start, length: stop - start)
      } else {
        try image.write(bytes, at: start)
      }
    }
  }

  /// Marks every region `offset..<end` touches as filled: `prepare` filled the partly
  /// changed ones, the change itself wrote the others whole.
  func markFilled(offset: UInt64, end: UInt64) {
    let regionSize = self.regionSize
    regions.withLock { regions in
      for region in Int(offset / regionSize)...Int((end - 1) / regionSize) { regions.insert(region) }
    }
  }

  /// Writes `live.filled` when regions were filled since it was last written. Bits only
  /// grow, so a bitmap newer than `live.state` is still right for it (see docs/capture.md).
  func persist(to path: String) throws {
    let regions = snapshot()
    guard persistedCount.withLock({ $0 }) != regions.filledCount || !FileManager.default.fileExists(atPath: path)
    else { return }
    try Durable.replaceFile(
      at: path, with: FilledRegionsFile.encode(regions, generation: generation, backingSeq: seq))
    persistedCount.withLock { $0 = regions.filledCount }
  }
}
