import Foundation
import ReelCodec
import ReelCore
import ReelIO

package struct JournalOptions: Sendable {
  /// A segment is closed and a new one started once it would grow past this size.
  package var segmentSizeLimit: UInt64 = 64 << 20
  /// ... or once it is this old and holds at least one record.
  package var segmentAgeLimit: Duration = .seconds(3600)
  /// Every this many bytes appended, the kernel is asked to start writing them to disk
  /// (sync_file_range), so the disk works while records keep coming and a sync (FLUSH,
  /// FUA, rotation) finds little left to write. Durability still comes only from sync;
  /// 0 leaves writeback to the kernel.
  package var writebackBytes: UInt64 = 8 << 20
  /// Where record times come from; replaced in tests to step the clock back.
  package var clock: @Sendable () -> Timestamp = { Timestamp.now() }

  package init() {}
}

/// What opening a journal for writing found and repaired.
package struct RecoveryReport: Sendable, Equatable {
  package struct TornTail: Sendable, Equatable {
    var segmentPath: String
    package var offset: UInt64
    package var removedBytes: UInt64
    package var reason: String
    /// The cut-off bytes, kept for inspection; they were never acknowledged.
    package var quarantinePath: String
  }

  package var tornTail: TornTail?
  /// A segment left open by a crash that recovery closed with a footer.
  package var closedSegment: String?
  package var lastSeq: Seq
  package var segmentCount: Int
}

/// The seq and time the writer gave a record.
package struct AppendedRecord: Sendable, Equatable {
  package var seq: Seq
  package var time: Timestamp
}

/// Where an appended record's payload lies: its segment file and the offset of the
/// payload's first byte in it. The file stays readable for as long as this is kept, even
/// after the writer moved on to another segment.
package struct RecordPlacement: Sendable {
  package var file: PosixFile
  package var payloadOffset: UInt64
}

