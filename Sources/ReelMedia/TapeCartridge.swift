import Foundation
import ReelArchive
import ReelCodec
import ReelCore
import ReelIO

/// The cartridge in a tape drive, laid out as docs/tape-format.md says: file 0 the label,
/// file 1 the set's earlier catalogs, then archives (one per file) and catalogs. The same
/// code drives a `VirtualTapeDrive` and a `LinuxTapeDrive`.
final class TapeCartridge: MediaVolume {
  package let drive: TapeDrive
  package var address: String { drive.name }

  /// The largest JSON file (label, catalogs) read back whole.
  static let jsonLimit = 64 << 20

  /// Set when the label could not be read and was rebuilt from the catalog at the end.
  private(set) var labelDamage: String?

  package init(drive: TapeDrive) { self.drive = drive }

  package var isWriteProtected: Bool {
    get throws { try drive.status().writeProtected }
  }

  package func readLabel() throws -> LabelState {
    labelDamage = nil
    try drive.rewind()
    try drive.setBlockSize(0)
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
    defer { buffer.deallocate() }
    let result: TapeRead
    do {
      result = try drive.read(into: buffer)
    } catch {
      return try labelFromCatalog() ?? .foreign("its first block cannot be read as a label (\(error))")
    }
    switch result {
    case .endOfData: return .blank
    case .filemark: return .foreign("tape file 0 is empty")
    case .unreadable:
      return try labelFromCatalog()
        ?? .foreign("its label cannot be read (a media error) and no catalog at its end names it")
    case .data(let count):
      guard let label = try? MediaLabel.parse(UnsafeRawBufferPointer(rebasing: buffer[0..<count])) else {
        return try labelFromCatalog() ?? .foreign("tape file 0 is not a Reel label")
      }
      return .labeled(label)
    }
  }

  /// When the start of the cartridge is damaged, the catalog at its end still says whose
  /// it is: the label rebuilt from it, through the same checks as a label read from tape.
  /// Only a cartridge whose last file is a Reel catalog gets one.
  private func labelFromCatalog() throws -> LabelState? {
    guard (try? drive.seekStartOfLastFile()) ?? 0 > 0, let bytes = try? readWholeFile() ?? nil,
      let catalog = try? CartridgeCatalog.decode(bytes)
    else { return nil }
    let rebuilt = MediaLabel(
      cartridgeID: catalog.cartridge.id, name: catalog.cartridge.label, mediaSet: catalog.mediaSet?.name,
      mediaSetID: catalog.mediaSet?.id, sequence: catalog.cartridge.sequence, labeled: Timestamp(nanoseconds: 0))
    guard let checked = try? MediaLabel.parse(Array(rebuilt.text(forTape: true).utf8)) else { return nil }
    labelDamage = "its label (tape file 0) cannot be read; the catalog at its end says it is \(checked.name)"
    return .labeled(checked)
  }

  package func writeLabel(_ label: MediaLabel) throws {
    guard try !isWriteProtected else { throw drive.writeProtectedError() }
    try drive.rewind()
    try writeTextFile(try label.block(forTape: true))
  }

  package func joinSet(label: MediaLabel, earlier: [CartridgeCatalog]) throws -> [TapeFileEntry] {
    try writeLabel(label)
    try writeTextFile(paddedToBlocks(try SetCatalogs(catalogs: earlier).json(), blockSize: MediaLabel.blockSize))
    return [TapeFileEntry(file: 0, kind: .label), TapeFileEntry(file: 1, kind: .setCatalogs)]
  }

  package func prepareAppend() throws {
    guard try !isWriteProtected else { throw drive.writeProtectedError() }
    try drive.seekEndOfData()
  }

