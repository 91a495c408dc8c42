import ArgumentParser
import ReelArchive
import ReelCore
import ReelIO
import ReelStore

struct IngestCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "ingest",
    abstract: "Bring the live store up to date with volumes' journals (serve does this continuously).")

  @OptionGroup var options: StoreOption
  @Argument(help: "Volume names (default: every volume).") var volumes: [String] = []
  @Flag(help: "JSON output.") var json = false

  func run() throws {
    let store = try Store.open(StoreLayout.resolve(options.store))
    let live = LiveStore(store: store)
    let names = volumes.isEmpty ? store.layout.volumeNames() : volumes
    var reports: [IngestJSON] = []
    Interrupt.install()
    for name in names {
      // Each volume's ingest commits as it goes and resumes where it stopped, so stopping
      // between volumes loses nothing.
      try Interrupt.check()
      let report = try live.ingest(volume: name)
      if json {
        reports.append(IngestJSON(volume: name, report: report))
      } else if report.records == 0 {
        say("\(name): up to date at seq \(report.lastSeq)")
      } else {
        say(
          "\(name): ingested seq \(report.firstSeq)…\(report.lastSeq) (\(report.records) records, \(ByteSize.describe(report.bytesWritten)) written, \(report.chunksStored) new chunks = \(ByteSize.describe(report.storedBytes)), \(report.chunksReused) reused)"
        )
      }
    }
    if json { say(jsonText(reports)) }
  }
}

struct PruneCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "prune",
    abstract: "Drop a volume's history older than a window and free chunks nothing needs.",
    discussion: "Journal segments are never pruned here until they are sealed into an archive.")

  @OptionGroup var options: StoreOption
  @Argument(help: "Volume name.") var volume: String
  @Option(help: "Keep history this recent: e.g. 30m, 12h, 7d, 2w.") var keepWithin: String
  @Flag(help: "Keep every bookmark older than the window.") var keepBookmarks = false
  @Flag(help: "JSON output.") var json = false

  func run() throws {
    let window = try DurationText.parse(keepWithin)
    let store = try Store.open(StoreLayout.resolve(options.store))
    let report = try LiveStore(store: store).prune(volume: volume, keepWithin: window, keepBookmarks: keepBookmarks)
    if json {
      say(jsonText(PruneJSON(volume: volume, report: report)))
    } else {
      say(
        "\(volume): history kept from seq \(report.retainedFromSeq)\(report.bookmarksKept > 0 ? " plus \(report.bookmarksKept) older bookmarks" : ""); \(report.versionsDeleted) block versions dropped, \(report.chunksDeleted) chunks freed (\(ByteSize.describe(report.bytesFreed))); \(report.journalSegmentsKept) journal segments kept until sealed\(report.keptForLiveImage.map { "; seq \($0) kept for the lazy live image, which still reads it from the store" } ?? "")"
      )
      for kept in report.keptForClones { say("seq \(kept.seq) kept for clone \(kept.clone)") }
    }
  }
}

struct StoreCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "store", abstract: "Check and repair the live store.", subcommands: [Check.self, Repair.self])

  struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Check catalog and chunks agree; --read-data also re-hashes every chunk.",
      discussion: """
        Exit status 65 when damage is found; each problem names what it affects.
        Also reports folders and files of the store that other users could read (any group or
        other permission bit) or that someone else owns; --fix-permissions repairs them
        (folders 0700, files 0600) and says what it changed.
        """)

    @OptionGroup var options: StoreOption
    @Flag(help: "Read and re-hash every chunk.") var readData = false
    @Flag(help: "Make folders 0700 and files 0600 (owned by the store's owner) where they are looser.")
    var fixPermissions = false
    @Flag(help: "JSON output.") var json = false

    func run() throws {
      let layout = StoreLayout.resolve(options.store)
      let store = try Store.open(layout)
      let report = try LiveStore(store: store).check(readData: readData)
      let permissions = try StorePermissions.check(layout, fix: fixPermissions)
      let loose = permissions.filter { !$0.fixed }
      if json {
        say(jsonText(StoreCheckJSON(report: report, permissions: permissions)))
      } else {
        for entry in permissions {
          say(
            entry.fixedMode.map { "FIXED: \(entry.description); now \(LoosePermission.octal($0))" }
              ?? "PERMISSIONS: \(entry.description)")
        }
        if !loose.isEmpty { say("Run `reel store check --fix-permissions` to make them private.") }
        say(
          "\(report.chunksChecked) chunks (\(report.chunksRead) read and re-hashed), \(report.versionsChecked) block versions, \(ByteSize.describe(report.orphanBytes)) of uncommitted pack data"
        )
        for problem in report.problems {
          say("DAMAGE: \(problem.message)")
          for line in problem.affects { say("  affects \(line)") }
        }
        for volume in report.interruptedVolumes {
          say("Interrupted \(volume): settled by the next clone, delete or prune")
        }
        if report.archivesVerified > 0 {
          say("\(report.archivesVerified) archive(s) imported without re-hashing are now verified.")
        }
        say(report.isClean ? "Store is consistent." : "Store has \(report.problems.count) problems.")
      }
      if !report.isClean || !loose.isEmpty { throw ExitCode(65) }
    }
  }

  struct Repair: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Store damaged chunks again from the journals and sealed archives; say what could not be.",
      discussion: """
        Reads every chunk (as `reel store check --read-data`), rebuilds each damaged one from
        the journal records and base images its block versions were made from, then, with a
        key, from the sealed archives the catalog knows whose files are still there. A chunk
        is accepted only when its SHA-256 matches its name. Exit status 0 when nothing is left
        damaged, 65 when some chunks could not be given back (each named with what it affects).
        Serving, seals and other ingests wait while it runs (it holds the store lock).
        """)

    @OptionGroup var options: StoreOption
    @OptionGroup var keyOptions: KeyOptions
    @Flag(help: "JSON output.") var json = false

    func run() throws {
      let store = try Store.open(StoreLayout.resolve(options.store))
      let live = LiveStore(store: store)
      let keys = try keyOptions.open().map { [$0] }
      let report = try live.repair(
        archives: keys.map { ArchiveRepair.supply(live: live, masterKeys: $0) })
      if json {
        say(jsonText(StoreRepairJSON(report: report)))
      } else {
        say("\(report.chunksChecked) chunks read, \(report.damaged.count) damaged")
        if !report.fromJournal.isEmpty { say("Rebuilt from journal records: \(report.fromJournal.count) chunk(s)") }
        if !report.fromArchives.isEmpty {
          say("Taken again from sealed archives: \(report.fromArchives.count) chunk(s)")
        }
        if keys == nil && !report.unrepaired.isEmpty {
          say("Sealed archives were not searched: give --key (or $REEL_KEY) to search them.")
        } else if !report.archivesRead.isEmpty {
          say("Archives read: \(report.archivesRead.joined(separator: ", "))")
        }
        for chunk in report.unrepaired {
          say("NOT REPAIRED: \(chunk.reason)")
          for line in chunk.affects { say("  affects \(line)") }
        }
        say(
          report.damaged.isEmpty
            ? "Store is consistent; nothing to repair."
            : report.isComplete
              ? "Store repaired."
              : "\(report.unrepaired.count) chunk(s) could not be repaired: the points that need them stay unreadable; rehydrate those ranges from another copy of their archives."
        )
      }
      if !report.isComplete { throw ExitCode(65) }
    }
  }
}
