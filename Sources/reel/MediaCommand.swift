import ArgumentParser
import Foundation
import ReelCore
import ReelIO
import ReelMedia
import ReelStore

struct MediaCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "media",
    abstract: "Label, list and catalog cold-storage folders and tape cartridges.",
    discussion: """
      MEDIA is dir:PATH (a cold-storage folder), vtape:PATH (a virtual tape cartridge file, or a
      folder of *.vtape files: a library), tape:/dev/nstN (a drive, the no-rewind device) or
      s3://BUCKET[/PREFIX] (an S3-compatible object store, docs/object-storage.md).
      """,
    subcommands: [Label.self, Catalog.self, List.self, Needed.self, Rebuild.self, Expire.self])

  /// The store catalog if there is a store; media commands work without one.
  static func storeCatalog(_ options: StoreOption) throws -> ReelStore.Catalog? {
    let layout = StoreLayout.resolve(options.store)
    return layout.isInitialized ? try Store.open(layout).catalog : nil
  }

  struct Label: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Label a cartridge or folder (a new vtape cartridge is created).",
      discussion: """
        A labeled medium that holds archives is never relabeled without --force: relabeling
        erases it. For vtape:FOLDER the cartridge FOLDER/LABEL.vtape is created.
        """)

    @OptionGroup var options: StoreOption
    @Argument(help: "dir:PATH, vtape:PATH or tape:/dev/nstN.") var media: String
    @Option(help: "The label, e.g. WEEK01 (letters, digits, - and _).") var name: String
    @Option(help: "Reserve the medium for this media set (default: scratch, any set may take it).")
    var mediaSet: String?
    @Option(help: "Capacity of a new vtape cartridge (default 16G) or the most a dir: folder may hold.")
    var capacity: String?
    @Option(
      help: "Make it a parity cartridge of --media-set: one per N data cartridges (RAIT, 1–64).")
    var parityGroup: Int?
    @Flag(help: "Relabel even though the medium holds archives or data that is not Reel's.") var force = false
    @OptionGroup var objectStore: ObjectStoreOptions

    func run() throws {
      try objectStore.activate(for: [media])
      guard MediaLabel.isValidName(name) else {
        throw ReelError(.usage, "invalid label \"\(name)\"", remedy: "use letters, digits, - and _ (at most 64)")
      }
      if let parityGroup {
        guard ParityRole.groupSizes.contains(parityGroup) else {
          throw ReelError(
            .usage, "--parity-group \(parityGroup) is out of range",
            remedy: "give 1 to 64 data cartridges per parity cartridge (4 is a common choice)")
        }
        guard mediaSet != nil else {
          throw ReelError(
            .usage, "a parity cartridge belongs to one media set", remedy: "add --media-set NAME")
        }
        if case .folder = try MediaAddress(parsing: media) {
          throw ReelError(.usage, "parity cartridges are tape cartridges", remedy: "label a vtape: or tape: medium")
        }
        if try MediaAddress(parsing: media).isObjectStore {
          throw ReelError(.usage, "parity cartridges are tape cartridges", remedy: "label a vtape: or tape: medium")
        }
      }
      // Everything is checked before anything is created: a refused label leaves no file behind.
      let address = try MediaAddress(parsing: media).labelTarget(name: name)
      let size = try capacity.map(ByteSize.parse)
      var folderCapacity: UInt64?
      switch address {
      case .virtualTape: break
      case .folder, .objectStore: folderCapacity = size
      case .tapeDrive:
        if size != nil {
          throw ReelError(.usage, "--capacity is for vtape: and dir: media", remedy: "a tape's capacity is the drive's")
        }
      }
      let catalog = try MediaCommand.storeCatalog(options)
      let cartridgeExists: Bool
      if case .virtualTape(let path) = address {
        cartridgeExists = FileManager.default.fileExists(atPath: path)
      } else {
        cartridgeExists = true
      }
      let present = cartridgeExists ? try address.openOne().readLabel() : .blank
      if let catalog {
        var current: String? = nil
        if case .labeled(let old) = present { current = old.cartridgeID }
        let replaced = try MediaLabel.checkUnique(
          name: name, mediaSet: mediaSet, cartridgeID: current, address: address, force: force,
          among: try catalog.cartridges())
        if let replaced { try catalog.forgetCartridge(id: replaced.cartridgeID) }
      }
      try address.createCartridgeIfMissing(capacity: size)
      let volume = try address.openOne()
      switch try volume.readLabel() {
      case .blank:
        break
      case .foreign(let reason):
        guard force else {
          throw ReelError(
            .alreadyExists, "\(address) holds data that is not a Reel label (\(reason)); nothing was written",
            remedy: "check it is the right medium; add --force to erase it")
        }
      case .labeled(let old):
        let held: Int
        do {
          held = try volume.readCatalog().completeArchives.count
        } catch {
          held = -1
        }
        if old.parity?.group != nil && !force {
          throw ReelError(
            .alreadyExists,
            "\(address) is \(old.name), the parity cartridge of group \(old.parity?.group ?? 0) of media set \(old.mediaSet ?? "-"); "
              + "relabeling it leaves that group unprotected, so nothing was written",
            remedy: "to erase it anyway: reel media label \(media) --name \(name) --force")
        }
        guard held == 0 || force else {
          throw ReelError(
            .alreadyExists,
            "\(address) is labeled \(old.name)"
              + (old.mediaSet.map { " (media set \($0))" } ?? "")
              + (held > 0 ? " and holds \(held) archive(s)" : " and its catalog cannot be read")
              + "; Reel keeps archives on media until told otherwise, so nothing was written",
            remedy: "to erase it anyway: reel media label \(media) --name \(name) --force")
        }
        try catalog?.forgetCartridge(id: old.cartridgeID)
      }
      let label = MediaLabel(
        name: name, mediaSet: mediaSet, capacity: folderCapacity,
        parity: parityGroup.map { ParityRole(group: nil, of: $0) })
      try volume.writeLabel(label)
      try catalog?.recordCartridge(
        CartridgeRecord(
          cartridgeID: label.cartridgeID, label: name, mediaSet: mediaSet, mediaSetID: nil, sequence: 0,
          address: volume.address, closed: false, catalogJSON: nil, updated: .now()))
      say(
        "Labeled \(volume.address) as \(name) (cartridge \(label.cartridgeID), \(mediaSet.map { "reserved for media set \($0)" } ?? "scratch"))"
          + (parityGroup.map { ", a parity cartridge for \($0) data cartridges" } ?? ""))
    }
  }

  struct Catalog: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Show what a medium holds: its newest catalog, or --scan to rebuild it by reading everything.",
      discussion: """
        --scan reads and verifies every file (like Bacula's bscan) and records the verified
        archives in the store catalog when there is one, so a lost store learns its media again.
        """)

    @OptionGroup var options: StoreOption
    @Argument(help: "dir:PATH, vtape:PATH (a cartridge or a library) or tape:/dev/nstN.") var media: String
    @Flag(help: "Rebuild the catalog by reading the whole medium.") var scan = false
    @Flag(help: "JSON output (the catalog as it is on the medium).") var json = false
    @OptionGroup var objectStore: ObjectStoreOptions

    func run() throws {
      try objectStore.activate(for: [media])
      let address = try MediaAddress(parsing: media)
      let volumes = try address.open()
      guard !volumes.isEmpty else {
        throw ReelError(.notFound, "\(address) holds no cartridges", remedy: "create one with reel media label")
      }
      let store = try MediaCommand.storeCatalog(options)
      var catalogs: [CartridgeCatalog] = []
      for volume in volumes {
        // In a library, cartridges not labeled yet have no catalog to show.
        if address.isLibrary, case .blank = try volume.readLabel() { continue }
        let catalog = scan ? try volume.scan() : try volume.readCatalog()
        if scan, let store {
          try remember(catalog, at: volume.address, in: store)
        }
        catalogs.append(catalog)
      }
      if json {
        say(jsonText(CatalogsJSON(catalogs: catalogs, library: address.isLibrary)))
        return
      }
      for (index, catalog) in catalogs.enumerated() {
        if index > 0 { say("") }
        printCatalog(catalog)
      }
      let damaged = catalogs.flatMap(\.files).filter { $0.state == .damaged || $0.kind == .foreign }
      if !damaged.isEmpty {
        throw ReelError(
          .corrupt, "\(damaged.count) file(s) on \(address) are damaged or not Reel's (marked above)",
          remedy: "do not rely on those copies; export the archives again to other media")
      }
    }

    private func remember(_ catalog: CartridgeCatalog, at address: String, in store: ReelStore.Catalog) throws {
      try store.recordCartridge(
        CartridgeRecord(
          cartridgeID: catalog.cartridge.id, label: catalog.cartridge.label, mediaSet: catalog.mediaSet?.name,
          mediaSetID: catalog.mediaSet?.id, sequence: catalog.cartridge.sequence, address: address,
          closed: catalog.closed, catalogJSON: String(decoding: try catalog.json(), as: UTF8.self), updated: .now()))
      for entry in catalog.files {
        if let copy = ArchiveCopy(entry: entry, on: catalog) { try store.recordCopy(copy) }
      }
    }

    private func printCatalog(_ catalog: CartridgeCatalog) {
      let set = catalog.mediaSet.map { "media set \($0.name) (\($0.id)), cartridge \(catalog.cartridge.sequence)" }
      say(
        "\(catalog.cartridge.label) (\(catalog.cartridge.id)): \(set ?? "scratch")"
          + (catalog.closed ? ", full" : ""))
      say("FILE\tKIND\tSTATE\tVOLUME\tFROM\tUNTIL\tARCHIVE")
      for entry in catalog.files {
        let archive = entry.archive
        say(
          [
            String(entry.file), entry.kind.rawValue, entry.state?.rawValue ?? "-", archive?.volume ?? "-",
            archive?.fromTime ?? "-", archive?.untilTime ?? "-",
            (archive.map { $0.fileName } ?? "-") + (entry.note.map { "  (\($0))" } ?? ""),
          ].joined(separator: "\t"))
      }
      if catalog.set.count > 1 {
        say(
          "set so far: "
            + catalog.set.map { "\($0.label) #\($0.sequence): \($0.archives.count) archive(s)" }.joined(separator: ", ")
        )
      }
    }
  }

  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "List the media sets, cartridges and what is on each, as the store knows them.")

    @OptionGroup var options: StoreOption
    @Flag(help: "JSON output.") var json = false

    func run() throws {
      let store = try Store.open(StoreLayout.resolve(options.store)).catalog
      let cartridges = try store.cartridges()
      let copies = try store.archiveCopies()
      if json {
        say(jsonText(cartridges.map { CartridgeJSON($0, copies: copies) }))
        return
      }
      if cartridges.isEmpty {
        say("No media yet. Label some with `reel media label MEDIA --name LABEL`.")
        return
      }
      for (set, members) in Dictionary(grouping: cartridges, by: { $0.mediaSet ?? "" }).sorted(by: { $0.key < $1.key })
      {
        say(set.isEmpty ? "scratch" : "media set \(set)")
        for cartridge in members.sorted(by: { ($0.sequence, $0.label) < ($1.sequence, $1.label) }) {
          if let map = cartridge.parityMap {
            say(
              "  \(cartridge.label)\tparity\tgroup \(map.group)\tcovers \(map.memberLabels.joined(separator: ", "))"
                + "\t\(cartridge.address)")
            continue
          }
          let held = copies.filter { $0.cartridgeID == cartridge.cartridgeID }
          say(
            "  \(cartridge.label)\t#\(cartridge.sequence)\t\(cartridge.closed ? "full" : "open")\t"
              + "\(held.count) archive(s)\t\(cartridge.address)")
          for copy in held {
            say(
              "    file \(copy.tapeFile)\t\(copy.volumeName)\t\(copy.fromTime.rfc3339) – \(copy.untilTime.rfc3339)\t"
                + "\(copy.archiveID)\tverified \(copy.verified.rfc3339)")
          }
        }
      }
    }
  }

  struct Needed: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Which cartridges a restore of a volume to a point needs.")

    @OptionGroup var options: StoreOption
    @Argument(
      help: "RFC 3339 time, relative time (\"10 minutes ago\", or -10m after --), bookmark label, seq:N or latest.")
    var point: String
    @Option(help: "The volume to restore.") var volume: String
    @Flag(help: "JSON output.") var json = false

    func run() throws {
      let store = try Store.open(StoreLayout.resolve(options.store)).catalog
      let point = try Point.parse(point)
      if let warning = point.futureWarning(using: "the newest archived state") { warn(warning) }
      let plan = try RestorePlan(volume: volume, point: point.point, copies: store.archiveCopies())
      if json {
        say(jsonText(RestorePlanJSON(plan)))
        return
      }
      say("Restoring \(plan.volume) to \(plan.point) needs \(plan.archives.count) archive(s) of chain \(plan.chainID):")
      for archive in plan.archives {
        say("  #\(archive.chainIndex) \(archive.archiveID)  \(archive.fromTime.rfc3339) – \(archive.untilTime.rfc3339)")
      }
      let parity = try store.cartridges().compactMap(\.parityMap)
      for set in plan.sets {
        let covering = parity.filter { $0.mediaSet.name == set.mediaSet }.filter { map in
          set.cartridges.contains { needed in map.members.contains { $0.label == needed.label } }
        }
        defer {
          for map in covering {
            say(
              "  parity cartridge \(map.parityLabel) can stand in for any one of \(map.memberLabels.joined(separator: ", "))"
            )
          }
        }
        let cartridges = set.cartridges.map {
          "\($0.label) (file\($0.files.count > 1 ? "s" : "") \($0.files.map(String.init).joined(separator: ", ")))"
        }
        say(
          "media set \(set.mediaSet): "
            + (set.missing.isEmpty
              ? cartridges.joined(separator: ", ")
              : "incomplete, lacks \(set.missing.count) archive(s)"))
      }
    }
  }
}

