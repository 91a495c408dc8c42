import ArgumentParser
import Foundation
import ReelArchive
import ReelCodec
import ReelCore
import ReelIO
import ReelMedia
import ReelStore

struct RehydrateCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "rehydrate",
    abstract: "Rebuild a live point-in-time store from sealed archives on media and the key alone.",
    discussion: """
      Reads the catalogs on the media (or the archives themselves), verifies each archive
      as it imports it (checksums, HMAC, every frame and chunk), and adds the volumes'
      history to --store so that restore, timeline and serve --at work on it. Only the
      archives the chosen volumes and --until need are read. A killed run resumes where it
      stopped. Archives that cannot be imported yet (an earlier one of the chain is on
      another cartridge) are copied aside into the store and used in a later run.
      Exit status: 0 complete, 3 partial (missing, damaged, withheld or refused archives, or history lost to
      damage beyond repair — LOST names the seq and time range, and every frame that authenticated before
      it was imported; the report says what can still be restored) or media damaged (a stretch of a cartridge could not be read, or an
      archive had to be repaired from its parity: complete, but copy that medium), 77 wrong key.
      """)

  @OptionGroup var options: StoreOption
  @OptionGroup var keyOptions: KeyOptions
  @Option(
    name: .long, parsing: .upToNextOption,
    help: "Media: dir:PATH, vtape:PATH, tape:/dev/nstN, s3://BUCKET[/PREFIX], or an archive file or folder.")
  var from: [String]
  @Option(name: .long, help: "Only this volume (repeatable).") var volume: [String] = []
  @Option(
    parsing: .unconditional,
    help: "Import what restores up to this point need: RFC 3339 time, relative time (-10m), bookmark, seq:N or latest.")
  var until: String?
  @Flag(help: "Allow a store that already holds other volumes.") var merge = false
  @Flag(
    help:
      "Re-hash every chunk while importing (else frames are authenticated and records CRC-checked; run `reel store check --read-data` later)."
  )
  var verify = false
  @Flag(help: "JSON report.") var json = false
  @OptionGroup var objectStore: ObjectStoreOptions

  /// An interrupted rehydration keeps what it imported; the same command resumes it.
  static func resumable<T>(_ body: () throws -> T) throws -> T {
    do {
      return try body()
    } catch let error as ReelError where error.kind == .interrupted {
      throw Interrupt.error(
        "archives imported so far are kept, the one being imported when it stopped was not recorded; run the same command again to resume"
      )
    }
  }

  func run() throws {
    try objectStore.activate(for: from)
    guard options.store != nil || ProcessInfo.processInfo.environment["REEL_STORE"] != nil else {
      throw ReelError(
        .usage, "rehydrate needs the store folder to build",
        remedy: "give --store DIR (an empty folder, or the store of an earlier interrupted run)")
    }
    let layout = StoreLayout.resolve(options.store)
    let master = try keyOptions.open()
    guard let master else { throw ReelError(.usage, "rehydrate needs the master key", remedy: "give --key FILE") }
    Interrupt.install()
    let until = try self.until.map { try Point.parse($0) }
    if let warning = until?.futureWarning(using: "the newest state the archives hold") { warn(warning) }
    let supplies = try from.map(archiveSupply(for:))
    // A cartridge rebuilt from its group's parity (or one that could not be) is said first.
    for note in supplies.compactMap({ $0 as? MediaArchiveSupply }).flatMap(\.parityNotes) {
      if json { warn(note) } else { say("PARITY    \(note)") }
    }
    let store = try Store.initialize(layout).store
    let terminal = isatty(2) == 1 && !json
    let started = Date()
    let report = try Self.resumable {
      try Rehydrator.run(
        RehydrateRequest(
          supplies: supplies, masterKeys: [master], volumes: volume, until: until?.pastOrLatest(),
          merge: merge, verifyContent: verify),
        store: store,
        progress: terminal
          ? { progress in
            let elapsed = max(Date().timeIntervalSince(started), 0.001)
            var line =
              "\r[\(progress.number)/\(progress.count)] \(progress.archive) \(ByteSize.describe(progress.bytes))"
            if let size = progress.archiveSize {
              line += " of \(ByteSize.describe(size))"
            }
            line += String(format: " %.0f MB/s", Double(progress.bytes) / elapsed / 1e6)
            line += "  \(progress.location)\u{1B}[K"
            FileHandle.standardError.write(Data(line.utf8))
          } : nil)
    }
    if terminal { FileHandle.standardError.write(Data("\n".utf8)) }
    if json {
      say(jsonText(RehydrateJSON(report, store: layout.root)))
    } else {
      for refused in report.refused { say("REFUSED   \(refused)") }
      for problem in report.mediaProblems { say("MEDIA     \(problem)") }
      for result in report.volumes { Self.describe(result) }
    }
    if !json && !verify && report.volumes.contains(where: { !$0.imported.isEmpty }) {
      say(
        "Frames were authenticated and chunk records checksummed on import; chunk contents count as unverified until `reel store check --read-data --store \(layout.root)` re-hashes them."
      )
    }
    if !report.clean { throw ExitCode(3) }
  }

  static func describe(_ result: RehydratedVolume) {
    say(
      "\(result.volume): \(result.imported.count) archive(s) imported (\(ByteSize.describe(result.bytesRead)) read, verified), \(result.alreadyInStore.count) already in the store"
    )
    if !result.neededBy.isEmpty {
      say("  (history imported for clone(s) \(result.neededBy.joined(separator: ", ")): their origin)")
    }
    for offer in result.imported {
      let seqs =
        offer.untilSeq > offer.fromSeq
        ? "seq \(offer.fromSeq + 1)…\(offer.untilSeq)" : "the state at seq \(offer.fromSeq)"
      say("  imported  \(offer.fileName)  \(seqs)  from \(offer.location)")
    }
    for offer in result.setAside { say("  set aside \(offer.fileName) (waits for an earlier archive of its chain)") }
    for missing in result.missing { say("  MISSING   \(missing)") }
    for damaged in result.damaged { say("  DAMAGED   \(damaged)") }
    for lost in result.lost { say("  LOST      \(lost.sentence)") }
    for later in result.notImported { say("  NOT IMPORTED \(later)") }
    for repaired in result.repaired { say("  REPAIRED  \(repaired)") }
    for range in result.damageOnMedia { say("  MEDIA     \(range)") }
    for withheld in result.withheld { say("  WITHHELD  \(withheld)") }
    // A volume whose only archive holds its starting state restores at seq 0.
    if !result.imported.isEmpty || !result.alreadyInStore.isEmpty
      || result.lost.contains(where: { $0.importedThrough != nil })
    {
      say(
        "  restorable: any point up to seq \(result.restorableUntilSeq) (\(result.restorableUntilTime ?? "?"))\(result.restorableBookmarks.isEmpty ? "" : "; bookmarks \(result.restorableBookmarks.joined(separator: ", "))")"
      )
    } else {
      say("  nothing restorable yet")
    }
  }
}

/// An archive source a user names: a folder or file of archives (`dir:` optional), or
/// labeled media (`vtape:`, `tape:`, a `dir:` cold-storage folder), read by their catalogs.
func archiveSupply(for text: String) throws -> any ArchiveSupply {
  if text.hasPrefix("vtape:") || text.hasPrefix("tape:") || text.hasPrefix("s3:") {
    return try MediaArchiveSupply(MediaAddress(parsing: text))
  }
  let path = text.hasPrefix("dir:") ? String(text.dropFirst(4)) : text
  if case .labeled = try ColdStorageFolder(path: path).readLabel() {
    return try MediaArchiveSupply(.folder(path))
  }
  return ArchiveFiles(path: path)
}
