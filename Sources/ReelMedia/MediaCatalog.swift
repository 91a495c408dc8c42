import Foundation
import ReelArchive
import ReelCore

/// What an archive is, from its manifest: enough to find it for a restore with no store.
/// Written into media catalogs, so it keeps the manifest's spelling (times as RFC 3339 text,
/// bookmarks as the manifest lists them) rather than an `ArchiveSpan`.
package struct ArchiveSummary: Codable, Sendable, Equatable {
  package var archiveID: ArchiveID
  package var volume: String
  package var volumeID: String
  package var chainID: ArchiveID
  package var chainIndex: Int
  package var parentID: ArchiveID?
  package var fromSeq: Seq
  package var untilSeq: Seq
  package var fromTime: String
  package var untilTime: String
  package var bookmarks: [ArchiveManifest.Bookmark]
  /// Fingerprints of the master keys that open it, so a restore can pick the right key.
  var keyFingerprints: [String]
  /// A clone's archive: the volume and seq its chain reads through (manifest version 3;
  /// absent otherwise, and in catalogs written before clones).
  package var origin: ArchiveManifest.Origin?

  package init(_ manifest: ArchiveManifest) {
    archiveID = manifest.archiveID
    volume = manifest.volume.name
    volumeID = manifest.volume.id
    chainID = manifest.chainID
    chainIndex = manifest.chainIndex
    parentID = manifest.parentID
    fromSeq = manifest.range.fromSeq
    untilSeq = manifest.range.untilSeq
    fromTime = manifest.range.fromTime
    untilTime = manifest.range.untilTime
    bookmarks = manifest.bookmarks
    keyFingerprints = manifest.keys.map(\.fingerprint)
    origin = manifest.origin
  }

  /// The name `reel seal` gives the archive file.
  package var fileName: String {
    ArchiveFormat.fileName(volume: volume, fromSeq: fromSeq, untilSeq: untilSeq, archiveID: archiveID)
  }
}

/// One tape file (or, on `dir:` media, one file of the folder) as a catalog lists it.
package struct TapeFileEntry: Codable, Sendable, Equatable {
  package enum Kind: String, Codable, Sendable {
    case label
    /// File 1 of a cartridge: the catalogs of the set's earlier cartridges.
    case setCatalogs = "set-catalogs"
    case archive
    case catalog
    /// File 1 of a parity cartridge: Reed-Solomon parity over its group's cartridges.
    case parity
    /// Files 2 and 3 of a parity cartridge: the two copies of its map.
    case parityMap = "parity-map"
    /// Not written by Reel, or damaged beyond recognition.
    case foreign
  }

  package enum State: String, Codable, Sendable {
    /// Written whole and read back verified.
    case complete
    /// Cut off at end of media; the archive was written whole on a later cartridge.
    case incomplete
    /// Written whole but failed read-back verification.
    case damaged
  }

  package var file: Int
  package var kind: Kind
  package var state: State?
  package var archive: ArchiveSummary?
  /// Bytes of the archive (complete archives only).
  package var size: UInt64?
  package var sha256: String?
  package var note: String?

  package init(
    file: Int, kind: Kind, state: State? = nil, archive: ArchiveSummary? = nil, size: UInt64? = nil,
    sha256: String? = nil, note: String? = nil
  ) {
    self.file = file
    self.kind = kind
    self.state = state
    self.archive = archive
    self.size = size
    self.sha256 = sha256
    self.note = note
  }

  /// What a scan of the medium makes of archive file `file` (`what` names it): complete
  /// as `verify` read it back, else damaged when `manifest` still names a valid Reel
  /// archive, else foreign; the note says why. An interruption (Ctrl-C) is not damage:
  /// it ends the scan.
  static func scanned(
    file: Int, describing what: String, verify: () throws -> VerifiedArchive, manifest: () throws -> ArchiveManifest
  ) throws -> TapeFileEntry {
    do {
      let verified = try verify()
      return TapeFileEntry(
        file: file, kind: .archive, state: .complete, archive: ArchiveSummary(verified.manifest),
        size: verified.totalBytes, sha256: verified.sha256)
    } catch let error as ReelError where error.kind == .interrupted {
      throw error
    } catch {
      if let manifest = try? manifest() {
        let summary = ArchiveSummary(manifest)
        if (try? summary.validate(describing: what)) != nil {
          return TapeFileEntry(file: file, kind: .archive, state: .damaged, archive: summary, note: "\(error)")
        }
      }
      return TapeFileEntry(file: file, kind: .foreign, note: "\(error)")
    }
  }
}

