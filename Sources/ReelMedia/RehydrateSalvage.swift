import Foundation
import ReelArchive
import ReelCore
import ReelStore

extension Rehydrator {
  /// What salvaging an archive beyond repair came to: the history lost (nil: none — every
  /// chunk the history needs authenticated and the whole window came in) and the time of
  /// the last seq imported from it.
  struct Salvaged {
    var lost: LostHistory?
    var throughTime: String?
  }

  /// Imports every frame of a damaged archive that authenticates, up to the first seq whose
  /// state needs one that does not (the archive's `ArchiveSalvage`), from the copy staged
  /// in the incoming folder (partly repaired by its parity where it has one). The same
  /// importer as any archive, told to stop there; the checks of the manifest against the
  /// plan (`expecting`) apply as to a whole one. Nil when the archive authenticates but is
  /// not the one the plan expects there (that is no damage: it is reported as before).
  static func salvage(
    _ offer: ArchiveOffer, from staged: ArchiveMending.Staged, parityLost: [(offset: UInt64, length: UInt64)],
    request: RehydrateRequest, live: LiveStore, expecting: @escaping (ArchiveManifest) throws -> Void
  ) throws -> Salvaged? {
    let assessed: ArchiveSalvage
    do {
      assessed = try ArchiveSalvage.assess(
        source: try FileArchiveSource(path: staged.salvageable), label: offer.fileName,
        masterKeys: request.masterKeys, store: live.store.layout)
    } catch let error as ReelError where error.kind != .interrupted {
      return Salvaged(lost: LostHistory(offer, reason: "nothing of it can be authenticated (\(error.message))"))
    }
    do {
      try expecting(assessed.manifest)
    } catch let error as ReelError where error.kind != .interrupted {
      return nil
    }
    let lost = assessed.firstLostSeq.map { _ in LostHistory(offer, salvage: assessed, parityLost: parityLost) }
    guard assessed.importable else { return Salvaged(lost: lost) }
    do {
      _ = try ArchiveImporter.importArchive(
        source: try FileArchiveSource(path: staged.salvageable), label: offer.fileName,
        masterKeys: request.masterKeys, into: live, verifyContent: request.verifyContent, expecting: expecting,
        salvaged: assessed)
    } catch let error as ReelError where error.kind != .interrupted {
      var whole = LostHistory(offer, reason: "what authenticates could not be imported (\(error.message))")
      if let lost { whole.damage = lost.damage }
      return Salvaged(lost: whole)
    }
    return Salvaged(lost: lost, throughTime: assessed.wholeThroughTime?.rfc3339)
  }
}
