import Foundation
import ReelCodec
import ReelCore
import ReelIO
import ReelStore

/// What a damaged archive still gives back when its parity cannot make it whole (or it has
/// none): every frame that authenticates. The chunks the authenticated index names but no
/// authentic frame delivered are lost; the first seq whose state needs one of them (the
/// archive's `fromSeq` when its starting state does) bounds what is whole, and the window
/// up to the seq before it can be imported (docs/rehydrate.md, "Beyond repair").
package struct ArchiveSalvage: Sendable {
  /// A stretch of a pack member whose frames held lost chunks: they failed their
  /// authentication tag, or could not be found for damage around them.
  package struct LostFrames: Sendable, Equatable {
    package var member: String
    package var offset: UInt64
    package var length: UInt64
  }

  /// Authenticated with the key (manifest.hmac), and compared with what the caller expected.
  package var manifest: ArchiveManifest
  /// The first seq whose state needs a lost chunk; the archive's `fromSeq` when its
  /// starting state does. Nil: every chunk the history needs authenticated.
  package var firstLostSeq: Seq?
  package var firstLostTime: Timestamp?
  /// The last seq whose state is whole; nil when not even the starting state is.
  package var wholeThrough: Seq?
  package var wholeThroughTime: Timestamp?
  package var lostChunks: Int
  package var lostFrames: [LostFrames]
  /// Everything the read found wrong (frames that failed, damaged headers, sums).
  package var problems: [ArchiveProblem]

  /// Something of the window (or, for a chain's first archive, its starting state) is whole.
  package var importable: Bool {
    guard let wholeThrough else { return false }
    return wholeThrough > manifest.range.fromSeq || manifest.contents.base
  }

  /// Reads a damaged archive with the key, tolerating damage: which frames authenticate,
  /// which chunks are lost, and up to which seq the history is whole. Throws when the
  /// manifest or the index cannot be authenticated (nothing of the archive can be trusted).
  package static func assess(
    source: any ArchiveByteSource, label: String, masterKeys: [SymmetricKey], store: StoreLayout?
  ) throws -> ArchiveSalvage {
    let scanner = try ArchiveScanner(
      source: source, label: label, masterKeys: masterKeys, checkContent: false, hashAuthenticatedMembers: false,
      store: store, salvaging: true)
    try scanner.readHead()
    guard let manifest = scanner.manifest, let index = scanner.index else {
      throw ReelError(.wrongKey, "\(label): a key is needed to salvage an archive", remedy: "give --key")
    }
    do {
      try scanner.readBody(onChunk: nil)
    } catch let error as ReelError where error.kind == .corrupt {
      // The tar structure after the damage: what authenticated before it still counts.
    }
    let lost = Set(scanner.indexLocations.keys).subtracting(scanner.foundChunks)
    let range = manifest.range
    let window = try index.versions(base: false)
    guard window.allSatisfy({ $0.seq > range.fromSeq && $0.seq <= range.untilSeq }) else {
      throw ReelError(
        .corrupt, "\(label): the index has block versions outside the archive's range; nothing of it can be salvaged",
        remedy: "use another copy of the archive")
    }
    let baseLost = try index.versions(base: true).contains { $0.chunk.map(lost.contains) == true }
    let firstLost: Seq? =
      baseLost ? range.fromSeq : window.filter { $0.chunk.map(lost.contains) == true }.map { $0.seq }.min()
    let records = try index.records()
    let fromTime = Timestamp(rfc3339: range.fromTime)
    var salvage = ArchiveSalvage(
      manifest: manifest, firstLostSeq: firstLost, firstLostTime: nil, wholeThrough: nil, wholeThroughTime: nil,
      lostChunks: lost.count, lostFrames: lostFrames(lost, locations: scanner.indexLocations),
      problems: scanner.result().problems)
    if let firstLost {
      salvage.firstLostTime = baseLost ? fromTime : records.first { $0.seq >= firstLost }?.time
      salvage.wholeThrough = baseLost ? nil : firstLost - 1
    } else {
      salvage.wholeThrough = range.untilSeq
    }
    if let through = salvage.wholeThrough {
      salvage.wholeThroughTime = records.last { $0.seq <= through }?.time ?? fromTime
    }
    return salvage
  }

  /// The frames that held lost chunks, adjacent ones joined.
  static func lostFrames(_ lost: Set<String>, locations: [String: ArchiveChunkLocation]) -> [LostFrames] {
    let frames = Set(
      lost.compactMap { key in
        locations[key].map { FrameKey(member: $0.member, offset: $0.frameOffset, length: $0.frameLength) }
      })
    var joined: [LostFrames] = []
    for frame in frames.sorted(by: { ($0.member, $0.offset) < ($1.member, $1.offset) }) {
      let name = ArchiveFormat.packName(frame.member)
      if var last = joined.last, last.member == name, last.offset + last.length == frame.offset {
        last.length += UInt64(frame.length)
        joined[joined.count - 1] = last
      } else {
        joined.append(LostFrames(member: name, offset: frame.offset, length: UInt64(frame.length)))
      }
    }
    return joined
  }

  private struct FrameKey: Hashable {
    var member: Int
    var offset: UInt64
    var length: Int
  }
}
