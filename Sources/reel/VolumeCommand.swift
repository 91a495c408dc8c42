import ArgumentParser
import ReelCore
import ReelIO
import ReelStore

struct VolumeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "volume",
    abstract: "Create and list protected volumes.",
    subcommands: [Create.self, List.self])

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
      if json {
        say(jsonText(volumes.map(VolumeJSON.init)))
        return
      }
      if volumes.isEmpty {
        say("No volumes yet. Create one with `reel volume create NAME --size SIZE`.")
        return
      }
      say("NAME\tSIZE\tBLOCK\tCREATED")
      for volume in volumes {
        say("\(volume.name)\t\(ByteSize.describe(volume.size))\t\(volume.blockSize)\t\(volume.created.rfc3339)")
      }
    }
  }
}
