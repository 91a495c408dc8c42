import Foundation
import ReelCore
import ReelIO
import ReelJournal

/// One volume while `reel serve` has it: its journal writer, its live image, and the rules
/// that tie them together. Every connection and the control socket share this object.
final class ServedVolume: Sendable {
  let descriptor: VolumeDescriptor
  let journal: JournalWriter
  let image: LiveImage
  /// Keeps `image` up to date behind the journal and serves reads of what it lacks.
  let applier: ImageApplier
  let recovery: LiveImageRecovery
  let readOnly: Bool
  let controlSocketPath: String
  private let checkpointBytes: UInt64
  private let checkpointInterval: Duration

  private struct Progress {
    var bytesSinceCheckpoint: UInt64 = 0
    var lastCheckpoint = ContinuousClock.now
    var lastChange: ContinuousClock.Instant?
  }
  private let progress = Locked(Progress())
  let checkpointing = NSLock()
  /// Bookmarks are appended under this lock, so a label is checked and taken at once.
  private let bookmarkLabels: Locked<Set<String>>

  var name: String { descriptor.name }

  private init(
    descriptor: VolumeDescriptor, journal: JournalWriter, image: LiveImage, recovery: LiveImageRecovery,
    readOnly: Bool, controlSocketPath: String, bookmarkLabels: Set<String>, checkpointBytes: UInt64,
    checkpointInterval: Duration, liveImage: LiveImageOptions, log: @escaping @Sendable (String) -> Void
  ) {
    self.descriptor = descriptor
    self.journal = journal
    self.image = image
    applier = ImageApplier(
      image: image, appliedThrough: journal.lastAppendedSeq, options: liveImage,
      report: { log("volume \(descriptor.name): \($0)") })
    self.recovery = recovery
    self.readOnly = readOnly
    self.controlSocketPath = controlSocketPath
    self.bookmarkLabels = Locked(bookmarkLabels)
    self.checkpointBytes = checkpointBytes
    self.checkpointInterval = checkpointInterval
    applier.start(name: descriptor.name)
  }

  /// Opens the journal (taking its writer lock, recovering a torn tail) and brings the live
  /// image in line with it.
  static func open(
    name: String, layout: StoreLayout, readOnly: Bool = false, checkpointBytes: UInt64, checkpointInterval: Duration,
    liveImage: LiveImageOptions = LiveImageOptions(),
    rebuildBase: (@Sendable (VolumeDescriptor, Seq) throws -> any VolumeSource)? = nil,
    storeNewestSeq: (@Sendable (VolumeDescriptor) throws -> Seq)? = nil,
    log: @escaping @Sendable (String) -> Void = { _ in }
  ) throws -> ServedVolume {
    let descriptor = try layout.descriptor(of: name)
    let directory = layout.journalDirectory(name)
    let (journal, _) = try JournalWriter.open(directory: directory, volume: descriptor.id)
    do {
      let labels = try JournalReader(directory: directory, volume: descriptor.id).summarize().bookmarks.map(\.label)
      let (image, recovery) = try LiveImage.open(
        layout: layout, descriptor: descriptor, journalLastSeq: journal.lastAppendedSeq, rebuildBase: rebuildBase,
        storeNewestSeq: storeNewestSeq)
      return ServedVolume(
        descriptor: descriptor, journal: journal, image: image, recovery: recovery, readOnly: readOnly,
        controlSocketPath: layout.volumeDirectory(name) + "/" + ControlProtocol.socketName,
        bookmarkLabels: Set(labels), checkpointBytes: checkpointBytes, checkpointInterval: checkpointInterval,
        liveImage: liveImage, log: log)
    } catch {
      try? journal.close()
      throw error
    }
  }

  /// Journals a write; the image gets it later, and reads see it at once. With `fua`,
  /// returns only once the record is on stable storage.
  func write(_ data: UnsafeRawBufferPointer, at offset: UInt64, fua: Bool) throws {
    try applier.waitForRoom()
    try journal.appendWrite(offset: offset, data: data, flags: fua ? .forceUnitAccess : []) { appended, placement in
      applier.enqueue(.write, offset: offset, length: UInt64(data.count), as: appended, at: placement)
    }
    try finish(changed: UInt64(data.count), fua: fua)
  }

