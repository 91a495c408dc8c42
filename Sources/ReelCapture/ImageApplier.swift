import CLinux
import Foundation
import ReelCore
import ReelJournal

/// How far `live.img` may fall behind the journal while serving.
package struct LiveImageOptions: Sendable {
  /// Writers wait (and help apply) once the journaled write payloads not yet in
  /// `live.img` reach this many bytes ...
  package var lagBytes: UInt64 = 2 << 30
  /// ... or this many writes, trims and zeroings are pending, which bounds the memory of
  /// the pending map (about 100 bytes each). Flushes and bookmarks do not count: they
  /// have nothing to apply and hold no piece of the map. 262144: with random 4-64 KiB
  /// sync writes (benchmarks/capture-random.sh) 65536 records, flushes included, came
  /// within 4 s (half of them, where the applier starts, with a quarter of the byte limit
  /// pending); from then on the applier ran beside the clients, and writers waited for
  /// its niced batches: 11,100 to 12,300 IOPS against 13,000 to 14,300 with applying
  /// deferred. Now the byte limit decides for writes over 8 KiB.
  var lagRecords = 262_144
  /// While clients keep writing, the background thread waits until half a limit is
  /// pending; it starts at once when no record arrived for this long.
  var quietPeriod: Duration = .milliseconds(100)
  /// Records are applied in batches of about this many payload bytes.
  var batchBytes: UInt64 = 16 << 20
  /// The background thread's nice value, so that when it does run during writes it
  /// yields the cores to the NBD threads.
  var applierNice: Int32 = 10
  /// For tests: no background applying, only writers over the limit and shutdown apply,
  /// so the image lags behind the journal for as long as a test needs.
  package var deferApply = false

  package init() {}
}

/// Brings `live.img` up to date with the journal off the write path. A write is
/// acknowledged once it is in the journal and in the pending map; a background thread
/// copies the journaled bytes into the image (copy_file_range) in journal order, and only
/// then drops them from the map. Reads take the pending map's pieces from the journal and
/// everything else from the image, so they always see the newest acknowledged data.
// Its state is guarded by `state`, released while a batch is copied, which `Locked` cannot express.
final class ImageApplier: @unchecked Sendable {
  let image: LiveImage
  private let options: LiveImageOptions
  private let state = NSCondition()

  private struct PendingRecord {
    var seq: Seq
    var start: UInt64
    var end: UInt64
    /// Payload bytes counted against `lagBytes`.
    var bytes: UInt64
  }

  private var map = PendingMap()
  /// Every record appended since the applier started and not applied yet, in seq order
  /// (flushes and bookmarks too, with an empty range), from `head` on.
  private var queue: [PendingRecord] = []
  private var head = 0
  private var pendingBytes: UInt64 = 0
  /// Pending records with a range (counted against `lagRecords`).
  private var pendingRanges = 0
  /// Every record up to this seq is in the image, or overwritten by a later record that
  /// is pending; replaying the records after it over the image gives the volume.
  private var appliedThrough: Seq
  /// One batch at a time, in journal order.
  private var applying = false
  private var applierWaiting = false
  /// Set while applying fails (a full disk, most likely). Nothing is lost: the records
  /// stay pending, reads take them from the journal, and applying is tried again from
  /// `retryAt` on by the background thread, at once by a writer that needs room (every
  /// batch is idempotent: it copies journaled bytes to where they belong); a writer
  /// whose try fails gets this error.
  private var stall: (error: ReelError, retryAt: ContinuousClock.Instant)?
  private let retryDelay: Duration = .seconds(1)
  private var stopping = false
  /// The background thread, joined by `finish`.
  private var thread: WorkerThread?
  private var lastEnqueue = ContinuousClock.now

  /// Told once when applying fails.
  private let report: @Sendable (String) -> Void

  init(
    image: LiveImage, appliedThrough: Seq, options: LiveImageOptions,
    report: @escaping @Sendable (String) -> Void = { _ in }
  ) {
    self.image = image
    self.appliedThrough = appliedThrough
    self.options = options
    self.report = report
  }

