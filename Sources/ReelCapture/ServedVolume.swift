import Foundation
import ReelCore
import ReelJournal

/// One volume while `reel serve` has it: its journal writer, its live image, and the rules
/// that tie them together. Every connection and the control socket share this object.
final class ServedVolume: @unchecked Sendable {
  let descriptor: VolumeDescriptor
  let journal: JournalWriter
  let image: LiveImage
  let recovery: LiveImageRecovery
  let readOnly: Bool
  let controlSocketPath: String
  private let checkpointBytes: UInt64
  private let checkpointInterval: Duration

  /// Records reach the image in journal order: a connection that appended seq N applies
  /// its record only once N-1 is applied. Appending itself (checksum, copy) runs in
  /// parallel; only the short image step takes turns.
  private let applying = NSCondition()
  private var appliedThrough: Seq
  /// Set when the image missed a journaled record; it no longer matches the journal, so
  /// reads and writes stop and no checkpoint claims more than was applied before.
  private var imageFailure: String?

  private let progress = NSLock()
  private var bytesSinceCheckpoint: UInt64 = 0
  private var lastCheckpoint = ContinuousClock.now
  private let checkpointing = NSLock()
  private let bookmarking = NSLock()
  private var bookmarkLabels: Set<String>

  var name: String { descriptor.name }

  private init(
    descriptor: VolumeDescriptor, journal: JournalWriter, image: LiveImage, recovery: LiveImageRecovery,
    readOnly: Bool, controlSocketPath: String, bookmarkLabels: Set<String>, checkpointBytes: UInt64,
    checkpointInterval: Duration
  ) {
    self.descriptor = descriptor
    self.journal = journal
    self.image = image
    self.recovery = recovery
    self.readOnly = readOnly
    self.controlSocketPath = controlSocketPath
    self.bookmarkLabels = bookmarkLabels
    self.checkpointBytes = checkpointBytes
    self.checkpointInterval = checkpointInterval
    appliedThrough = journal.lastAppendedSeq
  }

  /// Opens the journal (taking its writer lock, recovering a torn tail) and brings the live
  /// image in line with it.
  static func open(
    name: String, layout: StoreLayout, readOnly: Bool = false, checkpointBytes: UInt64, checkpointInterval: Duration,
    rebuildBase: (@Sendable (VolumeDescriptor, Seq) throws -> any VolumeSource)? = nil
  ) throws -> ServedVolume {
    let descriptor = try layout.descriptor(of: name)
    let directory = layout.journalDirectory(name)
    let (journal, _) = try JournalWriter.open(directory: directory, volume: descriptor.id)
    do {
      let labels = try JournalReader(directory: directory, volume: descriptor.id).summarize().bookmarks.map(\.label)
      let (image, recovery) = try LiveImage.open(
        layout: layout, descriptor: descriptor, journalLastSeq: journal.lastAppendedSeq, rebuildBase: rebuildBase)
      return ServedVolume(
        descriptor: descriptor, journal: journal, image: image, recovery: recovery, readOnly: readOnly,
        controlSocketPath: layout.volumeDirectory(name) + "/" + ControlProtocol.socketName,
        bookmarkLabels: Set(labels), checkpointBytes: checkpointBytes, checkpointInterval: checkpointInterval)
    } catch {
      try? journal.close()
      throw error
    }
  }

  /// Journals a write, then applies it to the image; with `fua`, returns only once the
  /// record is on stable storage.
  func write(_ data: [UInt8], at offset: UInt64, fua: Bool) throws {
    try record(.write(offset: offset, data: data, flags: fua ? .forceUnitAccess : [])) {
      try data.withUnsafeBytes { try image.write($0, at: offset) }
    }
    try finish(changed: UInt64(data.count), fua: fua)
  }