  package func append(_ archive: SourceArchive, dataBlockSize: Int) throws -> AppendResult {
    let file = try drive.status().fileNumber
    try drive.setBlockSize(dataBlockSize)
    let source = try PosixFile.openForReading(archive.path)
    let hasher = SHA256Hasher()
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: dataBlockSize, alignment: 4096)
    defer { buffer.deallocate() }
    var offset: UInt64 = 0
    var abandoned = false
    var pastEarlyWarning = false
    while offset < archive.size {
      let got = try source.read(into: buffer, at: offset)
      guard got > 0 else {
        throw ReelError(.io, "\(archive.path) became shorter while it was being exported", remedy: "export it again")
      }
      hasher.update(UnsafeRawBufferPointer(rebasing: buffer[0..<got]))
      // The last block is padded with zeros: a tape only takes whole blocks.
      if got < dataBlockSize {
        (buffer.baseAddress! + got).initializeMemory(as: UInt8.self, repeating: 0, count: dataBlockSize - got)
      }
      offset += UInt64(got)
      do {
        if try drive.write(UnsafeRawBufferPointer(buffer)) == .earlyWarning {
          // Cut off unless that was the archive's last block: nothing is ever split.
          pastEarlyWarning = true
          abandoned = offset < archive.size
          if abandoned { break }
        }
      } catch let error as ReelError where error.kind == .mediaFull {
        abandoned = true
        break
      }
    }
    try drive.writeFilemark()
    return abandoned
      ? .endOfMedia(file: file) : .written(file: file, sha256: hasher.finish().hex, endOfMedia: pastEarlyWarning)
  }

  package func verify(file: Int, expectedSize: UInt64, describing what: String) throws -> VerifiedArchive {
    var source = try openArchive(file: file, size: expectedSize)
    let verified = try ArchiveCheck.verify(&source, describing: what)
    try (source as? TapeFileSource)?.drain()
    return verified
  }

  package func openArchive(file: Int, size: UInt64?) throws -> any ArchiveByteSource {
    try position(atStartOf: file)
    try drive.setBlockSize(0)
    return TapeFileSource(drive: drive, recordSize: 16 << 20, limit: size)
  }

  package func writeCatalog(_ catalog: inout CartridgeCatalog) throws {
    try drive.seekEndOfData()
    let file = try drive.status().fileNumber
    catalog.files.append(TapeFileEntry(file: file, kind: .catalog))
    catalog.set = catalog.set.dropLast() + [catalog.member]
    try writeTextFile(paddedToBlocks(try catalog.json(), blockSize: MediaLabel.blockSize))
  }

  package func readCatalog() throws -> CartridgeCatalog {
    let label = try requireLabel()
    if label.parity != nil { return try parityCatalog(label, checkParity: false) }
    let last = try drive.seekStartOfLastFile()
    var catalog = CartridgeCatalog(label: label, files: [TapeFileEntry(file: 0, kind: .label)])
    if last == 0 {
      catalog.updateSet(earlier: [])
      return catalog
    }
    let bytes = try? readWholeFile() ?? nil
    if let bytes, let newest = try? CartridgeCatalog.decode(bytes) { return newest }
    // A cartridge just taken into a set: label and earlier catalogs, nothing else yet.
    if last == 1, let bytes, let earlier = try? SetCatalogs.decode(bytes) {
      catalog.files.append(TapeFileEntry(file: 1, kind: .setCatalogs))
      catalog.updateSet(earlier: earlier.catalogs)
      return catalog
    }
    throw ReelError(
      .corrupt,
      "the last file (\(last)) on \(address) is not a Reel catalog: an export was cut short, "
        + "or something else wrote to the cartridge",
      remedy: "rebuild the catalog by reading the whole cartridge: reel media catalog \(address) --scan")
  }

  package func scan() throws -> CartridgeCatalog {
    let label = try requireLabel()
    if label.parity != nil { return try parityCatalog(label, checkParity: true) }
    var catalog = CartridgeCatalog(label: label, files: [TapeFileEntry(file: 0, kind: .label)])
    var earlier: [CartridgeCatalog] = []
    var newestCatalog: CartridgeCatalog?
    var unreadableArchives: Set<Int> = []
    // From the start (a label rebuilt from the end catalog left the drive there).
    try drive.rewind()
    try drive.spaceForward(files: 1)
    var file = 1
    while true {
      try drive.setBlockSize(0)
      let source = TapeFileSource(drive: drive, recordSize: 16 << 20)
      var head = [UInt8](repeating: 0, count: 512)
      let got = try head.withUnsafeMutableBytes { try source.readFully(into: $0) }
      if got == 0 && source.atEndOfData { break }
      var entry = TapeFileEntry(file: file, kind: .foreign)
      if head.first == UInt8(ascii: "{") {
        var bytes = Array(head[0..<got])
        try readRest(source, into: &bytes)
        if let value = try? CartridgeCatalog.decode(bytes) {
          entry.kind = .catalog
          newestCatalog = value
        } else if let value = try? SetCatalogs.decode(bytes) {
          entry.kind = .setCatalogs
          earlier = value.catalogs
        } else {
          entry.note = "JSON that is not a Reel catalog"
        }
      } else if got == 512, TarReader.isHeader(head) {
        var stream = PrefixedSource(prefix: Array(head[0..<got]), rest: source)
        entry.kind = .archive
        do {
          let verified = try ArchiveCheck.verify(&stream, describing: "tape file \(file) of \(address)")
          entry.state = .complete
          entry.archive = ArchiveSummary(verified.manifest)
          entry.size = verified.totalBytes
          entry.sha256 = verified.sha256
        } catch {
          entry.state = .damaged
          entry.archive = try? ArchiveSummary(ArchivePeek.manifest(fromPrefix: source.prefix, describing: ""))
          entry.note = "\(error)"
          if entry.archive == nil { entry = TapeFileEntry(file: file, kind: .foreign, note: "\(error)") }
        }
      } else {
        entry.note = got == 0 ? "an empty tape file" : "neither a Reel archive nor a Reel catalog"
      }
      try source.drain()
      if source.unreadable.contains(where: { !$0.endOfData }) { unreadableArchives.insert(catalog.files.count) }
      if !source.unreadable.isEmpty {
        let lost = source.unreadable.map(\.sentence).joined(separator: "; ")
        entry.note = entry.note.map { "\(lost); \($0)" } ?? lost
      }
      catalog.files.append(entry)
      file += 1
    }
    // An archive that fails verification as the last archive was cut off: at end of
    // media, or by an export that stopped; one before others was damaged afterwards.
    // One that lost records to a media error was damaged, wherever it is.
    // The newest catalog on the cartridge knowing it complete also means damaged later.
    if let last = catalog.files.lastIndex(where: { $0.kind == .archive }), catalog.files[last].state == .damaged,
      !unreadableArchives.contains(last),
      newestCatalog?.files.first(where: { $0.file == catalog.files[last].file })?.state != .complete
    {
      catalog.files[last].state = .incomplete
      catalog.files[last].note = nil
    }
    catalog.closed = (newestCatalog?.closed ?? false) || catalog.files.contains { $0.state == .incomplete }
    catalog.updateSet(earlier: earlier)
    return catalog
  }

  /// Moves to the first block of `file`, counting from the end of data or the start.
  func position(atStartOf file: Int) throws {
    // File numbers come from catalogs, which anyone holding the cartridge can write.
    guard (0..<(1 << 24)).contains(file) else {
      throw ReelError(.corrupt, "\(address): tape file \(file) is not a file number a cartridge has")
    }
    try drive.seekEndOfData()
    let files = try drive.status().fileNumber
    if file == 0 {
      try drive.rewind()
    } else if files - file >= 1 && files - file < file {
      try drive.spaceBack(files: files - file + 1)
      try drive.spaceForward(files: 1)
    } else {
      try drive.rewind()
      try drive.spaceForward(files: file)
    }
  }

  /// Writes a label or JSON file in label-size blocks and closes it with a filemark.
  func writeTextFile(_ bytes: [UInt8]) throws {
    try drive.setBlockSize(MediaLabel.blockSize)
    let outcome = try bytes.withUnsafeBytes { try drive.write($0) }
    _ = outcome  // past early warning there is still room for the small files Reel closes with
    try drive.writeFilemark()
  }

  /// The current file, whole, from here to its filemark, if it is JSON (starts with `{`).
  func readWholeFile() throws -> [UInt8]? {
    try drive.setBlockSize(0)
    let source = TapeFileSource(drive: drive, recordSize: 16 << 20)
    var bytes = [UInt8](repeating: 0, count: 1)
    guard try bytes.withUnsafeMutableBytes({ try source.read(into: $0) }) == 1, bytes[0] == UInt8(ascii: "{") else {
      return nil
    }
    try readRest(source, into: &bytes)
    return bytes
  }

  private func readRest(_ source: TapeFileSource, into bytes: inout [UInt8]) throws {
    var chunk = [UInt8](repeating: 0, count: 1 << 20)
    while true {
      let got = try chunk.withUnsafeMutableBytes { try source.read(into: $0) }
      if got == 0 { return }
      bytes += chunk[0..<got]
      guard bytes.count <= Self.jsonLimit else {
        throw ReelError(.corrupt, "\(address): a catalog larger than \(ByteSize.describe(UInt64(Self.jsonLimit)))")
      }
    }
  }
}

/// Bytes already read from a stream, then the rest of it.
struct PrefixedSource<Rest: ArchiveByteSource>: ArchiveByteSource {
  var prefix: [UInt8]
  var rest: Rest
  private var used = 0

  init(prefix: [UInt8], rest: Rest) {
    self.prefix = prefix
    self.rest = rest
  }

  mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    if used < prefix.count {
      let count = min(buffer.count, prefix.count - used)
      prefix.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress! + used, byteCount: count) }
      used += count
      return count
    }
    return try rest.read(into: buffer)
  }
}
