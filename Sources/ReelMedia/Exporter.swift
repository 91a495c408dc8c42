import Foundation
import ReelArchive
import ReelCore
import ReelObjectStore
import ReelStore

/// One archive of an export and where it ended up.
package struct ExportedArchive: Sendable, Equatable {
  package var archiveID: String
  package var fileName: String
  package var cartridgeLabel: String
  /// Where it was written; nil when it was already there.
  package var address: String?
  package var tapeFile: Int
  package var size: UInt64
  /// True when the set already held a verified copy, so nothing was written.
  package var alreadyThere: Bool
}

/// An archive cut off at end of media; it was written whole on a later cartridge.
package struct AbandonedCopy: Sendable, Equatable {
  package var archiveID: String
  package var cartridgeLabel: String
  package var tapeFile: Int
}

package struct ExportReport: Sendable {
  package var mediaSet: String
  package var mediaSetID: String
  package var exported: [ExportedArchive]
  package var abandoned: [AbandonedCopy]
  /// Parity cartridges written at the end of the export (RAIT).
  package var parity: [ParityWritten] = []
  /// Groups whose parity could not be written, and why: the data is exported, unprotected.
  package var parityWarnings: [String] = []
}

/// Copies sealed archives onto the media of one media set: appends to the set's newest
/// cartridge, takes scratch cartridges into the set when one fills, rewrites an archive
/// cut off at end of media whole on the next, reads every archive back and verifies it
/// before it counts, and records each verified copy in the store catalog.
package struct Exporter {
  package var mediaSet: String
  package var targets: [MediaAddress]
  package var store: Catalog?
  package var progress: (String) -> Void = { _ in }
  /// Told of each archive as soon as it is verified (or found already there), so what was
  /// done is known even when the export stops early (a full set).
  package var exported: (ExportedArchive) -> Void = { _ in }
  /// Object Lock retention for archives written to `s3://` targets (docs/object-storage.md).
  package var retention: S3Retention?
  /// Bytes sent of the archive being uploaded to object storage, and its size.
  package var uploaded: (UInt64, UInt64) -> Void = { _, _ in }

  package init(mediaSet: String, targets: [MediaAddress], store: Catalog?) {
    self.mediaSet = mediaSet
    self.targets = targets
    self.store = store
  }

  /// A medium of the targets and what its label says.
  struct Slot {
    var volume: any MediaVolume
    var label: MediaLabel
  }

  /// The cartridge being written and its catalog as it grows.
  private struct Current {
    var slot: Slot
    var catalog: CartridgeCatalog
    /// Joined this run and nothing written whole yet: an archive cut off here is larger
    /// than a whole cartridge, and the next one would not fare better.
    var fresh: Bool
  }

  /// What the targets and the store say about the set before anything is written.
  struct SetState {
    var members: [Slot] = []
    /// Parity cartridges of this set among the targets (RAIT).
    var parity: [Slot] = []
    /// Group sizes the store has seen parity written with for this set.
    var knownParityOf: Set<Int> = []
    /// Groups the store knows a parity cartridge of (at hand or not).
    var knownParityGroups: Set<Int> = []
    /// Sequences of the cartridges written to by this export.
    var touched: Set<Int> = []
    var scratch: [Slot] = []
    /// Why a target cannot take the set, for the error when nothing can.
    var refused: [String] = []
    var setID = ""
    /// The final (or newest) catalog of each cartridge of the set, by sequence.
    var catalogs: [Int: CartridgeCatalog] = [:]
    /// Archives the set already holds whole.
    var onSet: Set<String> = []
    var nextSequence = 1

    func earlier(than sequence: Int) -> [CartridgeCatalog] {
      catalogs.keys.sorted().filter { $0 < sequence }.compactMap { catalogs[$0] }
    }
  }

  package func export(_ paths: [String]) throws -> ExportReport {
    let archives = try paths.map { try SourceArchive(path: $0, store: store) }
    var state = try survey()
    var report = ExportReport(mediaSet: mediaSet, mediaSetID: state.setID, exported: [], abandoned: [])
    var current = try resume(state)
    for archive in archives {
      // A tape is not left with half an archive: the check is between archives there, and
      // within the copy only for folders, which remove their partial file.
      guard Interrupt.signal == nil else {
        throw Interrupt.error(
          "\(report.exported.count) archive(s) exported and verified before it; run the same export again for the rest")
      }
      if state.onSet.contains(archive.manifest.archiveID) {
        let copy = try locate(archive.manifest.archiveID, in: state.catalogs)
        let done = ExportedArchive(
          archiveID: archive.manifest.archiveID, fileName: archive.summary.fileName,
          cartridgeLabel: copy?.label ?? "?", address: nil, tapeFile: copy?.file ?? -1, size: archive.size,
          alreadyThere: true)
        report.exported.append(done)
        exported(done)
        continue
      }
      try place(archive, current: &current, state: &state, report: &report)
      state.onSet.insert(archive.manifest.archiveID)
    }
    if var writing = current {
      try finish(&writing, earlier: state.earlier(than: writing.slot.label.sequence))
    }
    try writeParity(&state, report: &report)
    return report
  }

  /// Reads every target's label and the set's catalogs (from the cartridges at hand, else
  /// as the store last saw them).
  private func survey() throws -> SetState {
    var state = SetState()
    if retention != nil && !targets.contains(where: \.isObjectStore) {
      throw ReelError(
        .usage, "retention is Object Lock's, for s3:// media only; nothing was written",
        remedy: "leave out --retain/--retain-until, or export to s3://BUCKET")
    }
    for volume in try targets.flatMap({ try $0.open() }) {
      if let bucket = volume as? ObjectStoreBucket {
        bucket.retention = retention
        bucket.progress = uploaded
      }
      switch try volume.readLabel() {
      case .labeled(let label) where label.parity != nil:
        // A parity cartridge never takes archives; those of other sets are not touched.
        if label.mediaSet == mediaSet { state.parity.append(Slot(volume: volume, label: label)) }
      case .labeled(let label) where label.mediaSet == mediaSet && label.sequence > 0:
        state.members.append(Slot(volume: volume, label: label))
      case .labeled(let label) where label.mediaSet == nil || label.mediaSet == mediaSet:
        state.scratch.append(Slot(volume: volume, label: label))
      case .labeled(let label):
        state.refused.append("\(volume.address) (\(label.name)) belongs to media set \"\(label.mediaSet ?? "")\"")
      case .blank:
        state.refused.append(
          "\(volume.address) " + (volume.missing.map { "cannot be used: \($0)" } ?? "is not labeled"))
      case .foreign(let reason):
        state.refused.append("\(volume.address) is not labeled by Reel: \(reason)")
      }
    }
    if state.members.isEmpty && state.scratch.isEmpty && !state.refused.isEmpty {
      throw ReelError(
        .notFound,
        "no cartridge among the targets can take media set \"\(mediaSet)\": "
          + state.refused.joined(separator: "; "),
        remedy: "label a blank one for this set: reel media label MEDIA --name LABEL [--media-set \(mediaSet)]")
    }
    state.members.sort { $0.label.sequence < $1.label.sequence }
    let recorded = try store?.cartridges().filter { $0.mediaSet == mediaSet } ?? []
    let maps = recorded.compactMap(\.parityMap)
    state.knownParityOf = Set(maps.map(\.parityOf))
    state.knownParityGroups = Set(maps.map(\.group))
    let known = recorded.filter { $0.sequence > 0 }
    let setIDs = Set(state.members.compactMap(\.label.mediaSetID) + known.compactMap(\.mediaSetID))
    guard setIDs.count <= 1 else {
      throw ReelError(
        .corrupt, "the cartridges named media set \"\(mediaSet)\" carry different set IDs (\(setIDs.sorted()))",
        remedy: "export to one set's cartridges at a time; `reel media catalog MEDIA` shows each one's set")
    }
    state.setID = setIDs.first ?? UUID().uuidString.lowercased()
    for record in known {
      if let json = record.catalogJSON, let catalog = try? CartridgeCatalog.decode(Array(json.utf8)) {
        state.catalogs[record.sequence] = catalog
      }
    }
    for member in state.members {
      state.catalogs[member.label.sequence] = try catalogOf(member.volume)
    }
    state.onSet = Set(state.catalogs.values.flatMap { $0.completeArchives.compactMap { $0.archive?.archiveID } })
    state.onSet.formUnion(try store?.archiveCopies(mediaSet: mediaSet).map(\.archiveID) ?? [])
    state.nextSequence = max(state.members.last?.label.sequence ?? 0, known.map(\.sequence).max() ?? 0) + 1
    return state
  }

  /// The set's newest cartridge, ready to append to, unless it is full.
  private func resume(_ state: SetState) throws -> Current? {
    guard let last = state.members.last, let catalog = state.catalogs[last.label.sequence], !catalog.closed else {
      return nil
    }
    guard try !last.volume.isWriteProtected else {
      throw ReelError(
        .io,
        "\(last.volume.address) (\(last.label.name)), the newest cartridge of media set \"\(mediaSet)\", "
          + "is write-protected: nothing was written",
        remedy: "clear its write protection, or take it out of the targets and give a blank cartridge")
    }
    try last.volume.prepareAppend()
    return Current(slot: last, catalog: catalog, fresh: false)
  }

  /// Writes one archive whole onto the set: on the current cartridge, or — when end of
  /// media cuts it off — again from its start on the next one.
  private func place(
    _ archive: SourceArchive, current: inout Current?, state: inout SetState, report: inout ExportReport
  ) throws {
    let summary = archive.summary
    while true {
      var writing = try current ?? join(&state, for: archive)
      current = writing
      progress("writing \(summary.fileName) to \(writing.slot.volume.address) (\(writing.slot.label.name))")
      state.touched.insert(writing.slot.label.sequence)
      switch try writing.slot.volume.append(archive, dataBlockSize: writing.slot.label.dataBlockSize) {
      case .written(let file, let sha256, let endOfMedia):
        try verify(archive, file: file, sha256: sha256, on: &writing, state: state)
        let entry = TapeFileEntry(
          file: file, kind: .archive, state: .complete, archive: summary, size: archive.size, sha256: sha256)
        writing.catalog.files.append(entry)
        writing.fresh = false
        if let copy = ArchiveCopy(entry: entry, on: writing.catalog) { try store?.recordCopy(copy) }
        let done = ExportedArchive(
          archiveID: summary.archiveID, fileName: summary.fileName, cartridgeLabel: writing.slot.label.name,
          address: writing.slot.volume.address, tapeFile: file, size: archive.size, alreadyThere: false)
        report.exported.append(done)
        exported(done)
        current = writing
        if endOfMedia {
          progress("end of media on \(writing.slot.volume.address) right after \(summary.fileName)")
          try close(&writing, state: &state)
          current = nil
        }
        return
      case .endOfMedia(let file):
        progress("end of media on \(writing.slot.volume.address): \(summary.fileName) goes to the next cartridge")
        // A folder refuses before writing; only a tape leaves the remains of the archive.
        if let file {
          writing.catalog.files.append(TapeFileEntry(file: file, kind: .archive, state: .incomplete, archive: summary))
          report.abandoned.append(
            AbandonedCopy(archiveID: summary.archiveID, cartridgeLabel: writing.slot.label.name, tapeFile: file))
        }
        try close(&writing, state: &state)
        current = nil
        if writing.fresh {
          throw ReelError(
            .mediaFull,
            "\(summary.fileName) (\(ByteSize.describe(archive.size))) does not fit on a whole "
              + "cartridge (\(writing.slot.volume.address))",
            remedy: "use larger cartridges for this set")
        }
      }
    }
  }

  /// Reads the archive back and holds it to what was sent; a mismatch is recorded as
  /// damaged on the cartridge before the export stops.
  private func verify(
    _ archive: SourceArchive, file: Int, sha256: String, on writing: inout Current, state: SetState
  ) throws {
    let summary = archive.summary
    let address = writing.slot.volume.address
    progress("reading \(summary.fileName) back from \(address) file \(file)")
    let verified = try writing.slot.volume.verify(
      file: file, expectedSize: archive.size, describing: "\(summary.fileName) on \(address)")
    guard verified.sha256 != sha256 || verified.manifest.archiveID != summary.archiveID else { return }
    writing.catalog.files.append(
      TapeFileEntry(file: file, kind: .archive, state: .damaged, archive: summary, note: "read-back mismatch"))
    try finish(&writing, earlier: state.earlier(than: writing.slot.label.sequence))
    throw ReelError(
      .corrupt, "\(summary.fileName) read back from \(address) file \(file) differs from what was written",
      remedy: "the medium or drive is failing: use another cartridge and export again")
  }

  /// Marks a cartridge full and writes its final catalog, which later cartridges copy.
  private func close(_ writing: inout Current, state: inout SetState) throws {
    writing.catalog.closed = true
    try finish(&writing, earlier: state.earlier(than: writing.slot.label.sequence))
    state.catalogs[writing.slot.label.sequence] = writing.catalog
  }

  /// Takes the next scratch cartridge into the set, or says the set is full.
  private func join(_ state: inout SetState, for archive: SourceArchive) throws -> Current {
    var skipped = state.refused
    while !state.scratch.isEmpty {
      var slot = state.scratch.removeFirst()
      if try slot.volume.isWriteProtected {
        skipped.append("\(slot.volume.address) (\(slot.label.name)) is write-protected")
        continue
      }
      if let held = try? slot.volume.readCatalog(), !held.completeArchives.isEmpty {
        skipped.append("\(slot.volume.address) (\(slot.label.name)) holds archives; relabel it to reuse it")
        continue
      }
      let sequence = state.nextSequence
      state.nextSequence += 1
      slot.label.mediaSet = mediaSet
      slot.label.mediaSetID = state.setID
      slot.label.sequence = sequence
      progress("taking \(slot.volume.address) (\(slot.label.name)) into media set \(mediaSet) as cartridge \(sequence)")
      let previous = state.earlier(than: sequence)
      let entries = try slot.volume.joinSet(label: slot.label, earlier: previous)
      var catalog = CartridgeCatalog(label: slot.label, files: entries)
      catalog.updateSet(earlier: previous)
      try slot.volume.prepareAppend()
      try record(slot, catalog: nil, closed: false)
      state.members.append(slot)
      state.touched.insert(sequence)
      return Current(slot: slot, catalog: catalog, fresh: true)
    }
    throw ReelError(
      .mediaFull,
      "media set \"\(mediaSet)\" is full: no blank cartridge left for \(archive.summary.fileName)"
        + (skipped.isEmpty ? "" : " (" + skipped.joined(separator: "; ") + ")"),
      remedy: "label a new cartridge (reel media label MEDIA --name LABEL) and run the same export again; "
        + "archives already verified on the set are skipped")
  }

  /// Writes the cartridge's catalog (with the set manifest) and tells the store.
  private func finish(_ writing: inout Current, earlier: [CartridgeCatalog]) throws {
    writing.catalog.updateSet(earlier: earlier)
    try writing.slot.volume.writeCatalog(&writing.catalog)
    try record(writing.slot, catalog: writing.catalog, closed: writing.catalog.closed)
  }

  func record(_ slot: Slot, catalog: CartridgeCatalog?, closed: Bool) throws {
    try store?.recordCartridge(
      CartridgeRecord(
        cartridgeID: slot.label.cartridgeID, label: slot.label.name, mediaSet: slot.label.mediaSet,
        mediaSetID: slot.label.mediaSetID, sequence: slot.label.sequence, address: slot.volume.address,
        closed: closed, catalogJSON: try catalog.map { String(decoding: try $0.json(), as: UTF8.self) },
        updated: .now()))
  }

  private func catalogOf(_ volume: any MediaVolume) throws -> CartridgeCatalog {
    do {
      return try volume.readCatalog()
    } catch let error as ReelError where error.kind == .corrupt {
      progress("\(volume.address): \(error.message); scanning the whole cartridge")
      let scanned = try volume.scan()
      // Verified just now by the scan: an export killed after writing an archive and before
      // its catalog still gets the copy counted, not skipped as "already there" unrecorded.
      for entry in scanned.files {
        if let copy = ArchiveCopy(entry: entry, on: scanned) { try store?.recordCopy(copy) }
      }
      return scanned
    }
  }

  /// Where the set already holds an archive whole: its cartridges' catalogs, else the store.
  private func locate(_ archiveID: String, in catalogs: [Int: CartridgeCatalog]) throws -> (label: String, file: Int)? {
    for catalog in catalogs.values {
      if let entry = catalog.completeArchives.first(where: { $0.archive?.archiveID == archiveID }) {
        return (catalog.cartridge.label, entry.file)
      }
    }
    return try store?.archiveCopies(archiveID: archiveID, mediaSet: mediaSet).first.map {
      ($0.cartridgeLabel, $0.tapeFile)
    }
  }
}

extension ArchiveCopy {
  /// The store's record of a complete, verified archive entry of a set's cartridge.
  package init?(entry: TapeFileEntry, on catalog: CartridgeCatalog, verified: Timestamp = .now()) {
    guard entry.state == .complete, let summary = entry.archive, let set = catalog.mediaSet else { return nil }
    func time(_ text: String) -> Timestamp { Timestamp(rfc3339: text) ?? Timestamp(nanoseconds: 0) }
    self.init(
      archiveID: summary.archiveID, mediaSet: set.name, mediaSetID: set.id, cartridgeID: catalog.cartridge.id,
      cartridgeLabel: catalog.cartridge.label, tapeFile: entry.file, volumeName: summary.volume,
      chainID: summary.chainID, chainIndex: summary.chainIndex, fromSeq: summary.fromSeq, untilSeq: summary.untilSeq,
      fromTime: time(summary.fromTime), untilTime: time(summary.untilTime), size: entry.size ?? 0,
      sha256: entry.sha256 ?? "", verified: verified,
      bookmarks: summary.bookmarks.map { Bookmark(seq: $0.seq, label: $0.label, time: time($0.time)) })
  }
}