  /// Journals a TRIM or WRITE_ZEROES, then punches the range out of the image so it reads
  /// as zeros.
  func zero(offset: UInt64, length: UInt64, trim: Bool, fua: Bool) throws {
    var entry: JournalEntry =
      trim ? .trim(offset: offset, length: length) : .writeZeroes(offset: offset, length: length)
    if fua { entry.flags.insert(.forceUnitAccess) }
    try record(entry) { try image.zero(offset: offset, length: length) }
    try finish(changed: length, fua: fua)
  }

  /// NBD FLUSH: a flush record, then everything before it made durable.
  func flush() throws {
    try record(.flush)
    try journal.sync()
  }

  func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
    try checkImage()
    try image.read(into: buffer, at: offset)
  }

  /// Appends a crash-consistent bookmark: a flush record made durable, then the bookmark
  /// record made durable, so everything acknowledged before the call is inside it.
  func bookmark(_ label: String) throws -> AppendedRecord {
    try Bookmarks.validate(label: label)
    return try bookmarking.withLock {
      guard !bookmarkLabels.contains(label) else { throw Bookmarks.duplicate(label, volume: name) }
      try record(.flush)
      try journal.sync()
      let appended = try record(.bookmark(label))
      try journal.sync()
      bookmarkLabels.insert(label)
      return appended
    }
  }

  /// Checkpoints when enough was written or enough time passed since the last one, so a
  /// restart after a crash replays a bounded part of the journal.
  func checkpointIfDue() throws {
    let due = progress.withLock {
      bytesSinceCheckpoint >= checkpointBytes
        || (bytesSinceCheckpoint > 0 && ContinuousClock.now - lastCheckpoint >= checkpointInterval)
    }
    if due { try checkpoint() }
  }

  /// Syncs the journal, then records the seq up to which the image has every record.
  func checkpoint(clean: Bool = false) throws {
    try checkpointing.withLock {
      let changed = progress.withLock { bytesSinceCheckpoint }
      let (applied, failure) = applying.withLock { (appliedThrough, imageFailure) }
      // After a failed image write, live.state keeps the last good seq so a restart replays
      // from there.
      guard failure == nil else { return }
      try journal.sync()
      try image.checkpoint(appliedSeq: applied, clean: clean)
      progress.withLock {
        bytesSinceCheckpoint -= min(bytesSinceCheckpoint, changed)
        lastCheckpoint = ContinuousClock.now
      }
    }
  }

  /// Clean shutdown: the journal closed with its footer, then the image checkpointed as
  /// clean so the next start needs no replay.
  func close() throws {
    try journal.sync()
    try journal.close()
    try checkpoint(clean: true)
    if let failure = applying.withLock({ imageFailure }) {
      throw ReelError(
        .io, "the live image of \(name) missed journaled writes (\(failure))",
        remedy: "fix the cause and start `reel serve` again: it replays the journal into the image")
    }
  }

  /// Appends `entry` and applies it to the image in journal order.
  @discardableResult
  private func record(_ entry: JournalEntry, apply: () throws -> Void = {}) throws -> AppendedRecord {
    try checkImage()
    let appended = try journal.append(entry)
    applying.withLock {
      while appliedThrough < appended.seq - 1 { applying.wait() }
    }
    // Every later record waits for this one, so whatever happens the turn is passed on.
    var failure: Error?
    do { try apply() } catch { failure = error }
    applying.withLock {
      appliedThrough = appended.seq
      if let failure, imageFailure == nil { imageFailure = "seq \(appended.seq): \(failure)" }
      applying.broadcast()
    }
    if let failure { throw failure }
    return appended
  }

  private func checkImage() throws {
    if let failure = applying.withLock({ imageFailure }) {
      throw ReelError(
        .io, "the live image of \(name) stopped matching its journal after a failed write (\(failure))",
        remedy: "fix the cause and restart `reel serve`: it replays the journal into the image")
    }
  }

  private func finish(changed: UInt64, fua: Bool) throws {
    progress.withLock { bytesSinceCheckpoint += changed }
    if fua { try journal.sync() }
  }
}
