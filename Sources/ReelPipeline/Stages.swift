import Foundation
import ReelArchive
import ReelCapture
import ReelCodec
import ReelCore
import ReelJournal
import ReelMedia
import ReelStore

/// The stages. Each one is idempotent: it looks at the store catalog (and the run's
/// remembered values) to see what is already done, and does only the rest. With
/// `context.dryRun` a stage only says what it would do.
enum Stages {
  static func run(_ stage: StageDefinition, context: PipelineContext) throws -> StageOutcome {
    switch stage.kind {
    case .cut: try cut(stage, context)
    case .seal: try seal(stage, context)
    case .verify: try verify(stage, context)
    case .export: try export(stage, context)
    case .verifyOnMedia: try verifyOnMedia(stage, context)
    case .recordCatalog: try recordCatalog(stage, context)
    case .pruneJournal: try pruneJournal(stage, context)
    case .offsiteCopy: try offsiteCopy(stage, context)
    case .listCartridges: try listCartridges(stage, context)
    case .rehydrate: try rehydrate(stage, context)
    case .compare: try compare(stage, context)
    }
  }

  static func plan(_ stage: StageDefinition, context: PipelineContext) throws -> StageOutcome {
    precondition(context.dryRun)
    return try run(stage, context: context)
  }

  // MARK: cut

  static func cut(_ stage: StageDefinition, _ context: PipelineContext) throws -> StageOutcome {
    var outcome = StageOutcome()
    let live = context.live
    let bookmarkMode = stage.string("mode") == "bookmark"
    for volume in context.volumes {
      let key = "cut.\(volume)"
      if let fixed = context.value(key) {
        outcome.lines.append(
          "\(volume): " + (fixed == "none" ? "nothing to cut" : "cut at seq \(fixed)") + " (fixed earlier in this run)")
        if fixed != "none" { outcome.items += 1 }
        continue
      }
      let descriptor = try context.store.layout.descriptor(of: volume)
      if !context.dryRun { try live.ingest(volume: volume) }
      var bounds = try live.historyBounds(of: descriptor)
      let from = max(try live.sealedSeq(of: descriptor), bounds.retainedFrom)
      // A dry run does not ingest: what the journal holds beyond the store is read here.
      var journalBarrier: Seq?
      if context.dryRun {
        try context.store.layout.journalReader(of: volume).forEachRecord(fromSeq: bounds.ingested + 1) { record in
          bounds.ingested = record.seq
          if record.kind == .flush || record.kind == .bookmark { journalBarrier = record.seq }
          return true
        }
      }
      // Until a volume has an archive nothing of it is protected: with nothing later to cut
      // at, its first archive holds the state its history starts from (the image it was
      // created from) alone.
      let alone = Sealer.stateAloneIsSealable(
        descriptor: descriptor, bounds: bounds, last: try live.lastSealedArchive(of: descriptor))
      guard bounds.ingested > from || alone else {
        outcome.lines.append("\(volume): nothing journaled after seq \(from)")
        if !context.dryRun { try context.remember(key, "none") }
        continue
      }
      var cut: Seq?
      if bounds.ingested == from {
        cut = from
      } else if bookmarkMode {
        let label = bookmarkLabel(stage, context)
        let existing = try live.bookmarks(of: descriptor, after: 0, through: bounds.ingested).first {
          $0.label == label
        }
        if let existing {
          cut = existing.seq
        } else if context.dryRun {
          outcome.lines.append(
            "\(volume): would place bookmark \"\(label)\" now and cut there (after seq \(bounds.ingested))")
          outcome.items += 1
          continue
        } else {
          let placed = try Bookmarks.create(layout: context.store.layout, volume: volume, label: label)
          context.event("bookmark \(label) placed on \(volume) at seq \(placed.seq)")
          try live.ingest(volume: volume)
          cut = placed.seq
        }
      } else {
        cut = try journalBarrier ?? live.lastBarrier(of: descriptor, after: from, through: bounds.ingested)
        if cut == nil && alone { cut = from }
      }
      guard let cut else {
        outcome.lines.append(
          "\(volume): no flush or bookmark after seq \(from) (journaled up to seq \(bounds.ingested)); nothing to cut")
        if !context.dryRun { try context.remember(key, "none") }
        continue
      }
      let time = journalBarrier == nil ? " (\(try live.time(of: cut, in: descriptor).rfc3339))" : ""
      outcome.items += 1
      outcome.lines.append(
        "\(volume): \(context.dryRun ? "would cut" : "cut") at seq \(cut)\(time); "
          + (cut > from
            ? "history after seq \(from) goes into the next archive"
            : "the volume's first archive holds its state at seq \(cut) alone"))
      if !context.dryRun {
        try context.remember(key, String(cut))
        context.event("cut \(volume) at seq \(cut)")
      }
    }
    outcome.message = "\(outcome.items) volume(s) to seal"
    return outcome
  }

  static func bookmarkLabel(_ stage: StageDefinition, _ context: PipelineContext) -> String {
    let template = stage.string("label") ?? "{pipeline}-run{run}"
    return
      template
      .replacingOccurrences(of: "{pipeline}", with: context.definition.name)
      .replacingOccurrences(of: "{run}", with: context.runID.map(String.init) ?? "N")
      .replacingOccurrences(of: "{date}", with: String(Timestamp.now().rfc3339.prefix(10)))
  }

