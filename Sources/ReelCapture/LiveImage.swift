import Foundation
import ReelCore
import ReelIO
import ReelJournal

/// What `live.state` says about `live.img`. The journal is the truth; the image is a copy
/// derived from it, and this file says how far the copy is known to be good.
struct LiveImageState: Codable, Equatable, Sendable {
  static let formatVersion = 1

  var formatVersion = LiveImageState.formatVersion
  /// Every journal record up to this seq is in the image and the image was synced after.
  var appliedSeq: Seq
  /// The kernel boot the state was written in: within one boot the page cache outlives a
  /// killed process, across boots it does not.
  var bootID: String
  /// True only after a clean shutdown: nothing was written after `appliedSeq`.
  var clean: Bool
}

/// How the live image was brought in line with the journal when serving started.
package enum LiveImageRecovery: Sendable, Equatable, CustomStringConvertible {
  /// Nothing was missing.
  case upToDate(seq: Seq)
  /// Records after the last checkpoint were applied again (same boot, process stopped).
  case replayed(fromSeq: Seq, toSeq: Seq, records: Int)
  /// The image was rebuilt from the base (or zeros) and the whole journal, or from the
  /// live store as of `storeSeq` (the journal begins after it) and the journal from there.
  case rebuilt(reason: String, records: Int, storeSeq: Seq? = nil)

  package var description: String {
    switch self {
    case .upToDate(let seq): "live image up to date at seq \(seq)"
    case .replayed(let from, let to, let records):
      "replayed \(records) journal records (seq \(from)…\(to)) into the live image"
    case .rebuilt(let reason, let records, nil):
      "rebuilt the live image from \(records) journal records (\(reason))"
    case .rebuilt(let reason, let records, let storeSeq?):
      "rebuilt the live image from the live store as of seq \(storeSeq) and \(records) journal records after it (\(reason))"
    }
  }
}

/// The volume's current contents as a plain file of exactly the volume's size, which NBD
/// reads are served from. Writes reach it only after they are in the journal.
final class LiveImage: Sendable {
  let path: String
  let statePath: String
  let size: UInt64
  let file: PosixFile

  private init(path: String, statePath: String, size: UInt64, file: PosixFile) {
    self.path = path
    self.statePath = statePath
    self.size = size
    self.file = file
  }

  /// Opens the live image of `descriptor`'s volume and makes it match the journal up to
  /// `lastSeq` (see docs/capture.md, "Live image after a crash"), then records it as in
  /// use (not clean) so a crash from here on is noticed at the next start.
  static func open(
    layout: StoreLayout, descriptor: VolumeDescriptor, journalLastSeq lastSeq: Seq,
    rebuildBase: (@Sendable (VolumeDescriptor, Seq) throws -> any VolumeSource)? = nil
  ) throws -> (LiveImage, LiveImageRecovery) {
    let name = descriptor.name
    let path = layout.liveImagePath(name)
    let statePath = layout.volumeDirectory(name) + "/live.state"
    let bootID = currentBootID()
    let state = readState(statePath)
    let imageSize = try? PosixFile.openForReading(path).size()

    // The oldest record the journal still has: segments older than it were pruned.
    let journalFirstSeq =
      (try? JournalReader(directory: layout.journalDirectory(name), volume: descriptor.id))?.segments.first?.header
      .firstSeq ?? 1

    var rebuildReason: String?
    if imageSize != descriptor.size {
      rebuildReason =
        imageSize == nil ? "live.img is missing" : "live.img has \(imageSize!) bytes, the volume \(descriptor.size)"
    } else if let state {
      if state.appliedSeq > lastSeq {
        rebuildReason = "live.state is at seq \(state.appliedSeq), ahead of the journal's last seq \(lastSeq)"
      } else if !state.clean && state.bootID != bootID {
        rebuildReason =
          "the machine restarted after an unclean stop, so image pages may be lost or ahead of the journal"
      } else if state.appliedSeq + 1 < journalFirstSeq {
        // The image lagged behind records that were sealed and pruned since: replaying
        // what is left would skip them.
        rebuildReason =
          "live.state is at seq \(state.appliedSeq) but the journal now begins at seq \(journalFirstSeq) (older segments were pruned)"
      }
    } else if lastSeq > 0 {
      rebuildReason = "live.state is missing or unreadable"
    }

    let recovery: LiveImageRecovery
    let file: PosixFile
    if let rebuildReason {
      let rebuilt = try rebuild(layout: layout, descriptor: descriptor, into: path, base: rebuildBase)
      file = try PosixFile(path: path, flags: O_RDWR)
      recovery = .rebuilt(reason: rebuildReason, records: rebuilt.records, storeSeq: rebuilt.storeSeq)
    } else {
      file = try PosixFile(path: path, flags: O_RDWR)
      let from = (state?.appliedSeq ?? 0) + 1
      if from <= lastSeq {
        let records = try replay(
          layout: layout, descriptor: descriptor, fromSeq: from, into: file, path: path, base: rebuildBase)
        recovery = .replayed(fromSeq: from, toSeq: lastSeq, records: records)
      } else {
        recovery = .upToDate(seq: lastSeq)
      }
    }
    let image = LiveImage(path: path, statePath: statePath, size: descriptor.size, file: file)
    try image.checkpoint(appliedSeq: lastSeq, clean: false)
    return (image, recovery)
  }

