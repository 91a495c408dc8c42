import ReelCore

/// An ext2, ext3 or ext4 file system inside a volume, read with libext2fs through a
/// read-only io_manager. If the file system needs recovery its journal is replayed into an
/// overlay in memory first, so it reads as the kernel would show it after mounting.
///
/// libext2fs is not thread-safe: every call into it happens under `state`'s lock. File
/// contents are mapped to physical runs under the lock and read outside it, in a few
/// large reads rather than block by block.
package final class Ext4FileSystem: FileSystemReading {
  package let info: FileSystemInfo
  package let rootInode: UInt64 = 2
  private let device: BlockDevice
  private let state: Locked<State>

  private struct State: @unchecked Sendable {
    let session: Ext2fsSession
    var maps = RecentlyUsed<UInt64, FileMap>(capacity: 64)
    var directories = RecentlyUsed<UInt64, [FileName: DirectoryEntry]>(capacity: 16)
  }

  /// Opens the file system `device` holds; `signature` is what libblkid found there.
  init(device: BlockDevice, signature: ProbedSignature, partition: Int?) throws {
    var session = try Ext2fsSession(device: device)
    var replayed = 0
    if session.needsRecovery && session.hasJournal {
      guard session.journalInode != 0 else {
        throw ReelError(
          .incompatible,
          "the \(signature.type) file system needs its journal replayed, and the journal is on another device",
          remedy: VolumeFiles.kernelRemedy)
      }
      let (overlay, transactions) = try Self.replayJournal(session)
      if !overlay.isEmpty {
        session = try Ext2fsSession(device: device.overlaid(overlay, blockSize: session.blockSize))
      }
      replayed = transactions
    }
    self.device = session.device
    info = FileSystemInfo(
      type: signature.type, label: signature.label, uuid: signature.uuid, blockSize: session.blockSize,
      partition: partition, offset: device.offset, size: device.size, replayedTransactions: replayed)
    state = Locked(State(session: session))
  }

  /// What mounting would write home from the internal journal, as where each block's
  /// new content lies on the device: the journal is read through its inode's block map,
  /// and nothing is copied into memory.
  private static func replayJournal(
    _ session: Ext2fsSession
  ) throws -> (overlay: [UInt64: BlockDevice.OverlayBlock], transactions: Int) {
    let journal = try session.inode(session.journalInode)
    let map = try session.fileMap(journal)
    let blockSize = UInt64(session.blockSize)
    let device = session.device
    func position(_ block: UInt64) throws -> UInt64 {
      guard let run = map.run(containing: block), !run.unwritten else {
        throw ReelError(
          .corrupt, "journal block \(block) is not mapped in the journal inode \(session.journalInode)",
          remedy: "check a restored image of this point with `e2fsck -fn`")
      }
      return (run.physical + block - run.logical) * blockSize
    }
    let replay = try JournalReplay.locate(
      blockSize: Int(blockSize), blockCount: journal.size / blockSize, fileSystemBlockCount: session.blockCount
    ) { block in
      try device.read(at: try position(block), length: Int(blockSize))
    }
    var overlay: [UInt64: BlockDevice.OverlayBlock] = [:]
    for (home, location) in replay.locations {
      overlay[home] = BlockDevice.OverlayBlock(position: try position(location.journalBlock), location: location)
    }
    return (overlay, replay.transactions)
  }

  private func withSession<Result>(_ body: (inout State) throws -> Result) throws -> Result {
    try state.withLock { try body(&$0) }
  }

  package func attributes(of inode: UInt64) throws -> FileAttributes {
    try withSession { state in
      let session = state.session
      return try session.inode(inode).attributes(blockSize: session.blockSize, hugeFileFeature: session.hasHugeFiles)
    }
  }

  package func entries(of directory: UInt64) throws -> [DirectoryEntry] {
    try withSession { state in try Self.entries(of: directory, state.session) }
  }

  private static func entries(of directory: UInt64, _ session: Ext2fsSession) throws -> [DirectoryEntry] {
    let node = try session.inode(directory)
    guard node.kind == .directory else { throw ReelError(.usage, "inode \(directory) is not a directory") }
    if node.isEncrypted { throw encrypted(directory, "its names") }
    var result: [DirectoryEntry] = []
    for raw in try session.directoryEntries(directory) where raw.name != [0x2E] && raw.name != [0x2E, 0x2E] {
      let kind: FileKind
      if session.hasFileTypes, let known = Self.kind(fileType: raw.fileType) {
        kind = known
      } else {
        kind = try session.inode(UInt64(raw.inode)).kind ?? .regular
      }
      result.append(DirectoryEntry(name: FileName(raw.name), inode: UInt64(raw.inode), kind: kind))
    }
    return result
  }

  /// At most this much of a folder's blocks is read ahead: a listing of a few thousand names.
  static let folderReadAheadBytes = 256 << 10

  package func readAhead(directory: UInt64) {
    // Each step finds under the lock where the next blocks are, and reads them outside it.
    guard let position = try? withSession({ $0.session.inodePosition(directory) }) else { return }
    guard (try? device.read(at: position, length: 1)) != nil else { return }
    let pieces = try? withSession { state -> [(physical: UInt64, length: Int)] in
      let node = try state.session.inode(directory)
      guard node.kind == .directory, !node.hasInlineData, !node.isEncrypted else { return [] }
      let blockSize = UInt64(state.session.blockSize)
      var pieces: [(physical: UInt64, length: Int)] = []
      var left = Self.folderReadAheadBytes
      for run in try Self.map(of: node, &state).runs where !run.unwritten && left > 0 {
        let length = Int(min(UInt64(left), run.count * blockSize))
        pieces.append((run.physical * blockSize, length))
        left -= length
      }
      return pieces
    }
    for piece in pieces ?? [] where (try? device.read(at: piece.physical, length: piece.length)) == nil { return }
  }

  private static func kind(fileType: UInt8) -> FileKind? {
    switch fileType {
    case 1: .regular
    case 2: .directory
    case 3: .characterDevice
    case 4: .blockDevice
    case 5: .fifo
    case 6: .socket
    case 7: .symlink
    default: nil
    }
  }

  /// Exact bytes first; in a casefolded directory (ext4 `casefold`) then as the kernel
  /// would match, approximated by Unicode lowercasing with canonical equivalence.
  package func lookup(_ name: FileName, in directory: UInt64) throws -> DirectoryEntry? {
    try withSession { state in
      let index: [FileName: DirectoryEntry]
      if let cached = state.directories.value(for: directory) {
        index = cached
      } else {
        let entries = try Self.entries(of: directory, state.session)
        index = Dictionary(entries.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        state.directories.insert(index, for: directory)
      }
      if let found = index[name] { return found }
      guard try state.session.inode(directory).isCasefolded else { return nil }
      let folded = name.description.lowercased()
      return index.values.first { $0.name.description.lowercased() == folded }
    }
  }

  package func read(_ inode: UInt64, offset: UInt64, length: Int) throws -> [UInt8] {
    switch try withSession({ try Self.plan(inode, offset: offset, length: length, &$0) }) {
    case .bytes(let bytes):
      return bytes
    case .pieces(let count, let pieces):
      if pieces.count == 1, pieces[0].at == 0, pieces[0].length == count {
        return try device.read(at: pieces[0].physical, length: count)
      }
      var result = [UInt8](repeating: 0, count: count)
      try result.withUnsafeMutableBytes { buffer in
        for piece in pieces {
          try device.read(
            at: piece.physical,
            into: UnsafeMutableRawBufferPointer(rebasing: buffer[piece.at..<(piece.at + piece.length)]))
        }
      }
      return result
    }
  }

  /// Decodes file contents straight into `buffer`: `files get` reuses one buffer per
  /// piece instead of a fresh array that is copied again on the way (both showed in
  /// profiles of `reel pg`'s copy of a cluster).
  package func read(_ inode: UInt64, offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    switch try withSession({ try Self.plan(inode, offset: offset, length: buffer.count, &$0) }) {
    case .bytes(let bytes):
      bytes.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buffer[0..<$0.count]).copyMemory(from: $0) }
      return bytes.count
    case .pieces(let count, let pieces):
      // What no piece covers is a hole: zeros.
      var zeroFrom = 0
      for piece in pieces {
        UnsafeMutableRawBufferPointer(rebasing: buffer[zeroFrom..<piece.at]).initializeMemory(
          as: UInt8.self, repeating: 0)
        try device.read(
          at: piece.physical,
          into: UnsafeMutableRawBufferPointer(rebasing: buffer[piece.at..<(piece.at + piece.length)]))
        zeroFrom = piece.at + piece.length
      }
      UnsafeMutableRawBufferPointer(rebasing: buffer[zeroFrom..<count]).initializeMemory(as: UInt8.self, repeating: 0)
      return count
    }
  }

  /// What a read takes: bytes already in hand (inline data, fast symlinks), or pieces of
  /// the device to copy into a zeroed buffer (what is in no piece is a hole).
  private enum ReadPlan {
    case bytes([UInt8])
    case pieces(count: Int, [(at: Int, length: Int, physical: UInt64)])
  }

  private static func plan(_ inode: UInt64, offset: UInt64, length: Int, _ state: inout State) throws -> ReadPlan {
    let session = state.session
    let node = try session.inode(inode)
    if node.kind == .directory { throw ReelError(.usage, "inode \(inode) is a directory, not a file") }
    if node.isEncrypted { throw encrypted(inode, "its content") }
    guard offset < node.size, length > 0 else { return .bytes([]) }
    let count = Int(min(UInt64(length), node.size - offset))
    if node.hasInlineData || node.isFastSymlink {
      let bytes = node.hasInlineData ? try session.inlineData(node) : Array(node.blockArea.prefix(Int(node.size)))
      let from = min(bytes.count, Int(offset))
      var slice = Array(bytes[from..<min(bytes.count, from + count)])
      slice += [UInt8](repeating: 0, count: count - slice.count)
      return .bytes(slice)
    }
    let map = try self.map(of: node, &state)
    let blockSize = UInt64(session.blockSize)
    let end = offset + UInt64(count)
    var pieces: [(at: Int, length: Int, physical: UInt64)] = []
    var index = map.firstRun(endingAfter: offset / blockSize)
    while index < map.runs.count {
      let run = map.runs[index]
      index += 1
      let runStart = run.logical * blockSize
      guard runStart < end else { break }
      guard !run.unwritten else { continue }
      let from = max(offset, runStart)
      let to = min(end, runStart + run.count * blockSize)
      guard from < to else { continue }
      let physical = run.physical * blockSize + (from - runStart)
      let at = Int(from - offset)
      if let last = pieces.last, last.at + last.length == at, last.physical + UInt64(last.length) == physical {
        pieces[pieces.count - 1].length += Int(to - from)
      } else {
        pieces.append((at, Int(to - from), physical))
      }
    }
    return .pieces(count: count, pieces)
  }

  private static func map(of node: Ext4Inode, _ state: inout State) throws -> FileMap {
    if let cached = state.maps.value(for: node.number) { return cached }
    let map = try state.session.fileMap(node)
    state.maps.insert(map, for: node.number)
    return map
  }

  package func symlinkTarget(of inode: UInt64) throws -> [UInt8] {
    let size = try withSession { state -> Int in
      let node = try state.session.inode(inode)
      guard node.kind == .symlink else { throw ReelError(.usage, "inode \(inode) is not a symbolic link") }
      if node.isEncrypted { throw Self.encrypted(inode, "its target") }
      return Int(clamping: node.size)
    }
    return try read(inode, offset: 0, length: size)
  }

  package func extendedAttributes(of inode: UInt64) throws -> [ExtendedAttribute] {
    try withSession { state in
      _ = try state.session.inode(inode)
      return try state.session.extendedAttributes(inode)
    }
  }

  package func dataRanges(of inode: UInt64) throws -> [Range<UInt64>] {
    try withSession { state in
      let node = try state.session.inode(inode)
      guard node.size > 0 else { return [] }
      if node.hasInlineData || node.isFastSymlink { return [0..<node.size] }
      let blockSize = UInt64(state.session.blockSize)
      var ranges: [Range<UInt64>] = []
      for run in try Self.map(of: node, &state).runs where !run.unwritten {
        let start = run.logical * blockSize
        guard start < node.size else { break }
        let range = start..<min(node.size, start + run.count * blockSize)
        if let last = ranges.last, last.upperBound == range.lowerBound {
          ranges[ranges.count - 1] = last.lowerBound..<range.upperBound
        } else {
          ranges.append(range)
        }
      }
      return ranges
    }
  }

  private static func encrypted(_ inode: UInt64, _ what: String) -> ReelError {
    ReelError(
      .incompatible, "inode \(inode) is encrypted (ext4 fscrypt); reel cannot read \(what)",
      remedy: VolumeFiles.kernelRemedy + ", then unlock it with the key (fscrypt unlock)")
  }
}

extension FileMap {
  /// The index of the first run that ends after logical block `block` (runs.count if none).
  func firstRun(endingAfter block: UInt64) -> Int {
    var low = 0
    var high = runs.count
    while low < high {
      let middle = (low + high) / 2
      if runs[middle].logical + runs[middle].count <= block { low = middle + 1 } else { high = middle }
    }
    return low
  }

  func run(containing block: UInt64) -> Run? {
    let index = firstRun(endingAfter: block)
    guard index < runs.count, runs[index].logical <= block else { return nil }
    return runs[index]
  }
}