  // MARK: seal

  static func seal(_ stage: StageDefinition, _ context: PipelineContext) throws -> StageOutcome {
    var outcome = StageOutcome()
    let live = context.live
    for volume in context.volumes {
      let descriptor = try context.store.layout.descriptor(of: volume)
      let fixed = context.value("cut.\(volume)")
      if fixed == "none" {
        outcome.lines.append("\(volume): nothing to seal")
        continue
      }
      let cut = fixed.flatMap { Seq($0) }
      let sealed = try live.sealedSeq(of: descriptor)
      if context.dryRun {
        let window =
          cut == sealed
          ? "the state at seq \(sealed)"
          : "seq \(sealed + 1)…" + (cut.map { String($0) } ?? "the newest flush or bookmark")
        outcome.lines.append("\(volume): would seal \(window) into \(context.archiveDirectory)")
        continue
      }
      let keys = try context.keys()
      if let adopted = try adoptOrphans(volume: volume, descriptor: descriptor, context: context, keys: keys) {
        outcome.lines.append(adopted)
      }
      // The sealed seq alone cannot tell: it is 0 both before and after a first archive
      // that holds only the state at seq 0.
      if let cut, let last = try live.lastSealedArchive(of: descriptor), last.untilSeq >= cut {
        let archive = try live.sealedArchives(of: descriptor).first { $0.untilSeq == cut }
        outcome.lines.append(
          "\(volume): already sealed through seq \(cut)" + (archive.map { " (\($0.fileName))" } ?? ""))
        continue
      }
      context.progress("sealing \(volume)")
      let request = SealRequest(
        volume: volume, until: cut.map { .seq($0) }, outputDirectory: context.archiveDirectory, masterKeys: keys,
        memberLimit: stage.size("member-size") ?? ArchiveFormat.defaultMemberLimit,
        newChain: stage.boolean("new-chain") ?? false,
        formatVersion: stage.string("format").flatMap { Int($0) } ?? SealRequest.defaultFormatVersion)
      switch try Sealer.seal(request, live: live) {
      case .sealed(let archive):
        outcome.items += 1
        outcome.bytes += archive.size
        let range = archive.manifest.range
        outcome.lines.append(
          "\(volume): sealed \(range.seqs) → \((archive.path as NSString).lastPathComponent) (\(ByteSize.describe(archive.size)), read back and verified)"
        )
        context.event("sealed \(volume) through seq \(range.untilSeq)")
      case .nothingToSeal(_, _, let reason):
        outcome.lines.append("\(volume): nothing sealed — \(reason)")
      }
    }
    outcome.message = "\(outcome.items) archive(s) sealed"
    return outcome
  }

  /// An archive a killed seal renamed into place but never recorded: if it continues the
  /// volume's sealed history exactly and verifies with the key, it is recorded now rather
  /// than sealed a second time.
  static func adoptOrphans(volume: String, descriptor: VolumeDescriptor, context: PipelineContext, keys: [SymmetricKey])
    throws -> String?
  {
    let live = context.live
    let folder = context.archiveDirectory
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter {
      $0.hasSuffix(ArchiveFormat.fileSuffix) && !$0.hasPrefix(".")
    }.sorted()
    guard !names.isEmpty else { return nil }
    var known = Set(try live.sealedArchives(of: descriptor).map(\.id))
    var adopted: [String] = []
    for name in names {
      let path = folder + "/" + name
      guard let manifest = try? ArchiveVerifier.readManifest(path: path),
        manifest.volume.id == descriptor.id.description, !known.contains(manifest.archiveID)
      else { continue }
      let last = try live.lastSealedArchive(of: descriptor)
      let bounds = try live.historyBounds(of: descriptor)
      let expectedFrom = max(last?.untilSeq ?? bounds.retainedFrom, bounds.retainedFrom)
      guard manifest.range.fromSeq == expectedFrom, manifest.parentID == nil || manifest.parentID == last?.id,
        manifest.range.untilSeq <= bounds.ingested
      else { continue }
      let verification = try ArchiveVerifier.verify(path: path, masterKeys: keys)
      guard verification.problems.isEmpty else { continue }
      try live.recordSealed(
        SealedArchiveRecord(
          manifest: manifest, fromTime: try live.time(of: manifest.range.fromSeq, in: descriptor),
          untilTime: try live.time(of: manifest.range.untilSeq, in: descriptor), fileName: name, path: path,
          size: verification.structure.totalBytes, sha256: verification.structure.sha256,
          created: Timestamp(rfc3339: manifest.createdAt) ?? .now(), verified: .now()))
      known.insert(manifest.archiveID)
      adopted.append(name)
      context.event("adopted \(name)")
    }
    return adopted.isEmpty
      ? nil
      : "\(volume): recorded \(adopted.joined(separator: ", ")) (sealed and verified by a killed run, never recorded)"
  }

  // MARK: archives the stages share

  /// The catalog's archives of the pipeline's volumes, by volume and chain order.
  static func archives(_ context: PipelineContext) throws -> [SealedArchiveRecord] {
    var result: [SealedArchiveRecord] = []
    for volume in context.volumes {
      let descriptor = try context.store.layout.descriptor(of: volume)
      result += try context.live.sealedArchives(of: descriptor)
    }
    return result
  }

