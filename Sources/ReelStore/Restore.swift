import CLinux
import Foundation
import ReelCore
import ReelIO

package struct RestoreReport: Sendable {
  package var volume: String
  package var resolved: ResolvedPoint
  package var output: String
  package var size: UInt64
  /// Bytes actually written: blocks that are all zeros at the point are left as holes.
  package var bytesWritten: UInt64
  package var ingest: IngestReport
  /// What the user should know about the result (the journal's newest records could not
  /// be ingested, damaged chunks met on the way).
  package var warnings: [String] = []
  /// Partial files of earlier restores to the same output that were killed, removed now.
  package var removedPartials: [String] = []
}

/// Rebuilds a volume as of a point from the live store into an image file.
package enum Restore {
  package static func run(
    store: Store, volume name: String, at point: Point, output: String, overwrite: Bool = false
  ) throws -> RestoreReport {
    var existing = stat()
    if lstat(output, &existing) == 0 && (existing.st_mode & S_IFMT) == S_IFLNK {
      throw ReelError(
        .alreadyExists,
        "\(output) is a symbolic link; restore never writes through or replaces a link; nothing was written",
        remedy: "give --output the real path, or remove the link if it is yours")
    }
    if FileManager.default.fileExists(atPath: output) && !overwrite {
      throw ReelError(
        .alreadyExists, "\(output) already exists; nothing was written",
        remedy: "choose another --output, or add --force to replace it")
    }
    let removedPartials = try removeStalePartials(of: output)
    // A cold restore spent a sixth of its CPU mapping, zeroing and unmapping decoded blocks.
    reel_keep_large_allocations()
    let live = LiveStore(store: store)
    let (ingest, view, warnings) = try Self.view(live: live, volume: name, at: point)
    try Interrupt.check()
    let temporary = output + ".reel-partial-\(getpid())"
    // Created new and owner-only: the output folder may be one others can write, and the
    // image holds the volume's data. What holds the name already is not ours to remove.
    let file = try PosixFile.createNew(temporary, readable: true, leftover: true)
    do {
      try file.truncate(to: view.size)
      var written: UInt64 = 0
      let blockSize = UInt64(view.descriptor.storeBlockSize)
      // Three threads read and decode the next 16 MiB steps in turn while this one is
      // written, so one step's pack reads wait on the disk while another's blocks are
      // decoded (one thread, 32 MiB ahead: 1.59 s for a cold 1.1 GB restore; three: 1.37
      // s). Blocks are decoded in place into reused aligned buffers and written with direct
      // I/O where the file system allows it: the image is not read again soon, and filling
      // the page cache with it cost a copy and evicted what the machine was using.
      let stepBytes = max(1, UInt64(16 << 20) / blockSize) * blockSize
      let buffers = BufferPool(retainedBytes: 8 * Int(stepBytes))
      let direct = DirectIO.direct(file, writing: true)
      let size = view.size
      let steps = ReadAhead<RestoredStep>(name: "reel-restore-read", producers: 3) { index in
        let offset = UInt64(index) * stepBytes
        guard offset < size else { return nil }
        let buffer = buffers.take(Int(min(stepBytes, size - offset)))
        do {
          try view.read(into: buffer.bytes, at: offset)
        } catch {
          buffers.recycle(buffer)
          throw error
        }
        return RestoredStep(
          offset: offset, buffer: buffer, dataRuns: Self.dataRuns(buffer.bytes, blockSize: Int(blockSize)))
      }
      defer { steps.cancel() }
      while let step = try steps.next() {
        defer { buffers.recycle(step.buffer) }
        try Interrupt.check()
        for run in step.dataRuns {
          let piece = UnsafeRawBufferPointer(rebasing: step.buffer.bytes[run])
          let offset = step.offset + UInt64(run.lowerBound)
          if let direct, offset % UInt64(DirectIO.alignment) == 0, piece.count % DirectIO.alignment == 0 {
            try direct.write(piece, at: offset)
          } else {
            try file.write(piece, at: offset)
            file.startWriteback(offset: offset, count: UInt64(piece.count))
          }
          written += UInt64(piece.count)
        }
      }
      try file.sync()
      try Durable.rename(temporary, to: output)
      return RestoreReport(
        volume: name, resolved: view.resolved, output: output, size: view.size, bytesWritten: written, ingest: ingest,
        warnings: warnings, removedPartials: removedPartials)
    } catch let error as ReelError where error.kind == .interrupted {
      unlink(temporary)
      throw Interrupt.error("removed the partial \(temporary)")
    } catch {
      unlink(temporary)
      throw error
    }
  }

  /// One step of an image being restored: its bytes, and the runs of them that are not
  /// whole blocks of zeros (those stay holes).
  struct RestoredStep: Sendable {
    var offset: UInt64
    var buffer: PooledBuffer
    var dataRuns: [Range<Int>]
  }

  /// The ranges of `bytes` made of blocks that are not all zeros, neighbours joined.
  static func dataRuns(_ bytes: UnsafeMutableRawBufferPointer, blockSize: Int) -> [Range<Int>] {
    var runs: [Range<Int>] = []
    var start = 0
    while start < bytes.count {
      let end = min(start + blockSize, bytes.count)
      if !ChunkEncoder.isAllZeros(UnsafeRawBufferPointer(rebasing: bytes[start..<end])) {
        if let last = runs.last, last.upperBound == start {
          runs[runs.count - 1] = last.lowerBound..<end
        } else {
          runs.append(start..<end)
        }
      }
      start = end
    }
    return runs
  }

  /// The store caught up with the journal, then the point resolved. When catching up
  /// fails, a point inside the history the store already holds is still served (with a
  /// warning): the failure concerns only newer records.
  package static func view(live: LiveStore, volume name: String, at point: Point) throws -> (
    IngestReport, VolumeView, [String]
  ) {
    do {
      let ingest = try live.ingest(volume: name)
      let warnings = ingest.damage.map { "damaged store: \($0); run `reel store repair`" }
      return (ingest, try VolumeView(live: live, volume: name, at: point), warnings)
    } catch let failure as ReelError {
      guard point != .latest, let view = try? VolumeView(live: live, volume: name, at: point) else { throw failure }
      let ingested = try live.historyBounds(of: view.descriptor).ingested
      if case .time = point, view.resolved.seq >= ingested { throw failure }
      let warning =
        "the journal of \(name) after seq \(ingested) could not be taken into the store (\(failure.message)); \(point) is before that and was read from what the store holds"
      return (IngestReport(volume: name, firstSeq: ingested + 1, lastSeq: ingested), view, [warning])
    }
  }

  /// Removes `OUTPUT.reel-partial-PID` files left by restores that were killed (their PID
  /// no longer runs), so a rerun does not leave their space taken; returns their paths.
  /// A partial of a restore still running is left alone.
  static func removeStalePartials(of output: String) throws -> [String] {
    let folder = Durable.parent(of: output)
    let prefix = (output as NSString).lastPathComponent + ".reel-partial-"
    guard let names = try? FileManager.default.contentsOfDirectory(atPath: folder) else { return [] }
    var removed: [String] = []
    for name in names.sorted() where name.hasPrefix(prefix) {
      guard let pid = pid_t(name.dropFirst(prefix.count)), pid > 0 else { continue }
      guard kill(pid, 0) != 0 && errno == ESRCH else { continue }
      // Named as the restore that wrote it named it, so the user recognises it.
      let path = output + ".reel-partial-\(pid)"
      guard unlink(path) == 0 || errno == ENOENT else { throw PosixFile.error(errno, "remove", path) }
      removed.append(path)
    }
    return removed
  }
}
