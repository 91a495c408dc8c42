import Foundation
import ReelArchive
import ReelCodec
import ReelCore
import ReelIO
import ReelStore

/// What is at the start of a medium.
package enum LabelState: Sendable, Equatable {
  /// Nothing recorded: ready to be labeled.
  case blank
  /// Data that is not a Reel label; the reason says what was found.
  case foreign(String)
  case labeled(MediaLabel)
}

/// A sealed archive about to be exported: its file, length and manifest.
package struct SourceArchive: Sendable {
  package var path: String
  package var size: UInt64
  package var manifest: ArchiveManifest
  /// The SHA-256 the store recorded when it sealed this archive: media that must be told
  /// the hash before the bytes go out (object metadata) take it from here instead of
  /// reading the file twice, and check the bytes they send against it.
  package var sealedSHA256: SHA256Digest?
  /// The CRC-32C recorded with it, when the seal read the archive back (catalog schema 12
  /// on): checking the bytes sent against it costs a tenth of hashing them.
  package var sealedCRC32C: UInt32?

  /// Reads the archive's manifest from its first bytes; refuses anything not a Reel archive.
  package init(path: String, store: Catalog? = nil) throws {
    self.path = path
    size = try PosixFile.openForReading(path).size()
    manifest = try ArchiveVerifier.readManifest(path: path)
    // Its names go into a cold-storage folder's file names and every catalog written.
    try ArchiveSummary(manifest).validate(describing: path)
    let sealed = try store?.sealedChecksums(id: manifest.archiveID, size: size)
    sealedSHA256 = sealed?.sha256
    sealedCRC32C = sealed?.crc32c
  }

  package var summary: ArchiveSummary { ArchiveSummary(manifest) }
}

/// How writing one archive ended.
package enum AppendResult: Sendable, Equatable {
  /// Written whole as this file; `sha256` of the bytes sent. `endOfMedia` when the last
  /// block crossed early warning: the archive is whole, but nothing more fits.
  case written(file: Int, sha256: String, endOfMedia: Bool)
  /// End of media: the archive was abandoned, as tape file `file` if anything was written.
  case endOfMedia(file: Int?)
}

/// One labeled medium — a cartridge in a (virtual) drive or a cold-storage folder — with
/// the operations export, catalog and scan need. Where bytes live stays behind this, so
/// another kind of medium (an object store) can come later without touching the logic.
package protocol MediaVolume: AnyObject {
  /// How a person names it, e.g. `vtape:/srv/vtl/c1.vtape`.
  var address: String { get }
  var isWriteProtected: Bool { get throws }
  /// What is missing for the medium to be there at all (a cold-storage folder that does not
  /// exist), so "blank" is not said of something nobody created; nil when it is there.
  var missing: String? { get }
  func readLabel() throws -> LabelState
  /// Writes a new label; everything the medium held is gone afterwards.
  func writeLabel(_ label: MediaLabel) throws
  /// Takes a scratch medium into a set: the label with its set and sequence, then the
  /// catalogs of the set's earlier cartridges. Returns the catalog entries of both.
  func joinSet(label: MediaLabel, earlier: [CartridgeCatalog]) throws -> [TapeFileEntry]
  /// Gets ready to append after what is recorded.
  func prepareAppend() throws
  func append(_ archive: SourceArchive, dataBlockSize: Int) throws -> AppendResult
  /// Reads the file back and verifies it; the stream is cut at `expectedSize`.
  func verify(file: Int, expectedSize: UInt64, describing what: String) throws -> VerifiedArchive
  /// Writes the catalog, adding its own entry first where catalogs are numbered files.
  func writeCatalog(_ catalog: inout CartridgeCatalog) throws
  /// The newest catalog (fast: the last file of a tape, `catalog.json` of a folder).
  func readCatalog() throws -> CartridgeCatalog
  /// Rebuilds the catalog by reading every file, like Bacula's bscan.
  func scan() throws -> CartridgeCatalog
  /// The bytes of the archive in `file`, cut at `size` when known (tape pads the last block).
  func openArchive(file: Int, size: UInt64?) throws -> any ArchiveByteSource
}

extension MediaVolume {
  package var missing: String? { nil }

  /// The catalog of a folder or bucket whose catalog file is missing: its label (and the
  /// set's earlier catalogs) alone, which is all it can be while it holds no archive.
  func catalogWithoutCatalogFile(label: MediaLabel, hasSetCatalogs: Bool, holdsArchives: Bool) throws
    -> CartridgeCatalog
  {
    var catalog = CartridgeCatalog(label: label, files: [TapeFileEntry(file: 0, kind: .label)])
    if hasSetCatalogs { catalog.files.append(TapeFileEntry(file: 1, kind: .setCatalogs)) }
    if holdsArchives {
      throw ReelError(
        .corrupt, "\(address) holds archives but no catalog.json",
        remedy: "rebuild the catalog: reel media catalog \(address) --scan")
    }
    catalog.updateSet(earlier: [])
    return catalog
  }

  /// The label, or an error that says what to do when there is none.
  func requireLabel() throws -> MediaLabel {
    switch try readLabel() {
    case .labeled(let label): return label
    case .blank:
      if let missing {
        throw ReelError(
          .notFound, "\(address): \(missing)",
          remedy: "check the path; a new folder is made with reel media label \(address) --name LABEL")
      }
      throw ReelError(
        .notFound, "\(address) is not labeled (blank)",
        remedy: "label it first: reel media label \(address) --name LABEL")
    case .foreign(let reason):
      throw ReelError(
        .notFound, "\(address) is not labeled by Reel: \(reason)",
        remedy: "check it is the right medium; to reuse it, reel media label \(address) --name LABEL --force")
    }
  }
}
