import Foundation
import ReelCore
import ReelIO
import ReelJournal

/// What `live.state` says about `live.img`. The journal is the truth; the image is a copy
/// derived from it, and this file says how far the copy is known to be good. Format 1: a
/// whole image; format 2: a lazy one, which reads what it lacks from the live store.
struct LiveImageState: Codable, Equatable, Sendable {
  static let wholeFormatVersion = 1
  static let lazyFormatVersion = 2

  var formatVersion: Int
  /// Every journal record up to this seq is in the image and the image was synced after.
  var appliedSeq: Seq
  /// The kernel boot the state was written in: within one boot the page cache outlives a
  /// killed process, across boots it does not.
  var bootID: String
  /// True only after a clean shutdown: nothing was written after `appliedSeq`.
  var clean: Bool
  /// Set (format 2) while the image is lazy: regions not filled in `live.filled` read as
  /// the volume at `seq` in the live store.
  var backing: Backing?

  struct Backing: Codable, Equatable, Sendable {
    var seq: Seq
    var generation: UUID
  }

  init(appliedSeq: Seq, bootID: String, clean: Bool, backing: Backing? = nil) {
    formatVersion = backing == nil ? Self.wholeFormatVersion : Self.lazyFormatVersion
    self.appliedSeq = appliedSeq
    self.bootID = bootID
    self.clean = clean
    self.backing = backing
  }
}

/// How the live image was brought in line with the journal when serving started.
package enum LiveImageRecovery: Sendable, Equatable, CustomStringConvertible {
  /// Nothing was missing.
  case upToDate(seq: Seq)
  /// Records after the last checkpoint were applied again (same boot, process stopped).
  case replayed(fromSeq: Seq, toSeq: Seq, records: Int)
  /// The image was rebuilt from the base (or zeros) and the whole journal.
  case rebuilt(reason: String, records: Int)
  /// A fresh lazy image over the live store as of `storeSeq`, with the journal's records
  /// after it applied: nothing is copied until written (docs/capture.md, "Lazy live image").
  case rebuiltLazily(reason: String, records: Int, storeSeq: Seq)

  package var description: String {
    switch self {
    case .upToDate(let seq): "live image up to date at seq \(seq)"
    case .replayed(let from, let to, let records):
      "replayed \(records) journal records (seq \(from)…\(to)) into the live image"
    case .rebuilt(let reason, let records):
      "rebuilt the live image from \(records) journal records (\(reason))"
    case .rebuiltLazily(let reason, let records, let storeSeq):
      "rebuilt the live image lazily over the live store as of seq \(storeSeq), with \(records) journal records after it; unwritten regions read from the store (\(reason))"
    }
  }
}

/// The volume's current contents as a plain file of exactly the volume's size, which NBD
/// reads are served from. Writes reach it only after they are in the journal. A lazy image
/// (`backing` set) holds only the regions written since it was started; the rest read from
/// the live store.
final class LiveImage: Sendable {
  let path: String
  let statePath: String
  let filledPath: String
  let size: UInt64
  let file: PosixFile
  let backing: LazyBacking?

  private init(path: String, statePath: String, size: UInt64, file: PosixFile, backing: LazyBacking?) {
    self.path = path
    self.statePath = statePath
    filledPath = (statePath as NSString).deletingLastPathComponent + "/" + FilledRegionsFile.name
    self.size = size
    self.file = file
    self.backing = backing
  }

