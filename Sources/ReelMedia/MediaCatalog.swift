import Foundation
import ReelArchive
import ReelCore

/// What an archive is, from its manifest: enough to find it for a restore with no store.
/// Written into media catalogs, so it keeps the manifest's spelling (times as RFC 3339 text,
/// bookmarks as the manifest lists them) rather than an `ArchiveSpan`.
public struct ArchiveSummary: Codable, Sendable, Equatable {
  public var archiveID: ArchiveID
  public var volume: String
  public var volumeID: String
  public var chainID: ArchiveID
  public var chainIndex: Int
  public var parentID: ArchiveID?
  public var fromSeq: Seq
  public var untilSeq: Seq
  public var fromTime: String
  public var untilTime: String
  public var bookmarks: [ArchiveManifest.Bookmark]
  /// Fingerprints of the master keys that open it, so a restore can pick the right key.
  public var keyFingerprints: [String]

  public init(_ manifest: ArchiveManifest) {
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
  }

  /// The name `reel seal` gives the archive file.
  public var fileName: String {
    ArchiveFormat.fileName(volume: volume, fromSeq: fromSeq, untilSeq: untilSeq, archiveID: archiveID)
  }
}

/// One tape file (or, on `dir:` media, one file of the folder) as a catalog lists it.
public struct TapeFileEntry: Codable, Sendable, Equatable {
  public enum Kind: String, Codable, Sendable {
    case label
    /// File 1 of a cartridge: the catalogs of the set's earlier cartridges.
    case setCatalogs = "set-catalogs"
    case archive
    case catalog
    /// Not written by Reel, or damaged beyond recognition.
    case foreign
  }

  public enum State: String, Codable, Sendable {
    /// Written whole and read back verified.
    case complete
    /// Cut off at end of media; the archive was written whole on a later cartridge.
    case incomplete
    /// Written whole but failed read-back verification.
    case damaged
  }

  public var file: Int
  public var kind: Kind
  public var state: State?
  public var archive: ArchiveSummary?
  /// Bytes of the archive (complete archives only).
  public var size: UInt64?
  public var sha256: String?
  public var note: String?

  public init(
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
}

/// A cartridge's catalog: every file on it, and the set manifest (which cartridge of the
/// set holds which archives, up to this one). Written as the last tape file of every
/// export session; the newest one is the last file on the cartridge.
public struct CartridgeCatalog: Codable, Sendable, Equatable {
  public static let formatName = "reel-media-catalog"
  public static let currentVersion = 1

  public struct Cartridge: Codable, Sendable, Equatable {
    public var id: String
    public var label: String
    public var sequence: Int
  }

  public struct MediaSet: Codable, Sendable, Equatable {
    public var name: String
    public var id: String
  }

  /// One cartridge of the set and the archives it holds whole.
  public struct SetMember: Codable, Sendable, Equatable {
    public var cartridgeID: String
    public var label: String
    public var sequence: Int
    public var archives: [String]
  }

  public var format: String = formatName
  public var formatVersion: Int = currentVersion
  public var cartridge: Cartridge
  public var mediaSet: MediaSet?
  /// End of media was reached: nothing more is appended to this cartridge.
  public var closed: Bool
  public var files: [TapeFileEntry]
  public var set: [SetMember]

  public init(label: MediaLabel, closed: Bool = false, files: [TapeFileEntry] = [], set: [SetMember] = []) {
    cartridge = Cartridge(id: label.cartridgeID, label: label.name, sequence: label.sequence)
    if let name = label.mediaSet, let id = label.mediaSetID { mediaSet = MediaSet(name: name, id: id) }
    self.closed = closed
    self.files = files
    self.set = set
  }

  /// Archives held whole, in tape order.
  public var completeArchives: [TapeFileEntry] {
    files.filter { $0.kind == .archive && $0.state == .complete }
  }

  public var member: SetMember {
    SetMember(
      cartridgeID: cartridge.id, label: cartridge.label, sequence: cartridge.sequence,
      archives: completeArchives.compactMap { $0.archive?.archiveID })
  }

  /// The set manifest as of this cartridge: the earlier cartridges' members, then this one.
  public mutating func updateSet(earlier: [CartridgeCatalog]) {
    set = earlier.map(\.member) + [member]
  }

  /// JSON text (sorted keys, indented, so `dd` shows something a person can read).
  public func json() throws -> [UInt8] {
    try catalogEncoder.encode(self).map { $0 } + [0x0A]
  }

  public static func decode(_ bytes: some Collection<UInt8>) throws -> CartridgeCatalog {
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
public struct SetCatalogs: Codable, Sendable, Equatable {
  public static let formatName = "reel-media-set-catalogs"
  public var format: String = formatName
  public var formatVersion: Int = 1
  public var catalogs: [CartridgeCatalog]

  public init(catalogs: [CartridgeCatalog]) { self.catalogs = catalogs }

  public func json() throws -> [UInt8] {
    try catalogEncoder.encode(self).map { $0 } + [0x0A]
  }

  public static func decode(_ bytes: some Collection<UInt8>) throws -> SetCatalogs {
    let value = try JSONDecoder().decode(SetCatalogs.self, from: trimmedJSON(bytes))
    guard value.format == formatName else { throw ReelError(.corrupt, "not a \(formatName)") }
    return value
  }
}

private var catalogEncoder: JSONEncoder {
  let encoder = JSONEncoder()
  encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
  return encoder
}

/// JSON written to tape is padded with spaces to whole blocks; the decoder wants none.
private func trimmedJSON(_ bytes: some Collection<UInt8>) -> Data {
  var data = Data(bytes)
  while let last = data.last, last == 0x20 || last == 0x0A || last == 0 { data.removeLast() }
  return data
}

/// Pads text to whole blocks with spaces and a final newline.
func paddedToBlocks(_ bytes: [UInt8], blockSize: Int) -> [UInt8] {
  let total = (bytes.count + blockSize) / blockSize * blockSize
  return bytes + [UInt8](repeating: 0x20, count: total - bytes.count - 1) + [0x0A]
}
