import Foundation
import ReelArchive
import ReelCore
import ReelJournal

/// The archives on one labeled medium (a cartridge or a cold-storage folder), as a supply
/// for rehydration and for verifying copies with the key: offered from the medium's
/// catalog (scanned when the catalog is damaged), read straight from the medium.
public final class MediaArchiveSupply: ArchiveSupply {
  public let volume: any MediaVolume
  private var catalog: CartridgeCatalog?

  public init(volume: any MediaVolume) {
    self.volume = volume
  }

  /// One supply per medium an address names (each cartridge of a library).
  public static func supplies(for address: MediaAddress) throws -> [MediaArchiveSupply] {
    try address.open().map(MediaArchiveSupply.init(volume:))
  }

  public var description: String { volume.address }

  /// Cartridges leave the drive; a folder stays.
  public var isRemovable: Bool { volume is TapeCartridge }

  public func cartridgeCatalog() throws -> CartridgeCatalog {
    if let catalog { return catalog }
    let read: CartridgeCatalog
    do {
      read = try volume.readCatalog()
    } catch let error as ReelError where error.kind == .corrupt {
      read = try volume.scan()
    }
    catalog = read
    return read
  }

  public func offers() throws -> [ArchiveOffer] {
    let catalog = try cartridgeCatalog()
    return catalog.completeArchives.compactMap { entry in
      guard let summary = entry.archive else { return nil }
      return ArchiveOffer(
        archiveID: summary.archiveID, volume: summary.volume, volumeID: summary.volumeID, chainID: summary.chainID,
        chainIndex: summary.chainIndex, parentID: summary.parentID, fromSeq: summary.fromSeq,
        untilSeq: summary.untilSeq, fromTime: summary.fromTime, untilTime: summary.untilTime,
        bookmarks: summary.bookmarks, keyFingerprints: [], size: entry.size,
        location: "\(catalog.cartridge.label) file \(entry.file)", handle: String(entry.file))
    }
  }

  public func open(_ offer: ArchiveOffer) throws -> any ArchiveByteSource {
    guard let file = Int(offer.handle) else {
      throw ReelError(.notFound, "\(volume.address) has no tape file \(offer.handle)")
    }
    return try openFile(file, size: offer.size)
  }

  /// The bytes of tape file `file` (an archive), cut at `size` when known.
  public func openFile(_ file: Int, size: UInt64?) throws -> any ArchiveByteSource {
    switch volume {
    case let cartridge as TapeCartridge:
      try cartridge.position(atStartOf: file)
      try cartridge.drive.setBlockSize(0)
      return TapeFileSource(drive: cartridge.drive, recordSize: 16 << 20, limit: size)
    case let folder as ColdStorageFolder:
      guard let found = try folder.archiveFiles().first(where: { $0.file == file }) else {
        throw ReelError(.notFound, "\(folder.address) has no archive numbered \(file)")
      }
      return LimitedFileSource(file: try PosixFile.openForReading(found.path), limit: size ?? found.size)
    default:
      throw ReelError(.usage, "\(volume.address): reading archives back is not supported for this medium")
    }
  }
}