  /// Opens the live image of `descriptor`'s volume and makes it match the journal up to
  /// `lastSeq` (see docs/capture.md, "Live image after a crash"), then records it as in
  /// use (not clean) so a crash from here on is noticed at the next start.
  /// `rebuildBase` reads the volume from the live store as of a seq; `storeNewestSeq` says
  /// how far the store has ingested it. With them, a rebuild is a lazy image instead of a
  /// copy.
  static func open(
    layout: StoreLayout, descriptor: VolumeDescriptor, journalLastSeq lastSeq: Seq,
    rebuildBase: (@Sendable (VolumeDescriptor, Seq) throws -> any VolumeSource)? = nil,
    storeNewestSeq: (@Sendable (VolumeDescriptor) throws -> Seq)? = nil
  ) throws -> (LiveImage, LiveImageRecovery) {
    let name = descriptor.name
    let path = layout.liveImagePath(name)
    let statePath = layout.volumeDirectory(name) + "/live.state"
    let filledPath = layout.volumeDirectory(name) + "/" + FilledRegionsFile.name
    let bootID = currentBootID()
    let state = readState(statePath)
    let imageSize = try? PosixFile.openForReading(path).size()

    // The oldest record the journal still has: segments older than it were pruned.
    let journalFirstSeq =
      (try? JournalReader(directory: layout.journalDirectory(name), volume: descriptor.id))?.segments.first?.header
      .firstSeq ?? 1

    var rebuildReason: String?
    var regions: FilledRegions?
    if imageSize != descriptor.size {
      rebuildReason =
        imageSize == nil ? "live.img is missing" : "live.img has \(imageSize!) bytes, the volume \(descriptor.size)"
    } else if let state {
      if state.appliedSeq > lastSeq {
        rebuildReason = "live.state is at seq \(state.appliedSeq), ahead of the journal's last seq \(lastSeq)"
      } else if !state.clean && state.bootID != bootID {
        rebuildReason =
          "the machine restarted after an unclean stop, so image pages may be lost or ahead of the journal"
      } else if state.appliedSeq + 1 < journalFirstSeq && state.backing.map({ $0.seq + 1 < journalFirstSeq }) ?? true {
        // The image lagged behind records that were sealed and pruned since: replaying
        // what is left would skip them.
        rebuildReason =
          "live.state is at seq \(state.appliedSeq) but the journal now begins at seq \(journalFirstSeq) (older segments were pruned)"
      } else if let backing = state.backing {
        regions = FilledRegionsFile.read(
          filledPath, generation: backing.generation, backingSeq: backing.seq, volumeSize: descriptor.size,
          regionSize: UInt64(descriptor.storeBlockSize))
        if regions == nil { rebuildReason = "\(FilledRegionsFile.name) is missing or not the one live.state names" }
      }
    } else if lastSeq > 0 || journalFirstSeq > 1 {
      rebuildReason = "live.state is missing or unreadable"
    }

    let recovery: LiveImageRecovery
    let image: LiveImage
    if let rebuildReason {
      if let rebuildBase,
        let start = lazyStart(
          journalFirstSeq: journalFirstSeq, lastSeq: lastSeq, storeNewestSeq: try storeNewestSeq?(descriptor))
      {
        let rebuilt = try rebuildLazily(
          layout: layout, descriptor: descriptor, path: path, statePath: statePath, start: start, base: rebuildBase)
        image = rebuilt.image
        recovery = .rebuiltLazily(reason: rebuildReason, records: rebuilt.records, storeSeq: start)
      } else {
        let records = try rebuild(layout: layout, descriptor: descriptor, into: path, base: rebuildBase)
        image = LiveImage(
          path: path, statePath: statePath, size: descriptor.size, file: try PosixFile(path: path, flags: O_RDWR),
          backing: nil)
        recovery = .rebuilt(reason: rebuildReason, records: records)
      }
    } else {
      var backing: LazyBacking?
      if let lazy = state?.backing, let regions {
        guard let rebuildBase else {
          throw ReelError(
            .notFound,
            "the live image of \(name) is lazy: what it has not been written reads from the live store as of seq \(lazy.seq)",
            remedy: "serve it with `reel serve`, which reads the live store")
        }
        backing = LazyBacking(
          seq: lazy.seq, generation: lazy.generation, source: try rebuildBase(descriptor, lazy.seq), regions: regions)
      }
      image = LiveImage(
        path: path, statePath: statePath, size: descriptor.size, file: try PosixFile(path: path, flags: O_RDWR),
        backing: backing)
      let from = (state?.appliedSeq ?? 0) + 1
      if from <= lastSeq {
        let records = try image.replay(layout: layout, descriptor: descriptor, fromSeq: from, base: rebuildBase)
        recovery = .replayed(fromSeq: from, toSeq: lastSeq, records: records)
      } else {
        recovery = .upToDate(seq: lastSeq)
      }
    }
    try image.checkpoint(appliedSeq: lastSeq, clean: false)
    return (image, recovery)
  }

  /// The seq a lazy image starts from, or nil when the image is cheapest rebuilt from the
  /// journal alone (nothing ingested yet). The newest ingested seq when the store has one
  /// the journal continues from (fewest records to apply); else the seq before the
  /// journal's first record.
  private static func lazyStart(journalFirstSeq: Seq, lastSeq: Seq, storeNewestSeq: Seq?) -> Seq? {
    let floor = journalFirstSeq - 1
    if let newest = storeNewestSeq, newest >= floor, newest <= lastSeq, newest > 0 { return newest }
    return floor > 0 ? floor : nil
  }

  /// Writes `bytes` at `offset` (a replayed record).
  func write(_ bytes: UnsafeRawBufferPointer, at offset: UInt64) throws {
    try changing(offset: offset, length: UInt64(bytes.count)) { try file.write(bytes, at: offset) }
  }