  /// Archives with no verified copy in the media set yet.
  static func pending(in mediaSet: String, _ context: PipelineContext) throws -> [SealedArchiveRecord] {
    let onSet = Set(try context.catalog.archiveCopies(mediaSet: mediaSet).map(\.archiveID))
    return try archives(context).filter { !onSet.contains($0.id) }
  }

  static func requireFiles(_ archives: [SealedArchiveRecord], mediaSet: String) throws {
    let missing = archives.filter { !FileManager.default.fileExists(atPath: $0.path) }
    guard !missing.isEmpty else { return }
    throw ReelError(
      .notFound,
      "\(missing.count) archive(s) have no copy on media set \(mediaSet) and their files are gone: "
        + missing.map(\.path).joined(separator: ", "),
      remedy: "put the files back, or seal a new chain (reel seal --new-chain); their journal segments are kept")
  }

  // MARK: verify

  static func verify(_ stage: StageDefinition, _ context: PipelineContext) throws -> StageOutcome {
    var outcome = StageOutcome()
    let set = stage.string("media-set") ?? context.definition.mediaSet
    let todo = try set.map { try pending(in: $0, context) } ?? archives(context).filter { $0.verified == nil }
    if let set { try requireFiles(todo, mediaSet: set) }
    var failures: [String] = []
    for (number, archive) in todo.enumerated() {
      if context.value("verified.\(archive.id)") != nil {
        outcome.items += 1
        continue
      }
      if context.dryRun {
        outcome.lines.append("would verify \(archive.fileName) (\(ByteSize.describe(archive.size))) with the key")
        outcome.items += 1
        outcome.bytes += archive.size
        continue
      }
      context.progress("verifying \(archive.fileName)", done: number, total: todo.count)
      let result = try ArchiveVerifier.verify(path: archive.path, masterKeys: try context.keys())
      if result.problems.isEmpty && result.structure.sha256 == archive.sha256 {
        try context.catalog.markArchiveVerified(id: archive.id)
        try context.remember("verified.\(archive.id)", "ok")
        outcome.items += 1
        outcome.bytes += archive.size
        outcome.lines.append(
          "\(archive.fileName): OK (\(result.framesChecked) frames, \(result.chunksChecked) chunks)")
        context.event("verified \(archive.fileName)")
      } else {
        let problems =
          result.problems.map(\.description)
          + (result.structure.sha256 == archive.sha256
            ? [] : ["its SHA-256 differs from the one recorded at seal time"])
        failures.append("\(archive.fileName): " + problems.joined(separator: "; "))
      }
    }
    if !failures.isEmpty {
      throw ReelError(
        .corrupt, "\(failures.count) archive(s) failed verification: " + failures.joined(separator: " | "),
        remedy: "they are not exported and their journal segments stay; check the disk, then seal a new chain")
    }
    outcome.message = "\(outcome.items) archive(s) verified"
    return outcome
  }

  // MARK: export

  static func export(_ stage: StageDefinition, _ context: PipelineContext) throws -> StageOutcome {
    var outcome = StageOutcome()
    let set = context.mediaSet(of: stage)
    let targets = stage.media("to") ?? []
    let todo = try pending(in: set, context)
    if context.dryRun {
      for archive in todo {
        outcome.lines.append(
          "would export \(archive.fileName) (\(ByteSize.describe(archive.size))) to media set \(set)")
        outcome.bytes += archive.size
      }
      outcome.items = todo.count
      outcome.lines.append(
        "…and whatever the seal stage of this run seals; targets: \(targets.map(\.description).joined(separator: ", "))"
      )
      outcome.message = "\(todo.count) archive(s) to export"
      return outcome
    }
    try requireFiles(todo, mediaSet: set)
    guard !todo.isEmpty else {
      try requireEveryVolume(on: set, after: stage, context)
      outcome.message = "nothing to export: every archive is on media set \(set)"
      return outcome
    }
    let (report, lines, bytes) = try exportArchives(
      todo.map(\.path), to: targets, mediaSet: set, context: context, verb: "written to")
    outcome.lines = lines
    for copy in report.abandoned {
      outcome.lines.append(
        "cut off at end of media on \(copy.cartridgeLabel) file \(copy.tapeFile); written whole on the next cartridge")
    }
    outcome.bytes = bytes
    outcome.items = report.exported.filter { !$0.alreadyThere }.count
    try requireEveryVolume(on: set, after: stage, context)
    outcome.message = "\(outcome.items) archive(s) exported to media set \(set)"
    return outcome
  }

  /// The promise of a job that exports: once its last stage that puts archives on a media
  /// set or checks them there is done, every volume it protects has an archive on that set.
  /// A volume without one would not survive losing the store, however well the rest went,
  /// so the run fails and names it.
  static func requireEveryVolume(on set: String, after stage: StageDefinition, _ context: PipelineContext) throws {
    let stages = context.definition.stages
    guard !context.dryRun, stages.contains(where: { $0.kind == .export && context.mediaSet(of: $0) == set }),
      stages.last(where: { ($0.kind == .export || $0.kind == .verifyOnMedia) && context.mediaSet(of: $0) == set })?
        .name == stage.name
    else { return }
    let unprotected = try volumesWithoutCopies(on: set, context)
    guard !unprotected.isEmpty else { return }
    throw ReelError(
      .notFound,
      "\(unprotected.count) volume(s) have no verified archive on media set \(set): "
        + unprotected.map { "\($0.volume) (\($0.why))" }.joined(separator: "; "),
      remedy:
        "nothing of them would survive losing this store: see the cut, seal and export stages above for why, fix that (a volume written without a flush yet: `reel seal VOLUME --until latest`), then run the pipeline again"
    )
  }