  /// Starts the background thread (none with `deferApply`).
  func start(name: String) {
    guard !options.deferApply else { return }
    let thread = WorkerThread(name: "reel apply \(name)") { [self] in
      _ = reel_set_thread_nice(options.applierNice)
      state.lock()
      while true {
        while !stopping && (applying || head == queue.count) {
          applierWaiting = true
          state.wait()
          applierWaiting = false
        }
        if stopping { break }
        if let stall, ContinuousClock.now < stall.retryAt {
          let seconds = Double((stall.retryAt - ContinuousClock.now).nanoseconds) / 1e9
          _ = state.wait(until: Date(timeIntervalSinceNow: max(seconds, 0.001)))
          continue
        }
        // Applying costs a copy of every byte, now or later. In a burst it waits, so the
        // cores go to receiving and journaling, and bytes rewritten meanwhile are copied
        // once; half a limit pending, or a pause, and it goes.
        let resume = lastEnqueue.advanced(by: options.quietPeriod)
        if !isHalfFull && ContinuousClock.now < resume {
          let seconds = Double((resume - ContinuousClock.now).nanoseconds) / 1e9
          _ = state.wait(until: Date(timeIntervalSinceNow: max(seconds, 0.001)))
          continue
        }
        applyBatch()
      }
      state.unlock()
    }
    state.withLock { self.thread = thread }
  }

  /// Called with `state` locked.
  private var isHalfFull: Bool {
    pendingBytes >= options.lagBytes / 2 || pendingRanges >= options.lagRecords / 2
      // Flushes alone: cheap to take, but the queue should not grow without end.
      || queue.count - head >= options.lagRecords
  }

  /// The seq the image reflects (see `appliedThrough`): every record up to it is in the
  /// image, whether or not applying later ones fails.
  var appliedSeq: Seq { state.withLock { appliedThrough } }

  /// Waits while the image lags too far behind, applying batches itself when no one else
  /// is, so writers never wait on a thread that the scheduler holds back. Throws when the
  /// image cannot take records now (the error keeps its errno, e.g. ENOSPC).
  func waitForRoom() throws {
    state.lock()
    defer { state.unlock() }
    while pendingBytes >= options.lagBytes || pendingRanges >= options.lagRecords {
      // A writer tries again at once (the background thread waits between tries): the
      // disk may have room by now.
      if applying {
        state.wait()
      } else if !applyBatch() {
        throw stall!.error
      }
    }
  }

  /// Records an appended record. Called under the journal writer's lock, so calls come in
  /// seq order, each one before its record can be acknowledged.
  func enqueue(
    _ kind: JournalRecord.Kind, offset: UInt64, length: UInt64, as record: AppendedRecord,
    at placement: RecordPlacement
  ) {
    var pending = PendingRecord(seq: record.seq, start: 0, end: 0, bytes: 0)
    state.withLock {
      switch kind {
      case .write:
        pending.start = offset
        pending.end = offset + length
        pending.bytes = length
        map.insert(
          start: pending.start, end: pending.end, seq: record.seq,
          source: .journal(placement.file, placement.payloadOffset))
      case .trim, .writeZeroes:
        pending.start = offset
        pending.end = offset + length
        map.insert(start: pending.start, end: pending.end, seq: record.seq, source: .zeros)
      case .flush, .bookmark, .rollback:
        // A rollback is applied by the server itself while the volume is quiet
        // (RollbackApplication.swift), never through this queue.
        break
      }
      queue.append(pending)
      pendingBytes += pending.bytes
      if pending.start < pending.end { pendingRanges += 1 }
      lastEnqueue = ContinuousClock.now
      if applierWaiting && !applying { state.signal() }
    }
  }

