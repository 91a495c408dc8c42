import Foundation
import ReelArchive
import ReelCore
import ReelStore

/// One archive some medium offers: what its manifest (or the media catalog's copy of it)
/// says, and where it is.
@dynamicMemberLookup
package struct ArchiveOffer: Sendable, Equatable {
  package var archive: ArchiveSummary
  package var size: UInt64?
  /// How a person finds it: a file path, or a cartridge label and tape file number.
  package var location: String
  /// Supply-specific handle (a path, a tape file number).
  package var handle: String

  package init(_ archive: ArchiveSummary, size: UInt64?, location: String, handle: String) {
    self.archive = archive
    self.size = size
    self.location = location
    self.handle = handle
  }

  package subscript<Value>(dynamicMember keyPath: KeyPath<ArchiveSummary, Value>) -> Value {
    archive[keyPath: keyPath]
  }
}

/// Something that holds sealed archives and can hand them out one at a time: a folder, a
/// single file, a tape cartridge. Media implement this (ReelMedia); rehydration uses it.
package protocol ArchiveSupply: AnyObject {
  var description: String { get }
  /// Every archive it holds (from its catalog, or by reading it when the catalog is lost).
  func offers() throws -> [ArchiveOffer]
  /// The archive's bytes from its first one.
  func open(_ offer: ArchiveOffer) throws -> any ArchiveByteSource
  /// The file on this machine that holds exactly the archive's bytes, when there is one:
  /// a damaged archive is repaired from it directly instead of from a copy read first.
  func localFile(of offer: ArchiveOffer) -> String?
  /// True for media that leave the drive (cartridges): an archive that cannot be imported
  /// yet is copied aside so the medium need not come back.
  var isRemovable: Bool { get }
  /// The media sets its media belong to, as "set name" → the labels of its cartridges
  /// (empty for plain folders of archives).
  func mediaSets() throws -> [String: [String]]
  /// Where archives not on these media are, as far as their catalogs know
  /// (archive ID → e.g. "cartridge DR0002 of media set weekly").
  func whereabouts() throws -> [String: String]
  /// The copy `offer` is on these media, as the store records copies on media, with the
  /// cartridge (or labeled folder) holding it; nil where the media belong to no media set
  /// (a plain folder of archive files, a scratch cartridge) or their catalog names other
  /// bytes. `sha256` and `size` are those of the bytes read, which passed every check with
  /// the key.
  func copy(of offer: ArchiveOffer, sha256: String, size: UInt64) throws -> SupplyCopy?
  /// Every archive the media's catalogs mention, whole or not (after `offers()`): how a
  /// chain whose newest archives were withheld is noticed. Unauthenticated, used only to warn.
  func namedArchives() throws -> [ArchiveSummary]
  /// What `offers()` found wrong with the media themselves, one sentence each: a cartridge
  /// whose label and catalog cannot be read, one that holds nothing to import, a tape
  /// file a scan found damaged.
  func mediaProblems() -> [String]
}

/// A byte source that knows which stretches of what it handed out the medium could not
/// read (handed out as zeros, so later bytes keep their offsets).
package protocol UnreadableStretches: AnyObject {
  var unreadable: [UnreadableRange] { get }
}

/// A copy on media that rehydration read, and where it is.
package struct SupplyCopy: Sendable, Codable {
  package var copy: ArchiveCopy
  package var cartridge: CartridgeRecord

  package init(copy: ArchiveCopy, cartridge: CartridgeRecord) {
    self.copy = copy
    self.cartridge = cartridge
  }
}

extension ArchiveSupply {
  package var isRemovable: Bool { false }
  package func localFile(of offer: ArchiveOffer) -> String? { nil }
  package func copy(of offer: ArchiveOffer, sha256: String, size: UInt64) throws -> SupplyCopy? { nil }
  package func mediaSets() throws -> [String: [String]] { [:] }
  package func whereabouts() throws -> [String: String] { [:] }
  package func namedArchives() throws -> [ArchiveSummary] { [] }
  package func mediaProblems() -> [String] { [] }
}

/// A folder of `.reel.tar` files (a cold-storage folder, an extracted set), or one file.
package final class ArchiveFiles: ArchiveSupply {
  package let path: String

  package init(path: String) { self.path = path }

  package var description: String { path }

  package func offers() throws -> [ArchiveOffer] {
    var isFolder: ObjCBool = false
    guard FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) else {
      throw ReelError(
        .notFound, "\(path): no such file or folder", remedy: "give a folder of archives or an archive file")
    }
    let files =
      isFolder.boolValue
      ? try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasSuffix(ArchiveFormat.fileSuffix) }
        .sorted().map { path + "/" + $0 }
      : [path]
    problems = []
    return try files.compactMap { file in
      let manifest: ArchiveManifest
      do {
        manifest = try ArchiveVerifier.readManifest(path: file)
      } catch let error as ReelError where error.kind == .corrupt || error.kind == .incompatible {
        // A damaged head: the archive's parity may still give its manifest back.
        guard let repaired = try? ArchiveMending.manifest(ofDamaged: file) else {
          problems.append("\(file): \(error.message); it was not read")
          return nil
        }
        manifest = repaired
      }
      let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? UInt64) ?? nil
      return ArchiveOffer(ArchiveSummary(manifest), size: size, location: file, handle: file)
    }
  }

  private var problems: [String] = []

  package func mediaProblems() -> [String] { problems }

  package func open(_ offer: ArchiveOffer) throws -> any ArchiveByteSource {
    try FileArchiveSource(path: offer.handle)
  }

  package func localFile(of offer: ArchiveOffer) -> String? { offer.handle }

  /// Beside an archive rehydration set aside (`<store>/incoming/NAME.reel.tar`), the copy
  /// on media it was read from (`NAME.reel.tar.copy.json`, a `SupplyCopy` as JSON).
  static let copySuffix = ".copy.json"

  /// The copy on media a set-aside archive was read from, when its bytes are still those.
  package func copy(of offer: ArchiveOffer, sha256: String, size: UInt64) throws -> SupplyCopy? {
    guard let data = FileManager.default.contents(atPath: offer.handle + Self.copySuffix),
      let found = try? JSONDecoder().decode(SupplyCopy.self, from: data),
      found.copy.archiveID == offer.archiveID, found.copy.sha256 == sha256, found.copy.size == size
    else { return nil }
    return found
  }
}