  /// The pipeline's volumes of which the set holds no archive. A copy counts when it is
  /// recorded (read back and verified when exported, or checked with the key frame by frame
  /// when a store was rehydrated from it) and its newest keyed check on media did not fail.
  static func volumesWithoutCopies(on set: String, _ context: PipelineContext) throws
    -> [(volume: String, why: String)]
  {
    let failed = Set(
      try context.catalog.mediaChecks().filter { !$0.ok }.map { "\($0.archiveID)/\($0.cartridgeID)/\($0.tapeFile)" })
    let held = Set(
      try context.catalog.archiveCopies(mediaSet: set).filter {
        !failed.contains("\($0.archiveID)/\($0.cartridgeID)/\($0.tapeFile)")
      }.map(\.archiveID))
    var result: [(volume: String, why: String)] = []
    for volume in context.volumes {
      let archives = try context.live.sealedArchives(of: try context.store.layout.descriptor(of: volume))
      if archives.isEmpty {
        result.append((volume, "nothing of it is sealed"))
      } else if !archives.contains(where: { held.contains($0.id) }) {
        result.append((volume, "\(archives.count) archive(s) sealed, none with a good copy on the set"))
      }
    }
    return result
  }

  /// Exports archive files to a media set, one event per archive verified on the media.
  static func exportArchives(
    _ paths: [String], to targets: [MediaAddress], mediaSet: String, context: PipelineContext, verb: String
  ) throws -> (report: ExportReport, lines: [String], bytes: UInt64) {
    var exporter = Exporter(mediaSet: mediaSet, targets: targets, store: context.catalog)
    var done = 0
    exporter.progress = { context.progress($0, done: done, total: paths.count) }
    var lines: [String] = []
    var bytes: UInt64 = 0
    exporter.exported = { archive in
      done += 1
      if !archive.alreadyThere { bytes += archive.size }
      lines.append(
        "\(archive.fileName): \(archive.alreadyThere ? "already on" : verb) \(archive.cartridgeLabel) file \(archive.tapeFile), read back and verified"
      )
      context.event("exported \(archive.fileName) to \(mediaSet)")
    }
    let report = try exporter.export(paths)
    return (report, lines, bytes)
  }

  // MARK: verify-on-media

  static func verifyOnMedia(_ stage: StageDefinition, _ context: PipelineContext) throws -> StageOutcome {
    var outcome = StageOutcome()
    let set = context.mediaSet(of: stage)
    let ids = Set(try archives(context).map(\.id))
    let checked = Set(
      try context.catalog.mediaChecks().filter(\.ok).map { "\($0.archiveID)/\($0.cartridgeID)/\($0.tapeFile)" })
    let todo = try context.catalog.archiveCopies(mediaSet: set).filter {
      (ids.contains($0.archiveID) || context.definition.volumes == nil)
        && !checked.contains("\($0.archiveID)/\($0.cartridgeID)/\($0.tapeFile)")
    }
    let cartridges = Dictionary(
      try context.catalog.cartridges().map { ($0.cartridgeID, $0) }, uniquingKeysWith: { first, _ in first })
    var failures: [String] = []
    var number = 0
    for (cartridgeID, copies) in Dictionary(grouping: todo, by: \.cartridgeID).sorted(by: { $0.key < $1.key }) {
      let label = copies[0].cartridgeLabel
      guard let record = cartridges[cartridgeID], let address = try? MediaAddress(parsing: record.address),
        mediaExists(address)
      else {
        outcome.partial = true
        outcome.lines.append(
          "\(label): not at hand (\(cartridges[cartridgeID]?.address ?? "address unknown")); \(copies.count) cop(ies) not checked"
        )
        continue
      }
      if context.dryRun {
        for copy in copies {
          outcome.lines.append(
            "would read back \(copy.volumeName) archive \(copy.archiveID.prefix(8)) from \(label) file \(copy.tapeFile) and verify it with the key"
          )
        }
        outcome.items += copies.count
        continue
      }
      let medium = try address.openOne()
      for copy in copies.sorted(by: { $0.tapeFile < $1.tapeFile }) {
        number += 1
        let what = "\(copy.volumeName) \(seqs(copy.fromSeq, copy.untilSeq)) on \(label) file \(copy.tapeFile)"
        context.progress("reading back \(what)", done: number - 1, total: todo.count)
        var problems: [String]
        do {
          let result = try ArchiveVerifier.verify(
            source: try medium.openArchive(file: copy.tapeFile, size: copy.size), masterKeys: try context.keys(),
            label: what)
          problems = result.problems.map(\.description)
          if result.structure.sha256 != copy.sha256 { problems.append("its SHA-256 differs from the exported one") }
          if result.structure.manifest.archiveID != copy.archiveID { problems.append("it holds another archive") }
        } catch let error as ReelError {
          problems = [error.message]
        }
        try context.catalog.recordMediaCheck(
          MediaCheck(
            archiveID: copy.archiveID, cartridgeID: copy.cartridgeID, tapeFile: copy.tapeFile, checked: .now(),
            ok: problems.isEmpty, detail: problems.isEmpty ? nil : problems.joined(separator: "; ")))
        if problems.isEmpty {
          outcome.items += 1
          outcome.bytes += copy.size
          outcome.lines.append("\(what): OK with the key")
        } else {
          failures.append("\(what): " + problems.joined(separator: "; "))
        }
        context.event("checked \(what)")
      }
    }
    if !failures.isEmpty {
      throw ReelError(
        .corrupt, "\(failures.count) cop(ies) on media failed verification: " + failures.joined(separator: " | "),
        remedy: "those copies no longer count; export to another cartridge (the journal segments stay until then)")
    }
    try requireEveryVolume(on: set, after: stage, context)
    outcome.message = "\(outcome.items) cop(ies) verified on media set \(set)"
    return outcome
  }