/// Appends records to a volume's journal. Thread-safe: many connections append while
/// one of them syncs; concurrent `sync` calls share one fdatasync (group commit).
// Its state is guarded by `state` (an NSCondition), with the sync done outside it by design.
package final class JournalWriter: @unchecked Sendable {
  package let directory: String
  package let volume: VolumeID
  private let options: JournalOptions
  private let state = NSCondition()

  private var segment: OpenSegment
  private var lastSeq: Seq
  private var lastTime: Timestamp
  private var durableSeq: Seq
  private var syncing = false
  private var failure: ReelError?
  private var closed = false
  /// Held for the writer's lifetime: two writers on one journal would interleave seqs.
  private let lock: PosixFile

  private final class OpenSegment {
    let file: PosixFile
    let header: SegmentHeader
    var writtenSize: UInt64
    /// Where the bytes not yet handed to `startWriteback` begin.
    var writebackFrom: UInt64
    var recordCount: UInt64 = 0
    var minTime: Timestamp?
    var maxTime: Timestamp?
    var digest = CRC32C()

    init(file: PosixFile, header: SegmentHeader) {
      self.file = file
      self.header = header
      writtenSize = UInt64(SegmentFormat.headerSize)
      writebackFrom = writtenSize
      digest.update(header.encoded())
    }
  }

  /// Opens the journal of volume `name` for a change made with no server (an offline
  /// bookmark or rollback). A journal another process holds is refused by name: that
  /// process should have taken the change through its control socket, `controlSocket`.
  package static func openWithoutServer(
    directory: String, volume: VolumeID, name: String, controlSocket: String
  ) throws -> JournalWriter {
    do {
      return try open(directory: directory, volume: volume).0
    } catch let error as ReelError where error.kind == .alreadyExists && error.errno == EWOULDBLOCK {
      throw ReelError(
        .alreadyExists,
        "volume \(name) is open in another process (\(error.message)) that does not answer on \(controlSocket)",
        remedy:
          "if that is a `reel serve`, restart it so its control socket comes back; otherwise stop the other process and retry"
      )
    }
  }

  /// Opens (creating if needed) the journal in `directory`, recovering from a crash:
  /// a torn tail of the last segment is cut off (and kept in `quarantine/`), an open
  /// segment is closed, and a fresh segment is started.
  package static func open(
    directory: String, volume: VolumeID, options: JournalOptions = JournalOptions()
  ) throws -> (JournalWriter, RecoveryReport) {
    try Durable.makeDirectory(directory)
    let lock = try lockJournal(directory)
    try removeLeftoverTemporaries(in: directory)
    let reader = try JournalReader(directory: directory, volume: volume)
    var report = RecoveryReport(tornTail: nil, closedSegment: nil, lastSeq: 0, segmentCount: reader.segments.count)
    var lastSeq: Seq = 0
    var lastTime = Timestamp(nanoseconds: Int64.min)
    for segment in reader.segments.dropLast() {
      if let summary = segment.summary, summary.recordCount > 0 { lastTime = summary.maxTime }
    }
    if let last = reader.segments.last {
      if let summary = last.summary {
        lastSeq = summary.lastSeq
        if summary.recordCount > 0 {
          lastTime = summary.maxTime
        } else {
          // An empty journal that continues imported history (`continueAfter`) was created
          // no earlier than that history's last record: time never goes back behind it.
          // (A segment with records may hold times before its creation time.)
          lastTime = max(lastTime, last.header.created)
        }
      } else {
        let recovered = try recoverOpenSegment(last, previousTime: lastTime, directory: directory, report: &report)
        lastSeq = recovered.lastSeq
        if let time = recovered.lastTime { lastTime = time }
      }
    }
    report.lastSeq = lastSeq
    let nextNumber = (reader.segments.last?.number ?? 0) + 1
    let writer = try JournalWriter(
      directory: directory, volume: volume, options: options, segmentNumber: nextNumber,
      lastSeq: lastSeq, lastTime: lastTime, lock: lock)
    return (writer, report)
  }

  /// Makes a journal that holds no record continue after `seq`: history up to it came from
  /// elsewhere (sealed archives, on rehydration), and new records must follow it, so
  /// points, bookmarks and later seals continue instead of restarting at seq 1. Written as
  /// one empty closed segment whose first seq is `seq + 1`, created no earlier than `time`
  /// (the last imported record's), replacing empty segments before it. A journal
  /// with records is left alone when it already reaches `seq`; returns whether it changed.
  @discardableResult
  package static func continueAfter(directory: String, volume: VolumeID, seq: Seq, time: Timestamp) throws -> Bool {
    try Durable.makeDirectory(directory)
    let lock = try lockJournal(directory)
    defer { flock(lock.descriptor, LOCK_UN) }
    try removeLeftoverTemporaries(in: directory)
    let reader = try JournalReader(directory: directory, volume: volume)
    let summaries = reader.segments.map(\.summary)
    let lastSeq = summaries.last.flatMap { $0?.lastSeq } ?? 0
    if summaries.contains(where: { $0 == nil || $0!.recordCount > 0 }) {
      guard lastSeq >= seq || summaries.last! == nil else {
        throw ReelError(
          .incompatible,
          "the journal in \(directory) ends at seq \(lastSeq) but the volume's history reaches seq \(seq)",
          remedy: "import into a store whose journal for this volume is empty, or run `reel store check`")
      }
      return false
    }
    if !reader.segments.isEmpty && lastSeq == seq { return false }
    // Only empty segments: nothing is lost by replacing them.
    for segment in reader.segments {
      guard unlink(segment.path) == 0 || errno == ENOENT else { throw PosixFile.error(errno, "delete", segment.path) }
    }
    try Durable.syncDirectory(directory)
    let writer = try JournalWriter(
      directory: directory, volume: volume, options: JournalOptions(),
      segmentNumber: (reader.segments.last?.number ?? 0) + 1, lastSeq: seq, lastTime: time, lock: lock)
    try writer.close()
    return true
  }

  private init(
    directory: String, volume: VolumeID, options: JournalOptions, segmentNumber: UInt64,
    lastSeq: Seq, lastTime: Timestamp, lock: PosixFile
  ) throws {
    self.lock = lock
    self.directory = directory
    self.volume = volume
    self.options = options
    self.lastSeq = lastSeq
    self.lastTime = lastTime
    self.durableSeq = lastSeq
    self.segment = try Self.createSegment(
      directory: directory, volume: volume, number: segmentNumber, firstSeq: lastSeq + 1,
      created: max(options.clock(), lastTime))
  }

  /// The seq of the last record appended (not necessarily durable yet).
  package var lastAppendedSeq: Seq { state.withLock { lastSeq } }

  /// The seq up to which every record is known to be on stable storage.
  package var lastDurableSeq: Seq { state.withLock { durableSeq } }

  /// Appends one record and returns its seq and time. The record is handed to the kernel
  /// before this returns, so it survives the process being killed; it survives power
  /// loss only after a later `sync()` returns.
  @discardableResult
  package func append(_ entry: JournalEntry) throws -> AppendedRecord {
    try append(entry) { _, _ in }
  }

  /// Appends like `append(_:)`, and calls `appended` with the record's seq and placement
  /// while the writer's lock is still held: calls come one at a time, in seq order, and
  /// only for records that were written. `appended` must be quick and must not call back
  /// into the writer.
  @discardableResult
  package func append(
    _ entry: JournalEntry, whileLocked appended: (AppendedRecord, RecordPlacement) -> Void
  ) throws -> AppendedRecord {
    try entry.payload.withUnsafeBytes { payload in
      try append(
        kind: entry.kind, flags: entry.flags, offset: entry.offset, length: entry.length, payload: payload,
        whileLocked: appended)
    }
  }

  /// Appends a `write` record whose payload is `data`, read straight from the caller's
  /// buffer (no array is made); otherwise like `append(_:whileLocked:)`.
  @discardableResult
  package func appendWrite(
    offset: UInt64, data: UnsafeRawBufferPointer, flags: JournalRecord.Flags = [],
    whileLocked appended: (AppendedRecord, RecordPlacement) -> Void
  ) throws -> AppendedRecord {
    try append(
      kind: .write, flags: flags, offset: offset, length: UInt64(data.count), payload: data, whileLocked: appended)
  }

  private func append(
    kind: JournalRecord.Kind, flags: JournalRecord.Flags, offset: UInt64, length: UInt64,
    payload: UnsafeRawBufferPointer, whileLocked appended: (AppendedRecord, RecordPlacement) -> Void
  ) throws -> AppendedRecord {
    guard payload.count <= SegmentFormat.maxPayload else {
      throw ReelError(
        .usage, "journal record payload of \(payload.count) bytes exceeds \(SegmentFormat.maxPayload)")
    }
    var payloadChecksum = CRC32C()
    payloadChecksum.update(payload)
    var writeback: (file: PosixFile, offset: UInt64, count: UInt64)?
    // Outside the lock: the call may wait for room in the disk's queue.
    defer { if let writeback { writeback.file.startWriteback(offset: writeback.offset, count: writeback.count) } }
    state.lock()
    defer { state.unlock() }
    try checkUsable()
    var writingRecord = false
    do {
      let recordSize = UInt64(SegmentFormat.recordHeaderSize + payload.count + SegmentFormat.footerSize)
      let now = options.clock()
      if segment.recordCount > 0
        && (segment.writtenSize + recordSize > options.segmentSizeLimit
          || segment.header.created.nanoseconds + options.segmentAgeLimit.nanoseconds <= now.nanoseconds)
      {
        try rotate()
      }
      let seq = lastSeq + 1
      let time = now > lastTime ? now : Timestamp(nanoseconds: lastTime.nanoseconds + 1)
      let (header, checksum) = RecordEncoder.header(
        kind: kind.rawValue, flags: flags.rawValue, seq: seq, time: time,
        offset: offset, length: length, payloadCount: payload.count,
        payloadChecksum: payloadChecksum)
      writingRecord = true
      try header.withUnsafeBytes { head in
        try segment.file.write([head, payload], at: segment.writtenSize)
      }
      writingRecord = false
      let placement = RecordPlacement(file: segment.file, payloadOffset: segment.writtenSize + UInt64(header.count))
      segment.writtenSize += UInt64(header.count + payload.count)
      lastSeq = seq
      lastTime = time
      segment.recordCount += 1
      if segment.minTime == nil { segment.minTime = time }
      segment.maxTime = time
      withUnsafeBytes(of: checksum.littleEndian) { segment.digest.update($0) }
      if options.writebackBytes > 0 && segment.writtenSize - segment.writebackFrom >= options.writebackBytes {
        writeback = (segment.file, segment.writebackFrom, segment.writtenSize - segment.writebackFrom)
        segment.writebackFrom = segment.writtenSize
      }
      let record = AppendedRecord(seq: seq, time: time)
      appended(record, placement)
      return record
    } catch let error as ReelError {
      // A full disk refuses this record only: whatever part of it landed is cut off, so
      // no reader can take it (or bytes a client chose) for a record, and the next append
      // goes where it would have. Anything else stops the writer.
      let full = error.errno == ENOSPC || error.errno == EDQUOT
      if !(writingRecord && full && (try? segment.file.truncate(to: segment.writtenSize)) != nil) {
        failure = error
      }
      throw error
    }
  }

  /// Returns once every record appended before the call is on stable storage. Callers
  /// that arrive while another sync runs wait for it and share its fdatasync when it
  /// covers them.
  package func sync() throws {
    state.lock()
    defer { state.unlock() }
    let target = lastSeq
    while durableSeq < target {
      try checkUsable(allowClosed: true)
      if syncing {
        state.wait()
        continue
      }
      let file = segment.file
      let covered = lastSeq
      syncing = true
      state.unlock()
      var syncError: ReelError?
      do { try file.syncData() } catch { syncError = error as? ReelError ?? ReelError(.io, "\(error)") }
      state.lock()
      syncing = false
      state.broadcast()
      if let syncError {
        // After a failed fsync the kernel may have dropped the dirty pages; nothing
        // written since the last good sync can be trusted, so stop accepting writes.
        failure = syncError
        throw syncError
      }
      durableSeq = max(durableSeq, covered)
    }
  }

  /// Appends `entry` and returns only once it is durable.
  @discardableResult
  package func appendDurably(_ entry: JournalEntry) throws -> AppendedRecord {
    let appended = try append(entry)
    try sync()
    return appended
  }

  /// Writes everything, closes the segment with its footer and syncs. Later appends fail.
  package func close() throws {
    state.lock()
    defer { state.unlock() }
    while syncing { state.wait() }
    guard !closed else { return }
    try checkUsable()
    try closeSegment()
    closed = true
    durableSeq = lastSeq
    flock(lock.descriptor, LOCK_UN)
  }

  private func checkUsable(allowClosed: Bool = false) throws {
    if let failure {
      throw ReelError(
        .io, "journal \(directory) stopped accepting writes after an earlier failure: \(failure.message)",
        remedy: "fix the cause, then restart; records acknowledged before the failure are safe")
    }
    if closed && !allowClosed {
      throw ReelError(.usage, "journal \(directory) is closed")
    }
  }

  private func closeSegment() throws {
    let summary = SegmentSummary(
      recordCount: segment.recordCount, firstSeq: segment.header.firstSeq, lastSeq: lastSeq,
      minTime: segment.minTime ?? Timestamp(nanoseconds: 0), maxTime: segment.maxTime ?? Timestamp(nanoseconds: 0),
      digest: segment.digest.value)
    let footer = summary.footerRecord(time: segment.maxTime ?? segment.header.created)
    try segment.file.write(footer, at: segment.writtenSize)
    segment.writtenSize += UInt64(footer.count)
    try segment.file.sync()
  }

  /// Called with the state lock held. Waits out a sync running outside the lock: it
  /// holds its own reference to the old file and would not see records written to the
  /// new one, so it must finish before `durableSeq` moves.
  private func rotate() throws {
    while syncing { state.wait() }
    try closeSegment()
    durableSeq = lastSeq
    segment = try Self.createSegment(
      directory: directory, volume: volume, number: segment.header.segmentNumber + 1, firstSeq: lastSeq + 1,
      created: max(options.clock(), lastTime))
  }

  private static func createSegment(
    directory: String, volume: VolumeID, number: UInt64, firstSeq: Seq, created: Timestamp
  ) throws -> OpenSegment {
    let header = SegmentHeader(volume: volume, segmentNumber: number, firstSeq: firstSeq, created: created)
    let path = directory + "/" + SegmentFormat.fileName(segment: number)
    // Written under a temporary name and renamed, so a crash never leaves a segment
    // whose header is incomplete.
    let temporary = path + ".tmp"
    let file = try PosixFile(path: temporary, flags: O_RDWR | O_CREAT | O_TRUNC)
    try file.write(header.encoded(), at: 0)
    try file.sync()
    try Durable.rename(temporary, to: path)
    return OpenSegment(file: file, header: header)
  }

  private static func lockJournal(_ directory: String) throws -> PosixFile {
    let lock = try PosixFile.openLock(directory + "/writer.lock")
    guard lock.tryLockExclusive() else {
      let holder = (try? lock.read(at: 0, count: 32)).map { String(decoding: $0, as: UTF8.self) } ?? "?"
      throw ReelError(
        .alreadyExists,
        "the journal \(directory) is being written by another process (pid \(holder.trimmingCharacters(in: .whitespacesAndNewlines)))",
        remedy: "stop the other `reel serve` for this volume, or talk to it (e.g. `reel bookmark` uses it)",
        errno: EWOULDBLOCK)
    }
    try lock.truncate(to: 0)
    try lock.write(Array("\(getpid())\n".utf8), at: 0)
    return lock
  }

  private static func removeLeftoverTemporaries(in directory: String) throws {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    var removed = false
    for name in names where name.hasSuffix("." + SegmentFormat.fileExtension + ".tmp") {
      unlink(directory + "/" + name)
      removed = true
    }
    if removed { try Durable.syncDirectory(directory) }
  }

  /// Validates the open segment, cuts a torn tail, and closes it with a footer.
  private static func recoverOpenSegment(
    _ segment: SegmentFile, previousTime: Timestamp, directory: String, report: inout RecoveryReport
  ) throws -> (lastSeq: Seq, lastTime: Timestamp?) {
    let knownTime: Timestamp? = previousTime.nanoseconds == Int64.min ? nil : previousTime
    var minTime: Timestamp? = nil
    let scan = try segment.scan(expectedFirstSeq: segment.header.firstSeq, lastTime: knownTime) { record, _ in
      if minTime == nil { minTime = record.time }
      return true
    }
    guard let scanned = scan else { preconditionFailure("scan without early stop returned nothing") }
    let file = try PosixFile(path: segment.path, flags: O_RDWR)
    var end: UInt64
    switch scanned.end {
    case .footer(let offset, _):
      end = offset
    case .open(let offset):
      end = offset
    case .tornTail(let offset, let reason):
      let removed = segment.size - offset
      let quarantine = directory + "/quarantine"
      try Durable.makeDirectory(quarantine)
      let keptPath = quarantine + "/" + (segment.path as NSString).lastPathComponent + ".torn-at-\(offset)"
      try Durable.replaceFile(at: keptPath, with: file.read(at: offset, count: Int(removed)))
      try file.truncate(to: offset)
      try file.sync()
      end = offset
      report.tornTail = .init(
        segmentPath: segment.path, offset: offset, removedBytes: removed, reason: reason, quarantinePath: keptPath)
    }
    // Close it the same way the writer would have, so readers see a sealed segment.
    let records = scanned.lastSeq + 1 - segment.header.firstSeq
    let summary = SegmentSummary(
      recordCount: records, firstSeq: segment.header.firstSeq, lastSeq: scanned.lastSeq,
      minTime: minTime ?? Timestamp(nanoseconds: 0),
      maxTime: records > 0 ? scanned.lastTime ?? Timestamp(nanoseconds: 0) : Timestamp(nanoseconds: 0),
      digest: scanned.digest)
    try file.write(summary.footerRecord(time: records > 0 ? summary.maxTime : segment.header.created), at: end)
    try file.sync()
    report.closedSegment = segment.path
    return (scanned.lastSeq, records > 0 ? scanned.lastTime : nil)
  }
}