/// A cartridge's catalog: every file on it, and the set manifest (which cartridge of the
/// set holds which archives, up to this one). Written as the last tape file of every
/// export session; the newest one is the last file on the cartridge.
package struct CartridgeCatalog: Codable, Sendable, Equatable {
  package static let formatName = "reel-media-catalog"
  package static let currentVersion = 1

  package struct Cartridge: Codable, Sendable, Equatable {
    package var id: String
    package var label: String
    package var sequence: Int
  }

  package struct MediaSet: Codable, Sendable, Equatable {
    package var name: String
    package var id: String
  }

  /// One cartridge of the set and the archives it holds whole.
  package struct SetMember: Codable, Sendable, Equatable {
    package var cartridgeID: String
    package var label: String
    package var sequence: Int
    package var archives: [String]
  }

  package var format: String = formatName
  package var formatVersion: Int = currentVersion
  package var cartridge: Cartridge
  package var mediaSet: MediaSet?
  /// End of media was reached: nothing more is appended to this cartridge.
  package var closed: Bool
  package var files: [TapeFileEntry]
  package var set: [SetMember]

  package init(label: MediaLabel, closed: Bool = false, files: [TapeFileEntry] = [], set: [SetMember] = []) {
    cartridge = Cartridge(id: label.cartridgeID, label: label.name, sequence: label.sequence)
    if let name = label.mediaSet, let id = label.mediaSetID { mediaSet = MediaSet(name: name, id: id) }
    self.closed = closed
    self.files = files
    self.set = set
  }

  /// Archives held whole, in tape order.
  package var completeArchives: [TapeFileEntry] {
    files.filter { $0.kind == .archive && $0.state == .complete }
  }

  package var member: SetMember {
    SetMember(
      cartridgeID: cartridge.id, label: cartridge.label, sequence: cartridge.sequence,
      archives: completeArchives.compactMap { $0.archive?.archiveID })
  }

  /// The set manifest as of this cartridge: the earlier cartridges' members, then this one.
  mutating func updateSet(earlier: [CartridgeCatalog]) {
    set = earlier.map(\.member) + [member]
  }

  /// JSON text (sorted keys, indented, so `dd` shows something a person can read).
  package func json() throws -> [UInt8] {
    try catalogEncoder.encode(self).map { $0 } + [0x0A]
  }

  package static func decode(_ bytes: some Collection<UInt8>) throws -> CartridgeCatalog {
    let catalog = try JSONDecoder().decode(CartridgeCatalog.self, from: trimmedJSON(bytes))
    guard catalog.format == formatName else { throw ReelError(.corrupt, "not a \(formatName)") }
    guard catalog.formatVersion == currentVersion else {
      throw ReelError(
        .incompatible, "media catalog version \(catalog.formatVersion) is not supported", remedy: "use a newer Reel")
    }
    return catalog
  }
}

/// Tape file 1: copies of the catalogs of the set's earlier cartridges, so the newest
/// cartridge alone tells where everything of the set is.
struct SetCatalogs: Codable, Sendable, Equatable {
  package static let formatName = "reel-media-set-catalogs"
  package var format: String = formatName
  package var formatVersion: Int = 1
  package var catalogs: [CartridgeCatalog]

  package init(catalogs: [CartridgeCatalog]) { self.catalogs = catalogs }

  package func json() throws -> [UInt8] {
    try catalogEncoder.encode(self).map { $0 } + [0x0A]
  }

  package static func decode(_ bytes: some Collection<UInt8>) throws -> SetCatalogs {
    let value = try JSONDecoder().decode(SetCatalogs.self, from: trimmedJSON(bytes))
    guard value.format == formatName else { throw ReelError(.corrupt, "not a \(formatName)") }
    return value
  }
}

var catalogEncoder: JSONEncoder {
  let encoder = JSONEncoder()
  encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
  return encoder
}

/// JSON written to tape is padded with spaces to whole blocks; the decoder wants none.
func trimmedJSON(_ bytes: some Collection<UInt8>) -> Data {
  var data = Data(bytes)
  while let last = data.last, last == 0x20 || last == 0x0A || last == 0 { data.removeLast() }
  return data
}

/// Pads text to whole blocks with spaces and a final newline.
func paddedToBlocks(_ bytes: [UInt8], blockSize: Int) -> [UInt8] {
  let total = (bytes.count + blockSize) / blockSize * blockSize
  return bytes + [UInt8](repeating: 0x20, count: total - bytes.count - 1) + [0x0A]
}
