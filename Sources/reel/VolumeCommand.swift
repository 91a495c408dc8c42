import ArgumentParser
import Foundation
import ReelArchive
import ReelClones
import ReelCore
import ReelIO
import ReelMedia
import ReelStore

struct VolumeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "volume",
    abstract: "Create, list, promote, rename and delete protected volumes.",
    subcommands: [Create.self, List.self, Promote.self, Rename.self, Delete.self])

  struct Create: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Create a volume: zeros, or starting from an image file or block device (its base).")

    @OptionGroup var options: StoreOption
    @Argument(help: "Volume name (also the NBD export name).") var name: String
    @Option(help: "Size, e.g. 64M or 10G (default with --from: the image's size).") var size: String?
    @Option(help: "Logical block size: 512 or 4096.") var blockSize: UInt32 = 4096
    @Option(help: "Image file or block device the volume starts from.") var from: String?
    @Option(
      help:
        "Live store block size (dedup and compression unit): a power of two from 64K to 4M; fixed for the volume's life."
    ) var storeBlockSize: String = "256K"

    func run() throws {
      let store = try Store.open(StoreLayout.resolve(options.store))
      let storeBlock = try ByteSize.parse(storeBlockSize)
      guard storeBlock <= UInt64(UInt32.max) else {
        throw ReelError(.usage, "store block size \(storeBlockSize) is too large", remedy: "use 64K to 4M")
      }
      let descriptor = try Volumes.create(
        in: store, name: name, size: try size.map(ByteSize.parse), blockSize: blockSize,
        storeBlockSize: UInt32(storeBlock), baseImage: from)
      say(
        "Created volume \(descriptor.name) (\(ByteSize.describe(descriptor.size)), \(descriptor.blockSize)-byte blocks\(from.map { ", from \($0)" } ?? ""))"
      )
    }
  }

  struct List: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "List the store's volumes.")

    @OptionGroup var options: StoreOption
    @Flag(help: "JSON output.") var json = false

    func run() throws {
      let store = try Store.open(StoreLayout.resolve(options.store))
      let volumes = try Volumes.list(in: store)
      let live = LiveStore(store: store)
      let relations = try volumes.map { try Clones.relations(live: live, of: $0) }
      if json {
        say(jsonText(zip(volumes, relations).map(VolumeJSON.init)))
        return
      }
      if volumes.isEmpty {
        say("No volumes yet. Create one with `reel volume create NAME --size SIZE`.")
        return
      }
      say("NAME\tSIZE\tBLOCK\tCREATED\tCLONES")
      for (volume, relation) in zip(volumes, relations) {
        let clones = [relation.originText, relation.clonesText].compactMap { $0 }.joined(separator: "; ")
        say(
          "\(volume.name)\t\(ByteSize.describe(volume.size))\t\(volume.blockSize)\t\(volume.created.rfc3339)\t\(clones.isEmpty ? "-" : clones)"
        )
      }
    }
  }

  struct Promote: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Make a clone independent of its origin.",
      discussion: """
        Copies into the clone's own history, at its clone point, every block it still reads
        from its origin (sharing the origin's chunks where a block is one stored chunk), and
        removes the link, in one transaction. The origin can then be pruned or deleted.
        Works while the clone is served.
        """)

    @OptionGroup var options: StoreOption
    @Argument(help: "The clone.") var name: String
    @Flag(help: "JSON output.") var json = false

    func run() throws {
      let store = try Store.open(StoreLayout.resolve(options.store))
      let report = try Clones.promote(live: LiveStore(store: store), volume: name)
      if json {
        say(jsonText(PromoteJSON(report)))
      } else {
        let promotion = report.promotion
        say(
          "Promoted \(report.volume): it no longer reads \(report.origin) (seq \(report.originSeq)); \(promotion.blocks) blocks now its own (\(promotion.chunksShared) sharing the origin's chunks, \(promotion.chunksStored) rebuilt, \(ByteSize.describe(promotion.storedBytes)) stored)"
        )
      }
    }
  }

  struct Rename: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Rename a volume (not while it is served).",
      discussion: "Clones and origins are linked by volume id: renaming either keeps the link.")

    @OptionGroup var options: StoreOption
    @Argument(help: "Current name.") var name: String
    @Argument(help: "New name.") var newName: String

    func run() throws {
      let store = try Store.open(StoreLayout.resolve(options.store))
      try Clones.rename(live: LiveStore(store: store), volume: name, to: newName)
      say("Renamed volume \(name) to \(newName)")
    }
  }

  struct Delete: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Delete a volume: its journal, images and history in the store.",
      discussion: """
        Asks for the volume's name to be typed unless --yes. Refused while the volume is
        served, while clones read from it (promote or delete them first), and while part of
        its history was never sealed and exported (--force deletes it anyway and says what
        is lost).
        """)

    @OptionGroup var options: StoreOption
    @Argument(help: "Volume name.") var name: String
    @Flag(help: "Do not ask for confirmation.") var yes = false
    @Flag(help: "Delete even history that was never sealed and exported.") var force = false
    @Flag(help: "JSON output.") var json = false

    func run() throws {
      let store = try Store.open(StoreLayout.resolve(options.store))
      _ = try store.layout.descriptor(of: name)
      if !yes {
        guard isatty(STDIN_FILENO) == 1 else {
          throw ReelError(
            .usage, "deleting volume \(name) needs confirmation", remedy: "type its name at a terminal, or pass --yes")
        }
        FileHandle.standardError.write(Data("Type the volume's name (\(name)) to delete it and its history: ".utf8))
        guard readLine() == name else {
          throw ReelError(.usage, "not confirmed; volume \(name) was not deleted")
        }
      }
      let live = LiveStore(store: store)
      let report = try Clones.delete(
        live: live, volume: name, force: force,
        unexported: { descriptor in
          // Sealed is not enough: only archives with a verified copy on media survive the store.
          let history = try live.historyNotOnMedia(of: descriptor)
          return history.isEmpty ? nil : history.description
        })
      if let lost = report.lostHistory { warn("deleted history that was never sealed and exported: \(lost)") }
      if json {
        say(jsonText(DeleteJSON(report)))
      } else {
        say(
          "Deleted volume \(report.volume); \(report.chunksDeleted) chunks no other volume used freed (\(ByteSize.describe(report.bytesFreed)))"
        )
      }
    }
  }
}