  /// Journals a TRIM or WRITE_ZEROES; the range reads as zeros at once, and is punched out
  /// of the image later.
  func zero(offset: UInt64, length: UInt64, trim: Bool, fua: Bool) throws {
    var entry: JournalEntry =
      trim ? .trim(offset: offset, length: length) : .writeZeroes(offset: offset, length: length)
    if fua { entry.flags.insert(.forceUnitAccess) }
    try record(entry)
    try finish(changed: length, fua: fua)
  }

  /// NBD FLUSH: a flush record, then everything before it made durable.
  func flush() throws {
    try record(.flush)
    try journal.sync()
  }

  func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
    try applier.read(into: buffer, at: offset)
  }

  /// Appends a crash-consistent bookmark: a flush record made durable, then the bookmark
  /// record made durable, so everything acknowledged before the call is inside it.
  func bookmark(_ label: String) throws -> AppendedRecord {
    try Bookmarks.validate(label: label)
    return try bookmarkLabels.withLock { labels in
      guard !labels.contains(label) else { throw Bookmarks.duplicate(label, volume: name) }
      try record(.flush)
      try journal.sync()
      let appended = try record(.bookmark(label))
      try journal.sync()
      labels.insert(label)
      return appended
    }
  }

  /// Checkpoints when enough was written or enough time passed since the last one, so a
  /// restart after a crash replays a bounded part of the journal.
  func checkpointIfDue() throws {
    let due = progress.withLock { progress in
      progress.bytesSinceCheckpoint >= checkpointBytes
        || (progress.bytesSinceCheckpoint > 0 && ContinuousClock.now - progress.lastCheckpoint >= checkpointInterval)
    }
    if due { try checkpoint() }
  }

  /// Syncs the journal, then records the seq up to which the image has every record.
  func checkpoint(clean: Bool = false) throws {
    try checkpointing.withLock {
      let changed = progress.withLock { $0.bytesSinceCheckpoint }
      // While applying fails this stays at the last seq the image fully has, so a restart
      // replays from there.
      let applied = applier.appliedSeq
      try journal.sync()
      try image.checkpoint(appliedSeq: applied, clean: clean)
      progress.withLock { progress in
        progress.bytesSinceCheckpoint -= min(progress.bytesSinceCheckpoint, changed)
        progress.lastCheckpoint = ContinuousClock.now
      }
    }
  }

  /// Clean shutdown: every pending record applied to the image, the journal closed with
  /// its footer, then the image checkpointed as clean so the next start needs no replay.
  func close() throws {
    // An image that could not take every record is reported below, after the journal is
    // closed properly; the checkpoint names the last seq it fully has.
    var applyFailure: Error?
    do { try applier.finish() } catch { applyFailure = error }
    try journal.sync()
    try journal.close()
    // Not clean when records are missing: a batch that failed halfway may have left some
    // of their bytes in the image, so after a reboot it is rebuilt rather than trusted.
    try checkpoint(clean: applyFailure == nil)
    if let applyFailure {
      throw ReelError(
        .io, "the live image of \(name) lacks journaled writes (\(applyFailure))",
        remedy: "free space and start `reel serve` again: it replays them from the journal")
    }
  }

  /// Appends `entry` and hands it to the applier in journal order. Writers wait here
  /// (or help apply) while the image lags too far behind.
  @discardableResult
  func record(_ entry: JournalEntry) throws -> AppendedRecord {
    try applier.waitForRoom()
    return try journal.append(entry) { appended, placement in
      applier.enqueue(entry.kind, offset: entry.offset, length: entry.length, as: appended, at: placement)
    }
  }

  /// When a client last wrote, trimmed or zeroed; nil before the first time.
  var lastChange: ContinuousClock.Instant? { progress.withLock { $0.lastChange } }

  private func finish(changed: UInt64, fua: Bool) throws {
    progress.withLock { progress in
      progress.bytesSinceCheckpoint += changed
      progress.lastChange = ContinuousClock.now
    }
    if fua { try journal.sync() }
  }
}