  /// Fills `buffer` with the volume's bytes at `offset`: pending pieces from the journal
  /// (or zeros), the rest from the image. The pieces are taken before the image is read;
  /// a piece leaves the map only after its bytes are in the image, so a byte that is in
  /// neither place cannot be missed.
  func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
    let end = offset + UInt64(buffer.count)
    let pieces = state.withLock { map.isEmpty ? [] : map.pieces(from: offset, to: end) }
    func slice(_ start: UInt64, _ stop: UInt64) -> UnsafeMutableRawBufferPointer {
      UnsafeMutableRawBufferPointer(rebasing: buffer[Int(start - offset)..<Int(stop - offset)])
    }
    var position = offset
    for piece in pieces {
      if piece.start > position { try image.read(into: slice(position, piece.start), at: position) }
      let target = slice(piece.start, piece.end)
      switch piece.source {
      case .zeros:
        target.initializeMemory(as: UInt8.self, repeating: 0)
      case .journal(let file, let fileOffset):
        let got = try file.read(into: target, at: fileOffset)
        guard got == target.count else {
          throw ReelError(.io, "\(file.path): journaled payload at \(fileOffset) ends after \(got) bytes")
        }
      }
      position = piece.end
    }
    if position < end { try image.read(into: slice(position, end), at: position) }
  }

  /// Applies everything pending now, keeping the background thread; throws what stops it.
  func drain() throws {
    try state.withLock {
      while applying || head < queue.count {
        if applying {
          state.wait()
        } else if !applyBatch() {
          throw stall!.error
        }
      }
    }
  }

  /// Applies everything pending and stops the background thread; afterwards the image
  /// has every record, or the failure is thrown (the records stay in the journal, and the
  /// next start replays them).
  func finish() throws {
    let (thread, failure) = state.withLock {
      stopping = true
      state.broadcast()
      var failure: ReelError?
      while applying || head < queue.count {
        if applying {
          state.wait()
        } else if !applyBatch() {
          failure = stall?.error
          break
        }
      }
      return (self.thread, failure)
    }
    thread?.join()
    if let failure { throw failure }
  }

  /// Called with `state` locked and no batch running; returns with it locked. Takes the
  /// next records (about `batchBytes` of payload), writes the pieces they still decide
  /// into the image without the lock, then drops those pieces from the map. Parts that a
  /// later pending record overwrote are skipped: that record rewrites them. Returns false
  /// when writing failed; the records then stay pending, `stall` says why.
  @discardableResult
  private func applyBatch() -> Bool {
    guard head < queue.count else { return true }
    applying = true
    let first = head
    var past = head
    var bytes: UInt64 = 0
    var work: [PendingPiece] = []
    while past < queue.count && (past == first || bytes < options.batchBytes) {
      let record = queue[past]
      if record.start < record.end { work += map.pieces(of: record.seq, from: record.start, to: record.end) }
      bytes += record.bytes
      past += 1
    }
    state.unlock()
    var error: Error?
    do {
      for piece in work {
        switch piece.source {
        case .zeros:
          try image.zero(offset: piece.start, length: piece.count)
        case .journal(let file, let offset):
          try image.copy(from: file, at: offset, count: Int(piece.count), to: piece.start)
        }
      }
    } catch let caught {
      error = caught
    }
    work = []
    state.lock()
    applying = false
    defer { state.broadcast() }
    if let error {
      let failed = "seq \(queue[first].seq)…\(queue[past - 1].seq): \(error)"
      if stall == nil {
        report(
          "the live image cannot take journaled records (\(failed)); they stay in the journal and reads see them, writes get an error while the backlog is full; retrying every \(ServerLimits.describe(retryDelay))"
        )
      }
      stall = (
        ReelError(
          .io, "the live image \(image.path) cannot take journaled writes: \(failed)",
          remedy: "free space where the store is; writing resumes by itself",
          errno: (error as? ReelError)?.errno),
        ContinuousClock.now + retryDelay
      )
      return false
    }
    if stall != nil {
      stall = nil
      report("the live image takes journaled records again")
    }
    for index in first..<past {
      let record = queue[index]
      if record.start < record.end {
        map.remove(seq: record.seq, from: record.start, to: record.end)
        pendingRanges -= 1
      }
      pendingBytes -= record.bytes
    }
    appliedThrough = queue[past - 1].seq
    head = past
    if head == queue.count {
      queue.removeAll(keepingCapacity: true)
      head = 0
    } else if head >= 4096 && head * 2 >= queue.count {
      queue.removeFirst(head)
      head = 0
    }
    return true
  }
}
