import ReelCore

/// The bytes of one file system inside a volume: a window of a `VolumeSource`, with the
/// blocks a journal replay would have written laid over it (never written anywhere).
///
/// Every read of a `VolumeView` costs a catalog lookup per store block, so small reads
/// (libext2fs reads one metadata block at a time) go through a page cache that loads
/// whole runs ahead of the miss, and large reads (file contents) go straight to the
/// source in one call. Safe to use from several threads.
final class BlockDevice: Sendable {
  static let pageSize = 64 << 10
  /// Pages loaded on a miss that follows the previous miss's run (a scan).
  static let sequentialRunPages = 16
  /// Pages loaded on any other miss: enough for a few inode-table or directory blocks.
  static let randomRunPages = 4
  /// At most this many pages (32 MiB) stay cached.
  static let capacityPages = 512
  /// Reads this long or longer bypass the cache, all but their ends.
  static let directReadBytes = 256 << 10
  /// Runs loaded on a miss start and end on multiples of this many bytes of the volume:
  /// the store keeps the volume in blocks of this size (its default), each read and
  /// decoded whole, so a run that straddled two would decode both.
  static let alignment: UInt64 = 256 << 10

  let source: any VolumeSource
  /// Where the file system starts on the volume, in bytes.
  let offset: UInt64
  let size: UInt64
  /// File-system blocks of `overlayBlockSize` bytes whose content is read from elsewhere
  /// on the device (the journal) instead of from their home.
  private let overlay: [UInt64: OverlayBlock]
  private let overlayBlockSize: UInt64
  private let cache = Locked(PageCache(capacity: BlockDevice.capacityPages))

  /// Where a block's content is instead of its home: the logged copy a journal replay
  /// would write there, at byte `position` of this device.
  struct OverlayBlock: Sendable {
    var position: UInt64
    var location: JournalBlockLocation
  }

  init(
    source: any VolumeSource, offset: UInt64, size: UInt64, overlay: [UInt64: OverlayBlock] = [:],
    blockSize: Int = 4096
  ) {
    self.source = source
    self.offset = offset
    self.size = size
    self.overlay = overlay
    self.overlayBlockSize = UInt64(blockSize)
  }

  /// The same window with `overlay` (file-system block → where its content is) laid over it.
  func overlaid(_ overlay: [UInt64: OverlayBlock], blockSize: Int) -> BlockDevice {
    BlockDevice(source: source, offset: offset, size: size, overlay: overlay, blockSize: blockSize)
  }

  func read(at position: UInt64, length: Int) throws -> [UInt8] {
    // Not zeroed first: the read below writes every byte, or throws.
    try [UInt8](unsafeUninitializedCapacity: length) { buffer, count in
      try read(at: position, into: UnsafeMutableRawBufferPointer(buffer))
      count = length
    }
  }

