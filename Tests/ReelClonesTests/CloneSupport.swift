import Foundation
import ReelClones
import ReelCore
import ReelIO
import ReelJournal
import ReelStore
import ReelTestSupport

/// A clone made in a fixture's store, with its own journal writer and a model of its bytes.
final class ClonedVolume {
  let live: LiveStore
  let name: String
  let descriptor: VolumeDescriptor
  let report: CloneReport
  var model: [UInt8]
  var snapshots: [Seq: [UInt8]] = [:]
  private var writer: JournalWriter?
  var rng: SplitMix

  init(live: LiveStore, origin: String, at point: Point, as name: String, model: [UInt8], seed: UInt64) throws {
    self.live = live
    self.name = name
    report = try Clones.create(live: live, origin: origin, at: point, as: name)
    descriptor = try live.store.layout.descriptor(of: name)
    self.model = model
    snapshots[report.originSeq] = model
    rng = SplitMix(seed: seed)
  }

  @discardableResult
  func append(_ entry: JournalEntry) throws -> Seq {
    if writer == nil {
      writer = try JournalWriter.open(directory: live.store.layout.journalDirectory(name), volume: descriptor.id).0
    }
    let seq = try writer!.append(entry).seq
    let start = Int(entry.offset)
    let end = start + Int(entry.length)
    switch entry.kind {
    case .write: model.replaceSubrange(start..<end, with: entry.payload)
    case .trim, .writeZeroes: model.replaceSubrange(start..<end, with: repeatElement(0, count: end - start))
    default: break
    }
    return seq
  }

  func close() throws {
    try writer?.close()
    writer = nil
  }

  /// Small writes on a few hot blocks (partial versions over the origin's chains, and
  /// consolidation across the clone point) and larger writes anywhere.
  func randomChange() throws {
    let sectors = model.count / 512
    let small = rng.next() % 2 == 0
    let hot = Int(rng.next() % 4) * Int(descriptor.storeBlockSize / 512) % sectors
    let first = small ? min(sectors - 1, hot + Int(rng.next() % 32)) : Int(rng.next() % UInt64(sectors))
    let count = min(sectors - first, small ? 1 + Int(rng.next() % 4) : 1 + Int(rng.next() % 300))
    let offset = UInt64(first * 512)
    if rng.next() % 8 == 0 {
      try append(.trim(offset: offset, length: UInt64(count * 512)))
    } else {
      let fill = UInt8(truncatingIfNeeded: rng.next())
      try append(.write(offset: offset, data: (0..<(count * 512)).map { fill &+ UInt8(truncatingIfNeeded: $0 / 512) }))
    }
  }

  func image(at point: Point) throws -> [UInt8] {
    let view = try VolumeView(live: live, volume: name, at: point)
    return try view.read(offset: 0, length: Int(view.size))
  }
}