  /// An archive's window for people; a first archive may hold only the state it starts from.
  static func seqs(_ from: Seq, _ until: Seq) -> String {
    until > from ? "seq \(from + 1)…\(until)" : "the state at seq \(from)"
  }

  static func mediaExists(_ address: MediaAddress) -> Bool {
    switch address {
    case .folder(let path), .virtualTape(let path), .tapeDrive(let path): FileManager.default.fileExists(atPath: path)
    }
  }

  // MARK: record-catalog

  static func recordCatalog(_ stage: StageDefinition, _ context: PipelineContext) throws -> StageOutcome {
    var outcome = StageOutcome()
    let folder = stage.string("to") ?? context.store.layout.root + "/catalog-copies"
    let keep = stage.integer("keep") ?? 14
    let prefix = "catalog-\(context.definition.name)-run"
    let base = folder + "/" + prefix + (context.runID.map(String.init) ?? "N")
    if context.dryRun {
      outcome.lines.append("would copy the store catalog to \(base).sqlite and list the media in \(base).media.json")
      outcome.message = "catalog copy planned"
      return outcome
    }
    try Durable.makeDirectory(folder)
    if FileManager.default.fileExists(atPath: base + ".sqlite")
      && FileManager.default.fileExists(atPath: base + ".media.json")
    {
      outcome.lines.append("already recorded: \(base).sqlite")
    } else {
      try context.catalog.snapshot(to: base + ".sqlite")
      try Durable.replaceFile(at: base + ".media.json", with: try mediaListJSON(context))
      try Durable.syncDirectory(folder)
      context.event("catalog copied to \(base).sqlite")
      outcome.lines.append("catalog copied to \(base).sqlite; media list in \(base).media.json")
    }
    outcome.bytes = (try? PosixFile.openForReading(base + ".sqlite").size()) ?? 0
    outcome.items = 1
    // Keep the newest copies of this pipeline.
    let runs = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).compactMap { name -> Int? in
      guard name.hasPrefix(prefix), name.hasSuffix(".sqlite") else { return nil }
      return Int(name.dropFirst(prefix.count).dropLast(".sqlite".count))
    }.sorted()
    for old in runs.dropLast(keep) {
      for suffix in [".sqlite", ".media.json"] { unlink(folder + "/" + prefix + String(old) + suffix) }
      outcome.lines.append("dropped the copy of run \(old) (keeping \(keep))")
    }
    try Durable.syncDirectory(folder)
    outcome.message = "catalog recorded"
    return outcome
  }

  /// Media sets, cartridges and the archive copies on each, as JSON for a person or a script.
  static func mediaListJSON(_ context: PipelineContext) throws -> [UInt8] {
    let copies = try context.catalog.archiveCopies()
    let cartridges: [[String: Any]] = try context.catalog.cartridges().map { cartridge in
      [
        "label": cartridge.label, "cartridge_id": cartridge.cartridgeID, "media_set": cartridge.mediaSet ?? NSNull(),
        "sequence": cartridge.sequence, "address": cartridge.address, "closed": cartridge.closed,
        "archives": copies.filter { $0.cartridgeID == cartridge.cartridgeID }.map {
          [
            "archive_id": $0.archiveID, "volume": $0.volumeName, "tape_file": $0.tapeFile, "from_seq": $0.fromSeq,
            "until_seq": $0.untilSeq, "from_time": $0.fromTime.rfc3339, "until_time": $0.untilTime.rfc3339,
            "size": $0.size, "sha256": $0.sha256,
          ] as [String: Any]
        },
      ]
    }
    let document: [String: Any] = ["written": Timestamp.now().rfc3339, "cartridges": cartridges]
    return Array(
      try JSONSerialization.data(
        withJSONObject: document, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]))
      + [10]
  }

  // MARK: prune-journal

  static func pruneJournal(_ stage: StageDefinition, _ context: PipelineContext) throws -> StageOutcome {
    var outcome = StageOutcome()
    let copies = stage.integer("copies") ?? 1
    let sets = stage.strings("media-sets") ?? []
    for volume in context.volumes {
      if context.dryRun {
        let plan = try context.live.journalPrunePlan(volume: volume, copies: copies, mediaSets: sets)
        let deletable = plan.filter(\.deletable)
        outcome.items += deletable.count
        outcome.bytes += deletable.reduce(0) { $0 + $1.size }
        outcome.lines.append(
          "\(volume): would delete \(deletable.count) of \(plan.count) segment(s) (\(ByteSize.describe(deletable.reduce(0) { $0 + $1.size })))"
            + (plan.first { !$0.deletable }.map { "; keeps from segment \($0.number): \($0.reason)" } ?? ""))
        continue
      }
      let report = try context.live.pruneJournal(volume: volume, copies: copies, mediaSets: sets) { segment in
        context.event("deleted \(volume) segment \(segment.number) (seq \(segment.firstSeq)…\(segment.lastSeq ?? 0))")
      }
      outcome.items += report.deleted.count
      outcome.bytes += report.bytesFreed
      outcome.lines.append(
        "\(volume): deleted \(report.deleted.count) segment(s) (\(ByteSize.describe(report.bytesFreed))), kept \(report.kept.count)"
          + (report.kept.first.map { "; segment \($0.number) stays: \($0.reason)" } ?? ""))
    }
    outcome.message =
      "\(outcome.items) segment(s) \(context.dryRun ? "deletable" : "deleted") (\(ByteSize.describe(outcome.bytes)))"
    return outcome
  }

  // MARK: offsite-copy

  static func offsiteCopy(_ stage: StageDefinition, _ context: PipelineContext) throws -> StageOutcome {
    var outcome = StageOutcome()
    let from = stage.string("from-media-set") ?? "default"
    let set = context.mediaSet(of: stage)
    let targets = stage.media("to") ?? []
    let cutoff = Timestamp(
      nanoseconds: Timestamp.now().nanoseconds - (stage.duration("since") ?? .seconds(7 * 86_400)).nanoseconds)
    let wanted = Set(try archives(context).map(\.id))
    let sourceCopies = try context.catalog.archiveCopies(mediaSet: from).filter {
      $0.untilTime >= cutoff && (context.definition.volumes == nil || wanted.contains($0.archiveID))
    }
    let already = Set(try context.catalog.archiveCopies(mediaSet: set).map(\.archiveID))
    var order: [String] = []
    for copy in sourceCopies.sorted(by: { ($0.volumeName, $0.chainIndex) < ($1.volumeName, $1.chainIndex) })
    where !already.contains(copy.archiveID) && !order.contains(copy.archiveID) {
      order.append(copy.archiveID)
    }
    let records = Dictionary(try allArchives(context).map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    if context.dryRun {
      for id in order {
        let copy = sourceCopies.first { $0.archiveID == id }!
        let local = records[id].map { FileManager.default.fileExists(atPath: $0.path) } ?? false
        outcome.lines.append(
          "would copy \(copy.volumeName) \(seqs(copy.fromSeq, copy.untilSeq)) to media set \(set) from \(local ? "its local file" : "\(copy.cartridgeLabel) file \(copy.tapeFile)")"
        )
        outcome.bytes += copy.size
      }
      outcome.items = order.count
      outcome.message = "\(order.count) archive(s) to copy offsite"
      return outcome
    }
    guard !order.isEmpty else {
      outcome.message =
        "nothing to copy: media set \(set) holds every archive of media set \(from) since \(cutoff.rfc3339)"
      return outcome
    }
    let staging = context.store.layout.root + "/run/offsite-staging"
    defer { try? FileManager.default.removeItem(atPath: staging) }
    var paths: [String] = []
    for id in order {
      if let record = records[id], let size = try? PosixFile.openForReading(record.path).size(), size == record.size {
        paths.append(record.path)
        continue
      }
      paths.append(
        try stageFromMedia(id, copies: sourceCopies.filter { $0.archiveID == id }, into: staging, context: context))
    }
    let (report, lines, bytes) = try exportArchives(
      paths, to: targets, mediaSet: set, context: context, verb: "copied to")
    outcome.lines = lines
    outcome.bytes = bytes
    outcome.items = report.exported.filter { !$0.alreadyThere }.count
    outcome.message = "\(outcome.items) archive(s) copied from media set \(from) to \(set)"
    return outcome
  }

  static func allArchives(_ context: PipelineContext) throws -> [SealedArchiveRecord] {
    var result: [SealedArchiveRecord] = []
    for volume in context.store.layout.volumeNames() {
      result += try context.live.sealedArchives(of: try context.store.layout.descriptor(of: volume))
    }
    return result
  }

  /// Reads an archive off a cartridge of the source set into a staging file, checked
  /// against the SHA-256 recorded when that copy was verified.
  static func stageFromMedia(_ id: String, copies: [ArchiveCopy], into staging: String, context: PipelineContext)
    throws -> String
  {
    let cartridges = try context.catalog.cartridges()
    for copy in copies {
      guard let record = cartridges.first(where: { $0.cartridgeID == copy.cartridgeID }),
        let address = try? MediaAddress(parsing: record.address), mediaExists(address)
      else { continue }
      try Durable.makeDirectory(staging)
      let path = staging + "/" + id + ArchiveFormat.fileSuffix
      let partial = path + ".partial"
      context.progress(
        "reading \(copy.volumeName) archive \(id.prefix(8)) from \(copy.cartridgeLabel) file \(copy.tapeFile)")
      var source = try address.openOne().openArchive(file: copy.tapeFile, size: copy.size)
      let file = try PosixFile(path: partial, flags: O_WRONLY | O_CREAT | O_TRUNC)
      let hasher = SHA256Hasher()
      let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
      defer { buffer.deallocate() }
      var offset: UInt64 = 0
      while true {
        let count = try source.read(into: buffer)
        if count == 0 { break }
        let piece = UnsafeRawBufferPointer(rebasing: buffer[0..<count])
        hasher.update(piece)
        try file.write(piece, at: offset)
        offset += UInt64(count)
      }
      try file.sync()
      guard hasher.finish().hex == copy.sha256 else {
        unlink(partial)
        continue
      }
      try Durable.rename(partial, to: path)
      return path
    }
    throw ReelError(
      .notFound, "archive \(id) is not at hand: its file is gone and no cartridge holding it is reachable",
      remedy: "load a cartridge of the source set that holds it (reel media needed shows which)")
  }

  // MARK: list-cartridges

  static func listCartridges(_ stage: StageDefinition, _ context: PipelineContext) throws -> StageOutcome {
    var outcome = StageOutcome()
    let set = context.mediaSet(of: stage)
    let cutoff = Timestamp(
      nanoseconds: Timestamp.now().nanoseconds - (stage.duration("since") ?? .seconds(7 * 86_400)).nanoseconds)
    let copies = try context.catalog.archiveCopies(mediaSet: set).filter { $0.untilTime >= cutoff }
    let cartridges = try context.catalog.cartridges().filter { $0.mediaSet == set }
    for cartridge in cartridges {
      let held = copies.filter { $0.cartridgeID == cartridge.cartridgeID }
      guard !held.isEmpty else { continue }
      let volumes = Set(held.map(\.volumeName)).sorted()
      let bytes = held.reduce(UInt64(0)) { $0 + $1.size }
      outcome.items += 1
      outcome.bytes += bytes
      outcome.lines.append(
        "SEND OFFSITE: \(cartridge.label) (media set \(set), cartridge \(cartridge.sequence), \(cartridge.address)): \(held.count) archive(s), \(ByteSize.describe(bytes)), volumes \(volumes.joined(separator: ", "))\(cartridge.closed ? ", full" : "")"
      )
    }
    outcome.message = "\(outcome.items) cartridge(s) to send offsite"
    return outcome
  }

  // MARK: rehydrate (DR drill)

  static func rehydrate(_ stage: StageDefinition, _ context: PipelineContext) throws -> StageOutcome {
    var outcome = StageOutcome()
    let scratch =
      context.value("drill.scratch") ?? stage.string("scratch")
      ?? context.store.layout.root + "/drill/run-\(context.runID.map(String.init) ?? "N")"
    var addresses: [MediaAddress] = stage.media("from") ?? []
    if addresses.isEmpty {
      let set = stage.string("media-set") ?? context.definition.mediaSet ?? "default"
      addresses = try context.catalog.cartridges().filter { $0.mediaSet == set && $0.sequence > 0 }
        .compactMap { try? MediaAddress(parsing: $0.address) }.filter(mediaExists)
      guard !addresses.isEmpty else {
        throw ReelError(
          .notFound, "no cartridge of media set \(set) is at hand",
          remedy: "load the set's cartridges, or give the stage `from: [MEDIA...]`")
      }
    }
    if context.dryRun {
      outcome.lines.append(
        "would rehydrate \(context.definition.volumes?.joined(separator: ", ") ?? "every volume") from \(addresses.map(\.description).joined(separator: ", ")) into the scratch store \(scratch)"
      )
      outcome.message = "rehydrate planned"
      return outcome
    }
    if context.value("drill.scratch") == nil {
      // A scratch folder left by an earlier drill is never reused: it would merge.
      if FileManager.default.fileExists(atPath: scratch) { try FileManager.default.removeItem(atPath: scratch) }
      try context.remember("drill.scratch", scratch)
    }
    let supplies = try addresses.map { try MediaArchiveSupply($0) }
    let store = try Store.initialize(StoreLayout(root: scratch)).store
    var current = ""
    let report = try Rehydrator.run(
      RehydrateRequest(supplies: supplies, masterKeys: try context.keys(), volumes: context.definition.volumes ?? []),
      store: store,
      progress: { progress in
        if progress.archive != current {
          current = progress.archive
          context.event("importing \(progress.archive)")
        }
        context.progress(
          "\(progress.archive) \(ByteSize.describe(progress.bytes)) from \(progress.location)",
          done: progress.number - 1,
          total: progress.count)
      })
    for volume in report.volumes {
      outcome.items += volume.imported.count
      outcome.bytes += volume.bytesRead
      // Only what the scratch store can restore: a volume whose whole history is its first
      // archive's state at seq 0 restores at seq 0, one with no archive imported does not.
      if !volume.imported.isEmpty || !volume.alreadyInStore.isEmpty {
        try context.remember("drill.latest.\(volume.volume)", String(volume.restorableUntilSeq))
      }
      outcome.lines.append(
        "\(volume.volume): \(volume.imported.count) archive(s) imported, \(volume.alreadyInStore.count) already there; restorable up to seq \(volume.restorableUntilSeq) (\(volume.restorableUntilTime ?? "-"))"
      )
      for missing in volume.missing { outcome.lines.append("  MISSING \(missing)") }
      for damaged in volume.damaged { outcome.lines.append("  DAMAGED \(damaged)") }
    }
    let missing = notRehydrated(context)
    for volume in missing {
      outcome.lines.append("\(volume): NOT REHYDRATED — no archive of it could be imported from the media")
    }
    outcome.partial = !report.complete
    outcome.message =
      "\(report.volumes.count - missing.count) volume(s) rehydrated into \(scratch)"
      + (report.complete ? "" : " (incomplete)")
      + (missing.isEmpty ? "" : "; not rehydrated: \(missing.joined(separator: ", "))")
    // The compare stage reports them after comparing the rest; without one the drill ends here.
    if !missing.isEmpty && !context.definition.stages.contains(where: { $0.kind == .compare }) {
      throw notRehydratedError(missing, context)
    }
    return outcome
  }

  /// Volumes of the store the drill protects that the scratch store cannot restore.
  static func notRehydrated(_ context: PipelineContext) -> [String] {
    context.volumes.filter { context.value("drill.latest.\($0)") == nil }
  }

  /// `comparedAlike`: the volumes the compare stage found identical, said here because a
  /// failed stage's report keeps only its message.
  static func notRehydratedError(_ missing: [String], _ context: PipelineContext, comparedAlike: Int? = nil)
    -> ReelError
  {
    ReelError(
      .notFound,
      "\(missing.count) volume(s) of the store could not be rebuilt from the media: \(missing.joined(separator: ", "))"
        + (comparedAlike.map { "; the other \($0) volume(s) were restored and identical to the live store" } ?? ""),
      remedy:
        "a disaster would lose them: seal and export them (the nightly pipeline), or see the rehydrate stage's lines for archives missing or damaged on the media"
    )
  }

  // MARK: compare (DR drill)

  static func compare(_ stage: StageDefinition, _ context: PipelineContext) throws -> StageOutcome {
    var outcome = StageOutcome()
    if context.dryRun {
      outcome.lines.append(
        "would restore the latest rehydrated point of each volume and compare it with the live store")
      outcome.message = "compare planned"
      return outcome
    }
    guard let scratch = context.value("drill.scratch") else {
      throw ReelError(.notFound, "no scratch store: the rehydrate stage did not run in this run")
    }
    let scratchStore = try Store.open(StoreLayout(root: scratch))
    var mismatches: [String] = []
    let missing = notRehydrated(context)
    for volume in scratchStore.layout.volumeNames() where !missing.contains(volume) {
      guard let latest = context.value("drill.latest.\(volume)").flatMap({ Seq($0) }) else {
        outcome.partial = true
        outcome.lines.append("\(volume): nothing restorable in the scratch store")
        continue
      }
      let image = scratch + "/restored-\(volume).img"
      context.progress("restoring \(volume) at seq \(latest) from the scratch store")
      let restored = try Restore.run(
        store: scratchStore, volume: volume, at: .seq(latest), output: image, overwrite: true)
      let restoredHash = try hashFile(image)
      context.event("restored \(volume) at seq \(latest)")
      context.progress("reading \(volume) at seq \(latest) from the live store")
      let liveHash: String
      do {
        liveHash = try hashView(VolumeView(live: context.live, volume: volume, at: .seq(latest)))
      } catch let error as ReelError {
        outcome.partial = true
        outcome.lines.append(
          "\(volume): restored seq \(latest) but cannot read it from the live store: \(error.message)")
        continue
      }
      outcome.items += 1
      outcome.bytes += restored.size
      if restoredHash == liveHash {
        outcome.lines.append(
          "\(volume): restored seq \(latest) (\(restored.resolved.time.rfc3339)), \(ByteSize.describe(restored.size)), sha256 \(restoredHash.prefix(16))… = live store"
        )
      } else {
        mismatches.append(
          "\(volume) at seq \(latest): restored sha256 \(restoredHash.prefix(16))…, live store \(liveHash.prefix(16))…")
      }
    }
    if !(stage.boolean("keep-scratch") ?? false) {
      try? FileManager.default.removeItem(atPath: scratch)
      outcome.lines.append("scratch store \(scratch) removed")
    } else {
      outcome.lines.append("scratch store kept at \(scratch)")
    }
    if !mismatches.isEmpty {
      throw ReelError(
        .corrupt, "the drill's restore differs from the live store: " + mismatches.joined(separator: "; "),
        remedy: "run `reel verify` on the archives and `reel store check --read-data`; keep the media")
    }
    if !missing.isEmpty { throw notRehydratedError(missing, context, comparedAlike: outcome.items) }
    outcome.message = "\(outcome.items) volume(s) restored and identical to the live store"
    return outcome
  }

  static func hashFile(_ path: String) throws -> String {
    let file = try PosixFile.openForReading(path)
    let hasher = SHA256Hasher()
    let size = try file.size()
    var offset: UInt64 = 0
    while offset < size {
      let piece = try file.read(at: offset, count: Int(min(UInt64(4 << 20), size - offset)))
      if piece.isEmpty { break }
      piece.withUnsafeBytes { hasher.update($0) }
      offset += UInt64(piece.count)
    }
    return hasher.finish().hex
  }

  static func hashView(_ view: VolumeView) throws -> String {
    let hasher = SHA256Hasher()
    var offset: UInt64 = 0
    while offset < view.size {
      let length = Int(min(UInt64(4 << 20), view.size - offset))
      let bytes = try view.read(offset: offset, length: length)
      bytes.withUnsafeBytes { hasher.update($0) }
      offset += UInt64(length)
    }
    return hasher.finish().hex
  }
}
