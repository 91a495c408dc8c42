import Foundation
import ReelArchive
import ReelCodec
import ReelCore
import ReelIO
import ReelStore

package struct RehydrateRequest {
  package var supplies: [any ArchiveSupply]
  package var masterKeys: [SymmetricKey]
  /// Volume names to rehydrate; empty = every volume the supplies hold.
  package var volumes: [String]
  /// Import what a restore up to this point needs; nil = everything offered.
  package var until: Point?
  /// Allow a store that already holds other volumes.
  package var merge: Bool
  /// Re-hash every chunk while importing. Without it frames are still authenticated
  /// (AES-GCM) and records checked by CRC-32C; the chunks count as unverified until
  /// `reel store check --read-data` re-hashes them.
  package var verifyContent: Bool

  package init(
    supplies: [any ArchiveSupply], masterKeys: [SymmetricKey], volumes: [String] = [], until: Point? = nil,
    merge: Bool = false, verifyContent: Bool = false
  ) {
    self.supplies = supplies
    self.masterKeys = masterKeys
    self.volumes = volumes
    self.until = until
    self.merge = merge
    self.verifyContent = verifyContent
  }
}

/// What happened to one volume.
package struct RehydratedVolume: Sendable {
  package var volume: String
  package var chainID: String
  package var imported: [ArchiveOffer] = []
  package var alreadyInStore: [ArchiveOffer] = []
  /// Archives copied aside because an earlier one of the chain is not here yet.
  package var setAside: [ArchiveOffer] = []
  /// Chain positions nobody offered: (number in chain, what is known of its range).
  package var missing: [String] = []
  package var damaged: [String] = []
  /// Newer archives of the chain the media's catalogs name but nobody supplied: the media
  /// may have been rolled back to an older state.
  package var withheld: [String] = []
  /// A restore works for points up to here.
  package var restorableUntilSeq: Seq = 0
  package var restorableUntilTime: String?
  package var restorableBookmarks: [String] = []
  /// Clones this volume's history was imported for (pulled in as their origin).
  package var neededBy: [String] = []
  package var bytesRead: UInt64 = 0
  /// Archives imported after repairing a damaged copy from their parity: one sentence each.
  package var repaired: [String] = []
  /// Stretches of media that could not be read while reading this volume's archives, one
  /// sentence per range (repaired or not).
  package var damageOnMedia: [String] = []
  /// Every imported chunk was re-hashed during the import.
  package var contentVerified = false
  /// History that damage beyond repair took: one per damaged archive, with what of it was
  /// imported (every frame that authenticated, up to the first seq that needs a lost one).
  package var lost: [LostHistory] = []
  /// Later archives of the chain, not imported because they build on lost history.
  package var notImported: [String] = []

  package var complete: Bool { missing.isEmpty && damaged.isEmpty && withheld.isEmpty && lost.isEmpty }
}

package struct RehydrateReport: Sendable {
  package var volumes: [RehydratedVolume]
  /// Catalog entries not used because their names or chain positions are not Reel's.
  package var refused: [String] = []
  /// What was wrong with the media themselves (unreadable cartridges, damaged tape files).
  package var mediaProblems: [String] = []
  package var complete: Bool { refused.isEmpty && volumes.allSatisfy(\.complete) }
  /// Complete, and no medium had a stretch it could not read: damage is never an exit 0,
  /// even when parity repaired everything (the medium is failing; copy it).
  package var clean: Bool {
    complete && mediaProblems.isEmpty && volumes.allSatisfy { $0.damageOnMedia.isEmpty && $0.repaired.isEmpty }
  }
}

/// Progress while importing: the archive, its position in the plan, bytes so far.
package struct RehydrateProgress: Sendable {
  package var archive: String
  package var location: String
  package var number: Int
  package var count: Int
  package var bytes: UInt64
  package var archiveSize: UInt64?
}