  /// Short reads are served from cached pages. A long one is read from the source in one
  /// call, except its two ends up to the nearest `alignment` boundaries: those go through
  /// the cache, so the store block a read ends in is decoded once, not again by the read
  /// that continues from there (file contents are read in consecutive pieces).
  func read(at position: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws {
    let length = UInt64(buffer.count)
    try checkInside(position, length)
    guard length > 0 else { return }
    let end = position + length
    let middleStart = min(end, alignUp(position))
    let middleEnd = max(middleStart, alignDown(end))
    guard buffer.count >= Self.directReadBytes, middleEnd - middleStart >= UInt64(Self.directReadBytes) else {
      try readPages(at: position, into: buffer, runPages: nil)
      return
    }
    let edgeRun = Int(Self.alignment) / Self.pageSize
    if middleStart > position {
      try readPages(
        at: position, into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<Int(middleStart - position)]),
        runPages: edgeRun)
    }
    // Decoded where it goes: no array between the store and the caller's buffer.
    let middle = UnsafeMutableRawBufferPointer(
      rebasing: buffer[Int(middleStart - position)..<Int(middleEnd - position)])
    try source.read(into: middle, at: offset + middleStart)
    try applyOverlay(to: middle, at: middleStart)
    if end > middleEnd {
      try readPages(
        at: middleEnd, into: UnsafeMutableRawBufferPointer(rebasing: buffer[Int(middleEnd - position)...]),
        runPages: edgeRun)
    }
  }

  /// Device positions of the `alignment` boundaries of the volume around `position`.
  /// Only a window that starts on a page boundary of the volume can keep them; any other
  /// (a partition at an odd sector) uses page boundaries.
  private var unit: UInt64 { offset % UInt64(Self.pageSize) == 0 ? Self.alignment : UInt64(Self.pageSize) }

  private func alignDown(_ position: UInt64) -> UInt64 {
    position - min(position, (offset + position) % unit)
  }

  private func alignUp(_ position: UInt64) -> UInt64 {
    let remainder = (offset + position) % unit
    return remainder == 0 ? position : min(size, position + unit - remainder)
  }

  /// Copies from cached pages, loading missing ones: `runPages` from the missing page's
  /// aligned run, or as many as a scan or a jump calls for.
  private func readPages(at position: UInt64, into buffer: UnsafeMutableRawBufferPointer, runPages: Int?) throws {
    let length = UInt64(buffer.count)
    let pageSize = UInt64(Self.pageSize)
    var done: UInt64 = 0
    while done < length {
      let at = position + done
      let page = at / pageSize
      let bytes = try self.page(page, runPages: runPages)
      let within = Int(at - page * pageSize)
      let count = min(Int(length - done), bytes.count - within)
      bytes.withUnsafeBytes { pageBytes in
        UnsafeMutableRawBufferPointer(rebasing: buffer[Int(done)..<(Int(done) + count)])
          .copyMemory(from: UnsafeRawBufferPointer(rebasing: pageBytes[within..<(within + count)]))
      }
      done += UInt64(count)
    }
  }

  private func checkInside(_ position: UInt64, _ length: UInt64) throws {
    guard position <= size, length <= size - position else {
      throw ReelError(
        .corrupt,
        "the file system asks for \(length) bytes at \(position), past its end (\(size) bytes on the volume)",
        remedy: "the volume may be cut short or the file system damaged; check a restored image with `e2fsck -fn`")
    }
  }

  private func page(_ number: UInt64, runPages: Int?) throws -> [UInt8] {
    let pageSize = UInt64(Self.pageSize)
    let lastPage = (size - 1) / pageSize
    // The run starts at the aligned boundary at or before the page and ends on one.
    let aligned = offset % pageSize == 0
    let first = aligned ? alignDown(number * pageSize) / pageSize : number
    // A page another thread is loading is waited for, not loaded again: the writers of
    // `files get` fill neighbouring small files at once, which miss on the same store
    // block together, and each read and decoded it (a fifth of all decoding).
    let found = cache.withLock(when: { !$0.loading.contains(number) }) { cache -> PageLookup in
      if let cached = cache.lookup(number) { return .cached(cached) }
      let sequential = cache.lastRunEnd == number
      let wanted = UInt64(runPages ?? (sequential ? Self.sequentialRunPages : Self.randomRunPages))
      var runEnd =
        aligned
        ? min(lastPage + 1, (alignUp(min(size, (first + wanted) * pageSize)) + pageSize - 1) / pageSize)
        : min(lastPage + 1, number + wanted)
      // Another thread's run starts on a boundary too: this one stops where it starts.
      if let taken = (number..<runEnd).first(where: { cache.loading.contains($0) }) { runEnd = taken }
      cache.loading.formUnion(first..<runEnd)
      return .load(first..<runEnd)
    }
    let run: Range<UInt64>
    switch found {
    case .cached(let bytes): return bytes
    case .load(let claimed): run = claimed
    }
    let start = run.lowerBound * pageSize
    let bytes: [UInt8]
    do {
      var read = try source.read(offset: offset + start, length: Int(min(size, run.upperBound * pageSize) - start))
      try applyOverlay(to: &read, at: start)
      bytes = read
    } catch {
      cache.withLock { $0.loading.subtract(run) }
      cache.broadcast()
      throw error
    }
    var wantedPage: [UInt8] = []
    cache.withLock { cache in
      for index in run {
        let from = Int((index - run.lowerBound) * pageSize)
        let piece = Array(bytes[from..<min(bytes.count, from + Self.pageSize)])
        if index == number {
          wantedPage = piece
        } else if cache.contains(index) {
          continue
        }
        cache.insert(index, piece, capacity: Self.capacityPages, asked: index == number)
      }
      cache.loading.subtract(run)
      cache.lastRunEnd = run.upperBound
    }
    cache.broadcast()
    return wantedPage
  }

  private enum PageLookup {
    case cached([UInt8])
    case load(Range<UInt64>)
  }

  /// Replaces the overlaid blocks in `bytes` (read from `position`) with their logged
  /// copies, read straight from the source (never through the overlay), a run of
  /// consecutive copies in one read.
  private func applyOverlay(to bytes: inout [UInt8], at position: UInt64) throws {
    guard !overlay.isEmpty else { return }
    try bytes.withUnsafeMutableBytes { try applyOverlay(to: $0, at: position) }
  }

  private func applyOverlay(to bytes: UnsafeMutableRawBufferPointer, at position: UInt64) throws {
    guard !overlay.isEmpty, !bytes.isEmpty else { return }
    let end = position + UInt64(bytes.count)
    var wanted: [(block: UInt64, entry: OverlayBlock)] = []
    for block in (position / overlayBlockSize)...((end - 1) / overlayBlockSize) {
      if let entry = overlay[block] { wanted.append((block, entry)) }
    }
    guard !wanted.isEmpty else { return }
    wanted.sort { $0.entry.position < $1.entry.position }
    var index = 0
    while index < wanted.count {
      var last = index
      while last + 1 < wanted.count {
        let next: UInt64 = wanted[last + 1].entry.position
        guard next == wanted[last].entry.position + overlayBlockSize else { break }
        last += 1
      }
      let runStart = wanted[index].entry.position
      let logged = try source.read(offset: offset + runStart, length: Int(overlayBlockSize) * (last - index + 1))
      for (block, entry) in wanted[index...last] {
        let from = Int(entry.position - runStart)
        let content = entry.location.content(fromLogged: Array(logged[from..<(from + Int(overlayBlockSize))]))
        let blockStart = block * overlayBlockSize
        let copyFrom = max(position, blockStart)
        let copyTo = min(end, blockStart + overlayBlockSize)
        content[Int(copyFrom - blockStart)..<Int(copyTo - blockStart)].withUnsafeBytes {
          UnsafeMutableRawBufferPointer(rebasing: bytes[Int(copyFrom - position)..<Int(copyTo - position)])
            .copyMemory(from: $0)
        }
      }
      index = last + 1
    }
  }
}

