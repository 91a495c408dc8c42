import Foundation
import ReelArchive
import ReelCore
import ReelStore

/// The archives on media, as rehydration takes them: every labeled cartridge (or folder) a
/// media address names, each from its newest catalog, or from a scan when that is lost.
package final class MediaArchiveSupply: ArchiveSupply {
  package let address: MediaAddress
  private let volumes: [any MediaVolume]
  /// The catalog each offer was read from, by medium, to record the copies rehydration read.
  private var catalogs: [Int: CartridgeCatalog] = [:]
  /// Cartridges missing from a parity group, rebuilt from its parity cartridge (RAIT).
  private let standIns: ParityStandIns
  private var problems: [String] = []

  package init(_ address: MediaAddress) throws {
    self.address = address
    let present = try address.open()
    standIns = try ParityStandIns(among: present)
    volumes = present + standIns.volumes
  }

  /// What parity did for these media: each cartridge rebuilt, or why one was not.
  package var parityNotes: [String] { standIns.notes }

  package var description: String { address.description }

  /// A drive's cartridge leaves with the next one loaded, and so does one virtual
  /// cartridge named on its own (a drill loading cartridges one at a time); a library's
  /// stay at hand.
  package var isRemovable: Bool {
    switch address {
    case .tapeDrive: true
    case .virtualTape: !address.isLibrary
    case .folder, .objectStore: false
    }
  }

  /// Where the set manifests on these media say each archive is: archive ID → cartridge.
  package func whereabouts() throws -> [String: String] {
    var places: [String: String] = [:]
    for volume in volumes {
      guard case .labeled(let label) = try volume.readLabel(), label.parity == nil,
        let catalog = try? volume.readCatalog()
      else {
        continue
      }
      for member in catalog.set {
        for archive in member.archives {
          places[archive] = "cartridge \(member.label)\(label.mediaSet.map { " of media set \($0)" } ?? "")"
        }
      }
    }
    return places
  }

  package func mediaSets() throws -> [String: [String]] {
    var sets: [String: [String]] = [:]
    for volume in volumes {
      // Scratch cartridges (labeled, in no set yet) hold nothing and mix with any set.
      guard case .labeled(let label) = try volume.readLabel(), label.parity == nil, let set = label.mediaSet else {
        continue
      }
      sets[set, default: []].append(label.name)
    }
    return sets
  }

  package func offers() throws -> [ArchiveOffer] {
    var offers: [ArchiveOffer] = []
    problems = []
    for (index, volume) in volumes.enumerated() {
      // A cartridge whose label is damaged is known by the catalog at its end (readLabel);
      // one that is neither labeled nor blank cannot be read, and that is said, not skipped.
      switch try volume.readLabel() {
      case .blank: continue
      case .foreign(let reason):
        problems.append("\(volume.address) cannot be read as a Reel cartridge: \(reason); nothing was read from it")
        continue
      case .labeled(let label):
        // A parity cartridge holds no archives; ParityStandIns reads it.
        if label.parity != nil { continue }
      }
      if let damage = (volume as? TapeCartridge)?.labelDamage { problems.append("\(volume.address): \(damage)") }
      let catalog: CartridgeCatalog
      do {
        catalog = try volume.readCatalog()
      } catch let error as ReelError where error.kind == .corrupt {
        catalog = try volume.scan()
        for entry in catalog.files where entry.state == .damaged || (entry.kind == .foreign && entry.file > 0) {
          problems.append(
            "\(catalog.cartridge.label) (\(volume.address)) file \(entry.file)\(entry.archive.map { " (archive \($0.archiveID))" } ?? ""): \(entry.note ?? "damaged")"
          )
        }
      }
      catalogs[index] = catalog
      // A catalog's file numbers steer the drive; only ones past the label and set catalogs
      // and below the files a cartridge can hold are followed. Archives a scan found damaged
      // are offered too: their parity may repair them, and if not, the report says so.
      let readable = catalog.files.filter {
        $0.kind == .archive && ($0.state == .complete || $0.state == .damaged) && (2..<(1 << 24)).contains($0.file)
      }
      for entry in readable {
        guard let archive = entry.archive else { continue }
        offers.append(
          ArchiveOffer(
            archive, size: entry.state == .complete ? entry.size : nil,
            location: "\(catalog.cartridge.label) (\(volume.address)) file \(entry.file)",
            handle: "\(index):\(entry.file)"))
      }
      if readable.isEmpty && catalog.cartridge.sequence > 0 {
        problems.append(
          "\(catalog.cartridge.label) (\(volume.address)) holds no archive that can be read, though it is cartridge \(catalog.cartridge.sequence) of its media set"
        )
      }
    }
    return offers
  }

  package func mediaProblems() -> [String] { problems }

  package func namedArchives() throws -> [ArchiveSummary] {
    catalogs.values.flatMap { $0.files.compactMap(\.archive) }
  }

  package func open(_ offer: ArchiveOffer) throws -> any ArchiveByteSource {
    let (volume, file) = try place(of: offer)
    return try volumes[volume].openArchive(file: file, size: offer.size)
  }

  package func copy(of offer: ArchiveOffer, sha256: String, size: UInt64) throws -> SupplyCopy? {
    let (volume, file) = try place(of: offer)
    guard let catalog = catalogs[volume],
      var entry = catalog.completeArchives.first(where: { $0.file == file && $0.archive?.archiveID == offer.archiveID })
    else { return nil }
    // A catalog rebuilt by a scan may not know the bytes; one that does must name those read.
    guard entry.sha256 ?? sha256 == sha256, entry.size ?? size == size else { return nil }
    entry.sha256 = sha256
    entry.size = size
    guard let copy = ArchiveCopy(entry: entry, on: catalog) else { return nil }
    return SupplyCopy(
      copy: copy,
      cartridge: CartridgeRecord(
        cartridgeID: catalog.cartridge.id, label: catalog.cartridge.label, mediaSet: catalog.mediaSet?.name,
        mediaSetID: catalog.mediaSet?.id, sequence: catalog.cartridge.sequence, address: volumes[volume].address,
        closed: catalog.closed, catalogJSON: String(decoding: try catalog.json(), as: UTF8.self), updated: .now()))
  }

  /// The medium (an index into `volumes`) and file an offer's handle names.
  private func place(of offer: ArchiveOffer) throws -> (volume: Int, file: Int) {
    let parts = offer.handle.split(separator: ":").compactMap { Int($0) }
    guard parts.count == 2, volumes.indices.contains(parts[0]) else {
      throw ReelError(.usage, "\(offer.handle) does not name an archive of \(address)")
    }
    return (parts[0], parts[1])
  }
}