extension MediaCommand {
  struct Rebuild: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Rebuild a lost data cartridge of a media set from its parity cartridge (RAIT).",
      discussion: """
        Reads the group's parity cartridge and its other data cartridges (where the store last
        saw them, or --from) and writes the lost cartridge again, tape file for tape file, onto
        --to: the same label, catalogs and archives, each file checked against its SHA-256.
        """)

    @OptionGroup var options: StoreOption
    @Option(name: .customLong("set"), help: "The media set.") var mediaSet: String
    @Option(help: "The label of the lost cartridge.") var missing: String
    @Option(help: "Where to write it: a blank cartridge (vtape:FILE, vtape:FOLDER or tape:/dev/nstN).")
    var to: String
    @Option(
      parsing: .upToNextOption,
      help: "Media holding the parity cartridge and the other cartridges (default: where the store saw them).")
    var from: [String] = []
    @Option(help: "Capacity of a new vtape cartridge (default 16G).") var capacity: String?
    @OptionGroup var objectStore: ObjectStoreOptions

    func run() throws {
      try objectStore.activate(for: from + [to])
      guard MediaLabel.isValidName(missing) else {
        throw ReelError(.usage, "invalid label \"\(missing)\"", remedy: "give the lost cartridge's label")
      }
      let store = try MediaCommand.storeCatalog(options)
      var sources = try from.map(MediaAddress.init(parsing:))
      if sources.isEmpty {
        let known = try store?.cartridges().filter { $0.mediaSet == mediaSet && $0.label != missing } ?? []
        sources = known.compactMap { try? MediaAddress(parsing: $0.address) }.filter { address in
          if case .virtualTape(let path) = address { return FileManager.default.fileExists(atPath: path) }
          return true
        }
        guard !sources.isEmpty else {
          throw ReelError(
            .notFound, "the store knows no cartridge of media set \"\(mediaSet)\" to rebuild \(missing) from",
            remedy: "name the media holding the parity cartridge and the others with --from MEDIA")
        }
      }
      let report = try CartridgeRebuild.rebuild(
        mediaSet: mediaSet, missing: missing, sources: sources, to: try MediaAddress(parsing: to),
        capacity: try capacity.map(ByteSize.parse), store: store)
      say(
        "Rebuilt \(report.label) on \(report.address): \(report.files) tape files, \(ByteSize.describe(report.bytes)), "
          + "from parity cartridge \(report.parityLabel) (group \(report.group)) and \(report.from.joined(separator: ", ")); "
          + "every file matches the SHA-256 recorded when the parity was written")
    }
  }
}