/// Pages by number with the time each was last used; the least recently used quarter
/// goes when the cache is full (one sort per many inserts, not a list per hit). Pages a
/// run brought in beside the one asked for count as older, by about as many uses as a
/// scan makes through a full cache, until they are read: a walk over many folders
/// (`find` through `reel mount`) reads one page of most runs, and the rest would
/// otherwise push out the pages it comes back to.
private struct PageCache: Sendable {
  private var pages: [UInt64: (bytes: [UInt8], used: UInt64)] = [:]
  private var clock: UInt64
  /// The page after the last run loaded, to tell a scan from a jump.
  var lastRunEnd: UInt64? = nil
  /// Pages a thread is reading from the source now.
  var loading: Set<UInt64> = []
  private let handicap: UInt64

  init(capacity: Int) {
    handicap = UInt64(capacity) * 16
    clock = handicap
  }

  mutating func lookup(_ number: UInt64) -> [UInt8]? {
    guard let entry = pages[number] else { return nil }
    clock += 1
    pages[number] = (entry.bytes, clock)
    return entry.bytes
  }

  func contains(_ number: UInt64) -> Bool { pages[number] != nil }

  mutating func insert(_ number: UInt64, _ bytes: [UInt8], capacity: Int, asked: Bool) {
    clock += 1
    pages[number] = (bytes, asked ? clock : clock - handicap)
    guard pages.count > capacity else { return }
    let oldest = pages.sorted { $0.value.used < $1.value.used }.prefix(capacity / 4)
    for (key, _) in oldest { pages[key] = nil }
  }
}