/// Turns sealed archives on media back into a live point-in-time store (issue "Rehydrate").
/// Reads only the archives the chosen volumes and point need, in chain order; each one is
/// verified as it is imported and becomes visible in one transaction, so a run killed at
/// any moment resumes where it stopped and never imports anything twice.
package enum Rehydrator {
  static let incomingFolder = "incoming"

  package static func run(
    _ request: RehydrateRequest, store: Store, progress: ((RehydrateProgress) -> Void)? = nil
  ) throws -> RehydrateReport {
    try requireOneMediaSet(request.supplies)
    let live = LiveStore(store: store)
    let incoming = ArchiveFiles(path: store.layout.root + "/" + incomingFolder)
    var supplies = request.supplies
    if FileManager.default.fileExists(atPath: incoming.path) { supplies.append(incoming) }
    var offers: [(offer: ArchiveOffer, supply: any ArchiveSupply)] = []
    var seen: Set<String> = []
    var refused: [String] = []
    var named: [ArchiveSummary] = []
    var mediaProblems: [String] = []
    for supply in supplies {
      for offer in try supply.offers() {
        // Checked before it can shadow a genuine offer of the same ID.
        do {
          try offer.archive.validate(describing: offer.location)
        } catch let error as ReelError {
          refused.append(error.message)
          continue
        }
        if seen.insert(offer.archiveID).inserted { offers.append((offer, supply)) }
      }
      named += try supply.namedArchives().filter { (try? $0.validate(describing: "")) != nil }
      mediaProblems += supply.mediaProblems()
    }
    let available = Set(offers.map(\.offer.volume))
    let wanted = request.volumes.isEmpty ? available.sorted() : request.volumes
    for name in wanted where !available.contains(name) {
      throw ReelError(
        .notFound, "no archive of volume \(name) on \(request.supplies.map(\.description).joined(separator: ", "))",
        remedy: available.isEmpty
          ? "check the media; `reel media catalog MEDIA` lists what a cartridge holds"
          : "the media hold volumes \(available.sorted().joined(separator: ", "))")
    }
    var whereabouts: [String: String] = [:]
    for supply in supplies { whereabouts.merge(try supply.whereabouts()) { first, _ in first } }
    // Clones need their origins' history up to the clone point: origins first, pulled in
    // from the same media when only the clone was asked for.
    let order = try RehydrationOrder(
      wanted: wanted, until: request.until, offers: offers.map(\.offer), named: named, live: live,
      whereabouts: whereabouts)
    let importing = Set(order.steps.map(\.volume))
    // The key must open every archive before anything is written.
    let fingerprints = Set(request.masterKeys.map(\.fingerprint))
    for (offer, _) in offers where importing.contains(offer.volume) {
      if !offer.keyFingerprints.isEmpty && fingerprints.isDisjoint(with: offer.keyFingerprints) {
        throw ReelError(
          .wrongKey,
          "\(offer.fileName) (\(offer.location)) was sealed for key \(offer.keyFingerprints.joined(separator: " or ")), not for \(fingerprints.sorted().joined(separator: ", "))",
          remedy: "give the key file (or paper key) the archives were sealed with; nothing was written")
      }
    }
    try checkStoreHoldsNothingElse(
      store, wanted: order.steps.map(\.volume), offers: offers.map(\.offer), merge: request.merge)

    var results: [RehydratedVolume] = []
    for step in order.steps {
      let candidates = offers.filter { $0.offer.volume == step.volume }
      var result = try rehydrate(
        volume: step.volume, candidates: candidates, points: step.points, startBy: step.startBy, request: request,
        live: live, incoming: incoming, whereabouts: whereabouts, named: named, progress: progress)
      result.neededBy = step.neededBy
      results.append(result)
    }
    for (name, reason) in order.blocked {
      var result = RehydratedVolume(volume: name, chainID: "")
      result.missing.append(reason)
      results.append(result)
    }
    return RehydrateReport(volumes: results, refused: refused, mediaProblems: mediaProblems)
  }

  /// Cartridges of different media sets are not mixed in one run: a cartridge loaded by
  /// mistake is named before anything is read from it.
  static func requireOneMediaSet(_ supplies: [any ArchiveSupply]) throws {
    var sets: [String: [String]] = [:]
    for supply in supplies {
      for (set, labels) in try supply.mediaSets() {
        sets[set, default: []] += labels.map { "\($0) (\(supply.description))" }
      }
    }
    guard sets.count > 1 else { return }
    let listed = sets.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value.joined(separator: ", "))" }
    throw ReelError(
      .usage,
      "the media given belong to \(sets.count) media sets — \(listed.joined(separator: "; "))",
      remedy: "rehydrate from one media set's cartridges at a time; take the odd cartridge out of the library")
  }

  /// Refuses a store with volumes the archives do not hold, or a same-named volume with
  /// another identity, unless merging was asked for.
  static func checkStoreHoldsNothingElse(_ store: Store, wanted: [String], offers: [ArchiveOffer], merge: Bool) throws {
    let ids = Dictionary(offers.map { ($0.volume, $0.volumeID) }, uniquingKeysWith: { first, _ in first })
    for name in store.layout.volumeNames() {
      let existing = try store.layout.descriptor(of: name)
      if let id = ids[name], id == existing.id.description { continue }
      if ids[name] != nil {
        throw ReelError(
          .alreadyExists,
          "\(store.layout.root) already has a volume \(name) that is not the one in the archives (id \(existing.id), archives \(ids[name]!))",
          remedy: "rehydrate into an empty --store folder")
      }
      if !merge {
        throw ReelError(
          .alreadyExists,
          "\(store.layout.root) already holds volume \(name), which these archives do not contain; nothing was written",
          remedy: "give an empty --store folder, or add --merge to add the archives' volumes to this store")
      }
    }
  }

  /// The chain to rebuild a volume from: the one the store already has; else the newest
  /// chain that can start (with `startBy`, preferably one whose first archive starts at or
  /// before it: the clone point a clone of this volume needs).
  static func chainToRebuild(imported: [SealedArchiveRecord], candidates: [ArchiveOffer], startBy: Seq?)
    -> ArchiveID?
  {
    if let chainID = imported.first?.chainID { return chainID }
    let chains = Dictionary(grouping: candidates, by: \.chainID)
    return chains.max { a, b in
      let aStarts = a.value.contains { $0.chainIndex == 0 }
      let bStarts = b.value.contains { $0.chainIndex == 0 }
      if aStarts != bStarts { return !aStarts }
      if let startBy {
        let aEarly = a.value.contains { $0.chainIndex == 0 && $0.fromSeq <= startBy }
        let bEarly = b.value.contains { $0.chainIndex == 0 && $0.fromSeq <= startBy }
        if aEarly != bEarly { return !aEarly }
      }
      return (a.value.map(\.untilSeq).max() ?? 0) < (b.value.map(\.untilSeq).max() ?? 0)
    }?.key
  }

  private static func rehydrate(
    volume name: String, candidates: [(offer: ArchiveOffer, supply: any ArchiveSupply)], points: [Point?],
    startBy: Seq?, request: RehydrateRequest, live: LiveStore, incoming: ArchiveFiles, whereabouts: [String: String],
    named: [ArchiveSummary], progress: ((RehydrateProgress) -> Void)?
  ) throws -> RehydratedVolume {
    let imported = try importedArchives(volume: name, live: live)
    let chains = Dictionary(grouping: candidates, by: \.offer.chainID)
    let chainID = chainToRebuild(imported: imported, candidates: candidates.map(\.offer), startBy: startBy)!
    let chain = (chains[chainID] ?? []).sorted { $0.offer.chainIndex < $1.offer.chainIndex }
    var result = RehydratedVolume(volume: name, chainID: chainID)
    result.contentVerified = request.verifyContent
    let importedIDs = Set(imported.map(\.id))
    let byIndex = Dictionary(chain.map { ($0.offer.chainIndex, $0) }, uniquingKeysWith: { first, _ in first })
    let target =
      try points.map {
        try targetIndex($0, chain: chain.map(\.offer), imported: imported, volume: name)
      }.max() ?? 0
    var broken = false
    var planned: [(offer: ArchiveOffer, supply: any ArchiveSupply)] = []
    for index in 0...max(target, 0) {
      if let done = imported.first(where: { $0.chainIndex == index }) {
        if let offered = byIndex[index]?.offer { result.alreadyInStore.append(offered) }
        result.restorableUntilSeq = done.untilSeq
        result.restorableUntilTime = done.untilTime.rfc3339
        continue
      }
      guard !broken, let candidate = byIndex[index] else {
        if byIndex[index] == nil {
          broken = true
          let next = chain.first { $0.offer.chainIndex > index }?.offer
          let previousEnd = index == 0 ? "its first record" : "seq \(result.restorableUntilSeq)"
          // The next archive names this one as its parent; the set manifests may know where it is.
          let id = byIndex[index + 1]?.offer.parentID
          let place = id.flatMap { whereabouts[$0] }.map { " — it is on \($0)" } ?? ""
          result.missing.append(
            "archive number \(index) of chain \(chainID)\(id.map { " (\($0))" } ?? "") with history after \(previousEnd)\(next.map { " up to seq \($0.fromSeq), before \($0.fromTime)" } ?? "")\(place)"
          )
        } else if let candidate = byIndex[index], candidate.supply.isRemovable,
          !importedIDs.contains(candidate.offer.archiveID)
        {
          try setAside(candidate, into: incoming)
          result.setAside.append(candidate.offer)
        }
        continue
      }
      planned.append(candidate)
    }
    // Each link of the chain as the store or an authenticated manifest knows it.
    var links = Dictionary(
      imported.map { ($0.chainIndex, (id: $0.id, untilSeq: $0.untilSeq)) }, uniquingKeysWith: { first, _ in first })
    var number = 0
    for (offer, supply) in planned {
      if let origin = offer.origin, offer.chainIndex == 0,
        !(try live.holdsHistory(ofVolumeID: origin.volumeID, at: origin.seq))
      {
        result.missing.append(
          "volume \(name) was cloned from \(origin.description), whose history up to seq \(origin.seq) did not make it into the store; nothing of \(name) was imported"
        )
        break
      }
      number += 1
      let opened = try supply.open(offer)
      let source = CountingSource(opened)
      let report = ArchiveProgressReporter(
        offer: offer, number: number, count: planned.count, source: source, progress: progress)
      var done: ArchiveImportReport
      let expecting = { (manifest: ArchiveManifest) in
        try requireManifest(
          manifest, matches: offer, volume: name, chainID: chainID, parent: links[offer.chainIndex - 1])
      }
      func importing(
        _ bytes: any ArchiveByteSource, repairable: Bool = false, knownSHA256: String? = nil
      ) throws -> ArchiveImportReport {
        try ArchiveImporter.importArchive(
          source: bytes, label: offer.fileName, masterKeys: request.masterKeys, into: live,
          verifyContent: request.verifyContent, expecting: expecting, repairable: repairable,
          knownSHA256: knownSHA256)
      }
      // The copy read into the store's incoming folder once the archive proved damaged,
      // and the bytes its parity could not rebuild: what salvaging starts from.
      var staged: ArchiveMending.Staged?
      var parityLost: [(offset: UInt64, length: UInt64)] = []
      do {
        do {
          done = try importing(report, repairable: true)
          result.damageOnMedia += unreadableSentences(
            offer, opened, repaired: "read around: outside what the import checks")
        } catch let error as ReelError where [.corrupt, .notFound, .incompatible].contains(error.kind) {
          // A damaged copy: its parity may repair it. The bytes are read again into a
          // private file beside the store (unless they are in a file here already),
          // repaired into another and imported from the repair. The failed import stopped
          // at the first damaged frame when the archive has parity.
          result.bytesRead += source.count
          source.count = 0
          let mended = try ArchiveMending.mend(offer, from: supply, in: incoming.path)
          staged = mended.staged
          guard let outcome = mended.outcome else {
            result.damageOnMedia += unreadableSentences(
              offer, opened, repaired: "not repaired: the archive carries no parity")
            throw error
          }
          parityLost = outcome.lost
          // One sentence per damaged range: the medium's own where it could not read,
          // the parity's for damage it found elsewhere (bytes that read back altered).
          let unreadable = (opened as? UnreadableStretches)?.unreadable ?? []
          result.damageOnMedia += unreadableSentences(
            offer, opened, repaired: outcome.whole ? "repaired from the archive's parity" : "beyond the parity's margin"
          )
          result.damageOnMedia += outcome.ranges.filter { range in
            !unreadable.contains { $0.offset < range.offset + range.length && range.offset < $0.offset + $0.length }
          }.map { "\(offer.fileName) (\(offer.location)): \($0.sentence)" }
          guard outcome.whole else {
            throw ReelError(
              .corrupt,
              "\(error.message); its parity cannot repair it: \(outcome.ranges.map(\.sentence).joined(separator: "; "))"
            )
          }
          // The repair hashed the file as it wrote it: the import need not again.
          done = try importing(try FileArchiveSource(path: mended.staged.repairedPath), knownSHA256: outcome.sha256)
          result.repaired.append(
            "\(offer.fileName) (\(offer.location)) was damaged and repaired from its parity\(outcome.margin.map { " (\($0))" } ?? "") before it was imported"
          )
        }
      } catch let error as ReelError where [.corrupt, .notFound, .incompatible].contains(error.kind) {
        result.bytesRead += source.count
        // Beyond repair: every frame that authenticates still gives back its history.
        // (Not for an archive of a newer format: nothing is damaged there.)
        let salvaged =
          error.kind == .incompatible
          ? nil
          : try staged.flatMap {
            try salvage(
              offer, from: $0, parityLost: parityLost, request: request, live: live, expecting: expecting)
          }
        if let salvaged, salvaged.lost == nil {
          // Damaged only outside its frames (sums, padding): the whole window came in.
          result.damageOnMedia.append(
            "\(offer.fileName) (\(offer.location)): \(error.message); every frame authenticated, and its whole history was imported"
          )
          links[offer.chainIndex] = (offer.archiveID, offer.untilSeq)
          result.imported.append(offer)
          result.restorableUntilSeq = offer.untilSeq
          result.restorableUntilTime = offer.untilTime
          continue
        }
        result.damaged.append("\(offer.fileName) (\(offer.location)): \(error.message)")
        if let lost = salvaged?.lost {
          result.lost.append(lost)
          // So restore, serve and the rest refuse points in it (the volume exists once
          // something of it came in).
          if let descriptor = try? live.store.layout.descriptor(of: name) {
            try live.recordLoss(
              HistoryLoss(
                archiveID: offer.archiveID, fromSeq: lost.fromSeq, untilSeq: lost.untilSeq,
                fromTime: lost.reason == nil ? lost.fromTime.flatMap(Timestamp.init(rfc3339:)) : nil,
                description: lost.sentence),
              of: descriptor)
          }
          if let through = lost.importedThrough {
            result.restorableUntilSeq = through
            result.restorableUntilTime = salvaged?.throughTime ?? result.restorableUntilTime
          }
        }
        // Later archives of the chain build on this one: keep them for a later run.
        for (later, laterSupply) in planned.drop(while: { $0.offer.archiveID != offer.archiveID }).dropFirst() {
          result.notImported.append(
            "\(later.fileName) (archive number \(later.chainIndex), seq \(later.fromSeq + 1)–\(later.untilSeq), \(later.location)): builds on \(salvaged?.lost != nil ? "the lost history" : "the damaged archive"), not imported"
          )
          if laterSupply.isRemovable {
            try setAside((later, laterSupply), into: incoming)
            result.setAside.append(later)
          }
        }
        break
      }
      links[offer.chainIndex] = (offer.archiveID, offer.untilSeq)
      try recordCopy(offer, read: done, from: supply, in: live.store.catalog)
      result.bytesRead += source.count
      result.imported.append(offer)
      result.restorableUntilSeq = offer.untilSeq
      result.restorableUntilTime = offer.untilTime
      if supply === incoming {
        try? FileManager.default.removeItem(atPath: offer.handle)
        try? FileManager.default.removeItem(atPath: offer.handle + ArchiveFiles.copySuffix)
      }
    }
    if points.contains(where: { $0 == nil }) {
      result.withheld = withheldArchives(
        of: chainID, volume: name, named: named, held: Set(chain.map(\.offer.archiveID)).union(importedIDs),
        after: max(chain.last?.offer.chainIndex ?? 0, imported.map(\.chainIndex).max() ?? 0),
        whereabouts: whereabouts)
    }
    if let descriptor = try? live.store.layout.descriptor(of: name) {
      result.restorableBookmarks = try live.bookmarks(of: descriptor, after: 0, through: result.restorableUntilSeq)
        .map(\.label)
    }
    return result
  }

  /// One sentence per stretch the medium could not read while `source` was read.
  static func unreadableSentences(_ offer: ArchiveOffer, _ source: any ArchiveByteSource, repaired: String) -> [String]
  {
    ((source as? UnreadableStretches)?.unreadable ?? []).map {
      "\(offer.fileName) (\(offer.location)): \($0.sentence); \(repaired)"
    }
  }

  /// Refuses an archive whose authenticated manifest is not what the plan expects at its
  /// place: the media's catalog named it (unauthenticated), the manifest decides.
  static func requireManifest(
    _ manifest: ArchiveManifest, matches offer: ArchiveOffer, volume: String, chainID: ArchiveID,
    parent: (id: ArchiveID, untilSeq: Seq)?
  ) throws {
    var differences: [String] = []
    func compare<T: Equatable>(_ field: String, _ claimed: T, _ actual: T) {
      if claimed != actual { differences.append("\(field) \(claimed) on the media, \(actual) in the manifest") }
    }
    compare("archive", offer.archiveID, manifest.archiveID)
    compare("volume", volume, manifest.volume.name)
    compare("volume ID", offer.volumeID, manifest.volume.id)
    compare("chain", chainID, manifest.chainID)
    compare("chain position", offer.chainIndex, manifest.chainIndex)
    compare("seq window", "\(offer.fromSeq)…\(offer.untilSeq)", "\(manifest.range.fromSeq)…\(manifest.range.untilSeq)")
    compare(
      "origin", offer.origin.map { "\($0.volumeID) at seq \($0.seq)" } ?? "none",
      manifest.origin.map { "\($0.volumeID) at seq \($0.seq)" } ?? "none")
    if let parent {
      compare("parent", parent.id, manifest.parentID ?? "none")
      compare("start (the parent's end)", parent.untilSeq, manifest.range.fromSeq)
    } else if offer.chainIndex == 0 {
      compare("parent", "none", manifest.parentID ?? "none")
    }
    guard differences.isEmpty else {
      throw ReelError(
        .corrupt,
        "the media's catalog does not describe the archive there: \(differences.joined(separator: "; ")); it was not imported",
        remedy: "the catalog or the tape file was altered or spliced; use another copy of archive \(offer.archiveID)")
    }
  }

  /// Archives of the chain newer than every one supplied that the media's catalogs still
  /// name (the remains of one cut off at end of media, a copy on another cartridge).
  static func withheldArchives(
    of chainID: ArchiveID, volume: String, named: [ArchiveSummary], held: Set<ArchiveID>, after index: Int,
    whereabouts: [String: String]
  ) -> [String] {
    var seen: Set<ArchiveID> = []
    return named.filter { $0.volume == volume && $0.chainID == chainID && $0.chainIndex > index }
      .sorted { $0.chainIndex < $1.chainIndex }
      .filter { !held.contains($0.archiveID) && seen.insert($0.archiveID).inserted }
      .map { archive in
        "archive number \(archive.chainIndex) of chain \(chainID) (\(archive.archiveID), history after seq \(archive.fromSeq)) is named by the media's catalogs\(whereabouts[archive.archiveID].map { " (on \($0))" } ?? "") but was not supplied: newer history may have been withheld (rolled back); load the cartridge that holds it whole"
      }
  }

  /// Records the copy an archive was imported from, so the new store knows its media as
  /// the store that exported them did (the nightly job then finds every archive on its set).
  /// It counts as verified because the import checked every frame with the key and the
  /// bytes read are the ones the media's catalog names (size and SHA-256).
  static func recordCopy(
    _ offer: ArchiveOffer, read done: ArchiveImportReport, from supply: any ArchiveSupply, in catalog: Catalog
  ) throws {
    guard let verification = done.verification,
      let found = try supply.copy(
        of: offer, sha256: verification.structure.sha256, size: verification.structure.totalBytes)
    else { return }
    try catalog.recordCartridge(found.cartridge)
    try catalog.recordCopy(found.copy)
  }

  private static func importedArchives(volume name: String, live: LiveStore) throws -> [SealedArchiveRecord] {
    guard let descriptor = try? live.store.layout.descriptor(of: name) else { return [] }
    let bounds = try live.historyBounds(of: descriptor)
    return try live.sealedArchives(of: descriptor).filter { $0.untilSeq <= bounds.ingested }
  }

  /// The chain position a restore to `point` needs up to (inclusive).
  static func targetIndex(_ point: Point?, chain: [ArchiveOffer], imported: [SealedArchiveRecord], volume: String)
    throws -> Int
  {
    let positions =
      chain.map { (index: $0.chainIndex, untilSeq: $0.untilSeq, untilTime: Timestamp(rfc3339: $0.untilTime)) }
      + imported.map { (index: $0.chainIndex, untilSeq: $0.untilSeq, untilTime: Optional($0.untilTime)) }
    let sorted = positions.sorted { $0.index < $1.index }
    guard let last = sorted.last else { return 0 }
    let found: Int?
    switch point {
    case nil, .latest?: return last.index
    case .seq(let seq)?: found = sorted.first { $0.untilSeq >= seq }?.index
    case .time(let time)?: found = sorted.first { ($0.untilTime ?? Timestamp(nanoseconds: .max)) >= time }?.index
    case .bookmark(let label)?:
      found = chain.last { $0.bookmarks.contains { $0.label == label } }?.chainIndex
    }
    guard let found else {
      throw ReelError(
        .notFound,
        "\(point!) of volume \(volume) is not covered by the archives offered (they end at seq \(last.untilSeq))",
        remedy: "load the media holding later archives, or pick an earlier point")
    }
    return found
  }

  /// Copies an archive from a removable medium into the store's incoming folder (atomic,
  /// fsynced, checked), so the medium can go back to the shelf.
  static func setAside(_ candidate: (offer: ArchiveOffer, supply: any ArchiveSupply), into incoming: ArchiveFiles)
    throws
  {
    let folder = incoming.path
    try Durable.makeDirectory(folder)
    let final = folder + "/" + candidate.offer.archive.setAsideFileName
    guard !FileManager.default.fileExists(atPath: final) else { return }
    let partial = final + ".partial"
    unlink(partial)  // a killed set-aside's; a link planted there is removed, never followed
    let file = try PosixFile.createNew(partial)
    let source = HashingSource(try candidate.supply.open(candidate.offer))
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: ArchiveFormat.recordSize, alignment: 16)
    defer { buffer.deallocate() }
    var offset: UInt64 = 0
    do {
      while true {
        let count = try source.read(into: buffer)
        if count == 0 { break }
        try file.write(UnsafeRawBufferPointer(rebasing: buffer[0..<count]), at: offset)
        offset += UInt64(count)
      }
      try file.sync()
      _ = try ArchiveVerifier.verifyStructure(path: partial)
      // Which copy on media these bytes are, for when they are imported from here (and
      // checked with the key then): written before the archive appears under its name.
      if let copy = try candidate.supply.copy(
        of: candidate.offer, sha256: source.hasher.finish().hex, size: source.total)
      {
        try Durable.replaceFile(at: final + ArchiveFiles.copySuffix, with: Array(try JSONEncoder().encode(copy)))
      }
      try Durable.rename(partial, to: final)
    } catch {
      unlink(partial)
      throw error
    }
  }
}

/// Counts the bytes read through it.
final class CountingSource: ArchiveByteSource {
  var inner: any ArchiveByteSource
  var count: UInt64 = 0

  init(_ inner: any ArchiveByteSource) { self.inner = inner }

  func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    let read = try inner.read(into: buffer)
    count += UInt64(read)
    return read
  }
}

/// Reports progress every few MiB as bytes flow.
final class ArchiveProgressReporter: ArchiveByteSource {
  let offer: ArchiveOffer
  let number: Int
  let total: Int
  let source: CountingSource
  let progress: ((RehydrateProgress) -> Void)?
  private var reported: UInt64 = 0

  init(
    offer: ArchiveOffer, number: Int, count: Int, source: CountingSource, progress: ((RehydrateProgress) -> Void)?
  ) {
    self.offer = offer
    self.number = number
    self.total = count
    self.source = source
    self.progress = progress
  }

  func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    let count = try source.read(into: buffer)
    if let progress, count == 0 || source.count - reported >= 8 << 20 {
      reported = source.count
      progress(
        RehydrateProgress(
          archive: offer.fileName, location: offer.location, number: number, count: total, bytes: source.count,
          archiveSize: offer.size))
    }
    return count
  }
}