  /// Makes the range read as zeros (TRIM and WRITE_ZEROES alike).
  func zero(offset: UInt64, length: UInt64) throws {
    try file.punchHole(offset: offset, length: length)
  }

  func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
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
  /// journal (see docs/capture.md).
  func checkpoint(appliedSeq: Seq, clean: Bool) throws {
    if clean { try file.syncData() }
    let state = LiveImageState(appliedSeq: appliedSeq, bootID: Self.currentBootID(), clean: clean)
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    try Durable.replaceFile(at: statePath, with: Array(try encoder.encode(state)) + [10])
  }

  static func readState(_ path: String) -> LiveImageState? {
    guard let data = FileManager.default.contents(atPath: path),
      let state = try? JSONDecoder().decode(LiveImageState.self, from: data),
      state.formatVersion == LiveImageState.formatVersion
    else { return nil }
    return state
  }

  static func currentBootID() -> String {
    let text = (try? String(contentsOfFile: "/proc/sys/kernel/random/boot_id", encoding: .utf8)) ?? "unknown"
    return text.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  /// Applies one journal record to `file`; flushes and bookmarks change no data.
  /// `storeSource` gives the volume as of a seq from the live store (rollback records).
  static func apply(
    _ record: JournalRecord, to file: PosixFile, size: UInt64, path: String,
    storeSource: RollbackApplication.StoreSource? = nil
  ) throws {
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
        try record.payload.withUnsafeBytes { try file.write($0, at: record.offset) }
      } else {
        try file.punchHole(offset: record.offset, length: record.length)
      }
    case .flush, .bookmark:
      break
    case .rollback:
      try RollbackApplication.apply(record, to: file, size: size, storeSource: storeSource)
    }
  }

  private static func replay(
    layout: StoreLayout, descriptor: VolumeDescriptor, fromSeq: Seq, into file: PosixFile, path: String,
    base: (@Sendable (VolumeDescriptor, Seq) throws -> any VolumeSource)?
  ) throws -> Int {
    let storeSource = RollbackApplication.storeSource(descriptor, base)
    let reader = try JournalReader(directory: layout.journalDirectory(descriptor.name), volume: descriptor.id)
    var count = 0
    try reader.forEachRecord(fromSeq: fromSeq) { record in
      try apply(record, to: file, size: descriptor.size, path: path, storeSource: storeSource)
      count += 1
      return true
    }
    return count
  }

  /// Builds the image again from what is durable: the base (or zeros) and every journal
  /// record, in a temporary file renamed over the old image only once it is complete.
  /// When the journal's oldest segments were pruned, the starting point is the volume as
  /// of the seq before its first record, from `base` (the live store).
  private static func rebuild(
    layout: StoreLayout, descriptor: VolumeDescriptor, into path: String,
    base: (@Sendable (VolumeDescriptor, Seq) throws -> any VolumeSource)?
  ) throws -> (records: Int, storeSeq: Seq?) {
    let temporary = path + ".rebuild"
    unlink(temporary)
    do {
      let file = try PosixFile(path: temporary, flags: O_RDWR | O_CREAT | O_TRUNC)
      let journal = try JournalReader(directory: layout.journalDirectory(descriptor.name), volume: descriptor.id)
      let firstSeq = journal.segments.first?.header.firstSeq ?? 1
      if firstSeq > 1 {
        guard let base else {
          throw ReelError(
            .notFound,
            "the journal of \(descriptor.name) begins at seq \(firstSeq) (older segments were pruned once sealed); the live image cannot be rebuilt from the journal alone",
            remedy:
              "serve it with `reel serve`, which starts from the live store, or restore it: reel restore \(descriptor.name) --at latest --output FILE"
          )
        }
        let source = try base(descriptor, firstSeq - 1)
        try file.truncate(to: descriptor.size)
        var offset: UInt64 = 0
        while offset < descriptor.size {
          let length = Int(min(UInt64(4 << 20), descriptor.size - offset))
          let bytes = try source.read(offset: offset, length: length)
          if bytes.contains(where: { $0 != 0 }) { try file.write(bytes, at: offset) }
          offset += UInt64(length)
        }
        let records = try replay(
          layout: layout, descriptor: descriptor, fromSeq: firstSeq, into: file, path: temporary, base: base)
        try file.sync()
        try Durable.rename(temporary, to: path)
        return (records, firstSeq - 1)
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
      let records = try replay(
        layout: layout, descriptor: descriptor, fromSeq: 1, into: file, path: temporary, base: base)
      try file.sync()
      try Durable.rename(temporary, to: path)
      return (records, nil)
    } catch {
      unlink(temporary)
      throw error
    }
  }
}