  /// Copies a journaled payload into the image (the applier).
  func copy(from source: PosixFile, at sourceOffset: UInt64, count: Int, to offset: UInt64) throws {
    try changing(offset: offset, length: UInt64(count)) {
      try file.copy(from: source, at: sourceOffset, count: count, to: offset)
    }
  }

  /// Makes the range read as zeros (TRIM and WRITE_ZEROES alike).
  func zero(offset: UInt64, length: UInt64) throws {
    try changing(offset: offset, length: length) { try file.punchHole(offset: offset, length: length) }
  }

  /// Every change to the image goes through here, one at a time: in a lazy image, regions
  /// the change covers in part are filled from the store first, and every region it
  /// touches counts as filled once it is done.
  private func changing(offset: UInt64, length: UInt64, _ change: () throws -> Void) throws {
    guard length > 0 else { return }
    guard let backing else { return try change() }
    try backing.prepare(offset: offset, end: offset + length, size: size, image: file)
    try change()
    backing.markFilled(offset: offset, end: offset + length)
  }

  func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
    guard let backing, !buffer.isEmpty else { return try readFile(into: buffer, at: offset) }
    let regionSize = backing.regionSize
    let end = offset + UInt64(buffer.count)
    let first = Int(offset / regionSize)
    let filled = backing.filled(first...Int((end - 1) / regionSize))
    var index = 0
    while index < filled.count {
      var stop = index
      while stop + 1 < filled.count && filled[stop + 1] == filled[index] { stop += 1 }
      let from = max(offset, UInt64(first + index) * regionSize)
      let to = min(end, UInt64(first + stop + 1) * regionSize)
      let part = UnsafeMutableRawBufferPointer(rebasing: buffer[Int(from - offset)..<Int(to - offset)])
      if filled[index] {
        try readFile(into: part, at: from)
      } else {
        try backing.source.read(into: part, at: from)
      }
      index = stop + 1
    }
  }

  private func readFile(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
    let got = try file.read(into: buffer, at: offset)
    if got < buffer.count {
      // The image is exactly the volume's size; a short read means someone truncated it.
      throw ReelError(.io, "\(path): read at \(offset) returned \(got) of \(buffer.count) bytes")
    }
  }

  /// Records that the image holds every record up to `appliedSeq`. Only a clean
  /// checkpoint syncs the image: after an unclean stop the image is trusted only within
  /// the same boot, where the page cache outlived the process anyway; after a reboot it is
  /// rebuilt. Syncing it while clients write would only steal disk bandwidth from the
  /// journal (see docs/capture.md). A lazy image's bitmap is written first: it only
  /// grows, so a newer bitmap is right for an older state, never the other way round.
  /// Once every region is filled, the image is whole and the state says so.
  func checkpoint(appliedSeq: Seq, clean: Bool) throws {
    if clean { try file.syncData() }
    var lazy: LiveImageState.Backing?
    if let backing, !backing.snapshot().isComplete {
      try backing.persist(to: filledPath)
      lazy = LiveImageState.Backing(seq: backing.seq, generation: backing.generation)
    }
    let state = LiveImageState(appliedSeq: appliedSeq, bootID: Self.currentBootID(), clean: clean, backing: lazy)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try Durable.replaceFile(at: statePath, with: Array(try encoder.encode(state)) + [10])
    if lazy == nil { unlink(filledPath) }
  }

  static func readState(_ path: String) -> LiveImageState? {
    guard let data = FileManager.default.contents(atPath: path),
      let state = try? JSONDecoder().decode(LiveImageState.self, from: data)
    else { return nil }
    switch state.formatVersion {
    case LiveImageState.wholeFormatVersion: return state.backing == nil ? state : nil
    case LiveImageState.lazyFormatVersion: return state.backing == nil ? nil : state
    default: return nil
    }
  }

  static func currentBootID() -> String {
    let text = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? "unknown"
    return text.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  /// Applies one journal record; flushes and bookmarks change no data. `storeSource`
  /// gives the volume as of a seq from the live store (rollback records).
  func apply(_ record: JournalRecord, storeSource: RollbackApplication.StoreSource? = nil) throws {
    switch record.kind {
    case .write, .trim, .writeZeroes:
      let (end, overflow) = record.offset.addingReportingOverflow(record.length)
      guard !overflow, end <= size else {
        throw ReelError(
          .corrupt,
          "journal record seq \(record.seq) reaches byte \(record.offset)+\(record.length), past the volume's \(size) bytes",
          remedy: "check the journal with `reel journal verify`; the volume descriptor may not belong to it")
      }
      if record.kind == .write {
        try record.payload.withUnsafeBytes { try write($0, at: record.offset) }
      } else {
        try zero(offset: record.offset, length: record.length)
      }
    case .flush, .bookmark:
      break
    case .rollback:
      try RollbackApplication.apply(record, to: self, storeSource: storeSource)
    }
  }

  private func replay(
    layout: StoreLayout, descriptor: VolumeDescriptor, fromSeq: Seq,
    base: (@Sendable (VolumeDescriptor, Seq) throws -> any VolumeSource)?
  ) throws -> Int {
    let storeSource = RollbackApplication.storeSource(descriptor, base)
    let reader = try JournalReader(directory: layout.journalDirectory(descriptor.name), volume: descriptor.id)
    var count = 0
    try reader.forEachRecord(fromSeq: fromSeq) { record in
      try apply(record, storeSource: storeSource)
      count += 1
      return true
    }
    return count
  }

  /// A fresh lazy image: a sparse file, nothing filled, over the volume as of `start` in
  /// the live store, with the journal's records after `start` applied. The old
  /// `live.state` goes first (it may describe a whole image, which this is not), the
  /// bitmap is written before the image takes `live.img`'s name, and `open` writes the
  /// state that names both.
  private static func rebuildLazily(
    layout: StoreLayout, descriptor: VolumeDescriptor, path: String, statePath: String, start: Seq,
    base: @escaping @Sendable (VolumeDescriptor, Seq) throws -> any VolumeSource
  ) throws -> (image: LiveImage, records: Int) {
    let source = try base(descriptor, start)
    let temporary = path + ".rebuild"
    unlink(temporary)
    if unlink(statePath) == 0 { try Durable.syncDirectory(layout.volumeDirectory(descriptor.name)) }
    do {
      let file = try PosixFile(path: temporary, flags: O_RDWR | O_CREAT | O_TRUNC)
      try file.truncate(to: descriptor.size)
      let backing = LazyBacking(
        seq: start, generation: UUID(), source: source,
        regions: FilledRegions(volumeSize: descriptor.size, regionSize: UInt64(descriptor.storeBlockSize)))
      let image = LiveImage(path: path, statePath: statePath, size: descriptor.size, file: file, backing: backing)
      let records = try image.replay(layout: layout, descriptor: descriptor, fromSeq: start + 1, base: base)
      try file.sync()
      try backing.persist(to: image.filledPath)
      try Durable.rename(temporary, to: path)
      return (image, records)
    } catch {
      unlink(temporary)
      throw error
    }
  }

  /// Builds the image again from what is durable: the base (or zeros) and every journal
  /// record, in a temporary file renamed over the old image only once it is complete.
  /// A journal whose oldest segments were pruned needs the live store (a lazy image).
  private static func rebuild(
    layout: StoreLayout, descriptor: VolumeDescriptor, into path: String,
    base: (@Sendable (VolumeDescriptor, Seq) throws -> any VolumeSource)?
  ) throws -> Int {
    let temporary = path + ".rebuild"
    unlink(temporary)
    do {
      let file = try PosixFile(path: temporary, flags: O_RDWR | O_CREAT | O_TRUNC)
      let journal = try JournalReader(directory: layout.journalDirectory(descriptor.name), volume: descriptor.id)
      let firstSeq = journal.segments.first?.header.firstSeq ?? 1
      if firstSeq > 1 {
        throw ReelError(
          .notFound,
          "the journal of \(descriptor.name) begins at seq \(firstSeq) (a clone, a rehydrated volume, or older segments pruned once sealed); the live image cannot be rebuilt from the journal alone",
          remedy:
            "serve it with `reel serve`, which starts from the live store, or restore it: reel restore \(descriptor.name) --at latest --output FILE"
        )
      }
      if descriptor.hasBase {
        let basePath = layout.baseImagePath(descriptor.name)
        guard FileManager.default.fileExists(atPath: basePath) else {
          throw ReelError(
            .notFound, "\(basePath) is missing; the live image of \(descriptor.name) cannot be rebuilt without it",
            remedy: "put the volume's base image back (from a copy or archive)")
        }
        try PosixFile.openForReading(basePath).copySparse(to: [file], limit: descriptor.size)
      }
      try file.truncate(to: descriptor.size)
      let image = LiveImage(
        path: temporary, statePath: layout.volumeDirectory(descriptor.name) + "/live.state", size: descriptor.size,
        file: file, backing: nil)
      let records = try image.replay(layout: layout, descriptor: descriptor, fromSeq: 1, base: base)
      try file.sync()
      try Durable.rename(temporary, to: path)
      return records
    } catch {
      unlink(temporary)
      throw error
    }
  }
}
