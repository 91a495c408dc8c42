import Foundation
import ReelArchive
import ReelCodec
import ReelCore
import ReelIO

#if canImport(Glibc)
  import Glibc
#endif

/// A cold-storage folder (`dir:PATH`: a NAS share, an object-store gateway mount): the
/// label in `REEL-LABEL.txt`, the set's earlier catalogs in `set-catalogs.json`, archives
/// in `archives/` as `NNNNNN-NAME.reel.tar` (NNNNNN numbered like tape files, from 2),
/// and `catalog.json`. Every file is written to a temporary name, synced and renamed.
package final class ColdStorageFolder: MediaVolume {
  package let path: String
  package var address: String { "dir:\(path)" }
  var labelPath: String { path + "/REEL-LABEL.txt" }
  var setCatalogsPath: String { path + "/set-catalogs.json" }
  var catalogPath: String { path + "/catalog.json" }
  var archivesPath: String { path + "/archives" }
  private var nextFile = 2

  package init(path: String) { self.path = (path as NSString).standardizingPath }

  /// A folder is write-protected when this process may not write into it.
  package var isWriteProtected: Bool {
    get throws { FileManager.default.fileExists(atPath: path) && access(path, W_OK) != 0 }
  }

  package var missing: String? {
    FileManager.default.fileExists(atPath: path) ? nil : "the folder \(path) does not exist"
  }

  package func readLabel() throws -> LabelState {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else { return .blank }
    guard isFolder.boolValue else { return .foreign("it is a file, not a folder") }
    guard let bytes = FileManager.default.contents(atPath: labelPath) else {
      let contents = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
      return contents.isEmpty ? .blank : .foreign("the folder holds other files and no REEL-LABEL.txt")
    }
    guard let label = try MediaLabel.parse(Array(bytes)) else {
      return .foreign("REEL-LABEL.txt is not a Reel label")
    }
    return .labeled(label)
  }

  package func writeLabel(_ label: MediaLabel) throws {
    guard try !isWriteProtected else { throw writeProtected() }
    try Durable.makeDirectory(path)
    // Relabeling empties the medium, as on tape.
    for old in [catalogPath, setCatalogsPath] where FileManager.default.fileExists(atPath: old) {
      try FileManager.default.removeItem(atPath: old)
    }
    if FileManager.default.fileExists(atPath: archivesPath) { try FileManager.default.removeItem(atPath: archivesPath) }
    try Durable.replaceFile(at: labelPath, with: Array(label.text(forTape: false).utf8))
    try Durable.syncDirectory(path)
  }

  package func joinSet(label: MediaLabel, earlier: [CartridgeCatalog]) throws -> [TapeFileEntry] {
    try writeLabel(label)
    try Durable.replaceFile(at: setCatalogsPath, with: try SetCatalogs(catalogs: earlier).json())
    return [TapeFileEntry(file: 0, kind: .label), TapeFileEntry(file: 1, kind: .setCatalogs)]
  }

  package func prepareAppend() throws {
    guard try !isWriteProtected else { throw writeProtected() }
    try Durable.makeDirectory(archivesPath)
    for name in try FileManager.default.contentsOfDirectory(atPath: archivesPath) where name.hasPrefix(".partial-") {
      try FileManager.default.removeItem(atPath: archivesPath + "/" + name)
    }
    nextFile = (try archiveFiles().map(\.file).max() ?? 1) + 1
  }

  package func append(_ archive: SourceArchive, dataBlockSize: Int) throws -> AppendResult {
    let label = try requireLabel()
    let used = try archiveFiles().reduce(UInt64(0)) { $0 + $1.size }
    if let capacity = label.capacity, used + archive.size > capacity { return .endOfMedia(file: nil) }
    var space = statvfs()
    if statvfs(path, &space) == 0, UInt64(space.f_bavail) * UInt64(space.f_frsize) < archive.size {
      return .endOfMedia(file: nil)
    }
    let file = nextFile
    let name = String(format: "%06d-", file) + archive.summary.fileName
    let partial = archivesPath + "/.partial-" + name
    let hasher = SHA256Hasher()
    do {
      let source = try PosixFile.openForReading(archive.path)
      let target = try PosixFile.createNew(partial)
      let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: dataBlockSize, alignment: 4096)
      defer { buffer.deallocate() }
      var offset: UInt64 = 0
      while offset < archive.size {
        try Interrupt.check()
        let got = try source.read(into: buffer, at: offset)
        guard got > 0 else {
          throw ReelError(.io, "\(archive.path) became shorter while it was being exported", remedy: "export it again")
        }
        let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<got])
        hasher.update(chunk)
        try target.write(chunk, at: offset)
        offset += UInt64(got)
      }
      try target.sync()
    } catch let error as ReelError where error.errno == ENOSPC || error.errno == EDQUOT {
      unlink(partial)
      return .endOfMedia(file: nil)
    } catch let error as ReelError where error.kind == .interrupted {
      unlink(partial)
      throw Interrupt.error("removed the partial copy \(partial); run the same export again to finish")
    } catch {
      unlink(partial)
      throw error
    }
    try Durable.rename(partial, to: archivesPath + "/" + name)
    nextFile += 1
    return .written(file: file, sha256: hasher.finish().hex, endOfMedia: false)
  }

  package func verify(file: Int, expectedSize: UInt64, describing what: String) throws -> VerifiedArchive {
    var source = try openArchive(file: file, size: expectedSize)
    return try ArchiveCheck.verify(&source, describing: what)
  }

  package func openArchive(file: Int, size: UInt64?) throws -> any ArchiveByteSource {
    guard let found = try archiveFiles().first(where: { $0.file == file }) else {
      throw ReelError(.notFound, "\(address) has no archive numbered \(file)")
    }
    return LimitedFileSource(file: try PosixFile.openForReading(found.path), limit: size)
  }

  package func writeCatalog(_ catalog: inout CartridgeCatalog) throws {
    try Durable.replaceFile(at: catalogPath, with: try catalog.json())
  }

  package func readCatalog() throws -> CartridgeCatalog {
    let label = try requireLabel()
    guard let bytes = FileManager.default.contents(atPath: catalogPath) else {
      return try catalogWithoutCatalogFile(
        label: label, hasSetCatalogs: FileManager.default.fileExists(atPath: setCatalogsPath),
        holdsArchives: try !archiveFiles().isEmpty)
    }
    return try CartridgeCatalog.decode(Array(bytes))
  }

  package func scan() throws -> CartridgeCatalog {
    let label = try requireLabel()
    var catalog = CartridgeCatalog(label: label, files: [TapeFileEntry(file: 0, kind: .label)])
    var earlier: [CartridgeCatalog] = []
    if let bytes = FileManager.default.contents(atPath: setCatalogsPath) {
      earlier = try SetCatalogs.decode(Array(bytes)).catalogs
      catalog.files.append(TapeFileEntry(file: 1, kind: .setCatalogs))
    }
    for found in try archiveFiles() {
      let entry = try TapeFileEntry.scanned(file: found.file, describing: found.path) {
        var source = LimitedFileSource(file: try PosixFile.openForReading(found.path), limit: nil)
        return try ArchiveCheck.verify(&source, describing: found.path)
      } manifest: {
        try ArchiveVerifier.readManifest(path: found.path)
      }
      catalog.files.append(entry)
    }
    catalog.closed = (try? readCatalog().closed) ?? false
    catalog.updateSet(earlier: earlier)
    return catalog
  }

  /// The numbered archive files, in order.
  private func archiveFiles() throws -> [(file: Int, path: String, size: UInt64)] {
    guard FileManager.default.fileExists(atPath: archivesPath) else { return [] }
    return try FileManager.default.contentsOfDirectory(atPath: archivesPath).compactMap { name in
      guard !name.hasPrefix("."), let dash = name.firstIndex(of: "-"), let number = Int(name[..<dash]) else {
        return nil
      }
      let full = archivesPath + "/" + name
      let size = (try FileManager.default.attributesOfItem(atPath: full)[.size] as? NSNumber)?.uint64Value ?? 0
      return (number, full, size)
    }.sorted { $0.file < $1.file }
  }

  private func writeProtected() -> ReelError {
    ReelError(
      .io, "\(address) is write-protected (this process may not write into it): nothing was written",
      remedy: "use another folder, or fix its permissions or mount options if writing is really meant")
  }
}

/// A file read from its start, cut at `limit` bytes when given.
struct LimitedFileSource: ArchiveByteSource {
  let file: PosixFile
  var remaining: UInt64
  private var offset: UInt64 = 0

  init(file: PosixFile, limit: UInt64?) {
    self.file = file
    remaining = limit ?? .max
  }

  mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    let wanted = Int(min(UInt64(buffer.count), remaining))
    guard wanted > 0 else { return 0 }
    let count = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<wanted]), at: offset)
    offset += UInt64(count)
    remaining -= UInt64(count)
    return count
  }
}
