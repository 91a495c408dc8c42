import Foundation
import ReelCore

/// Where things live in a store folder. See docs/store-layout.md.
package struct StoreLayout: Sendable, Equatable {
  package let root: String

  package init(root: String) {
    self.root = (root as NSString).standardizingPath
  }

  /// `--store` if given, else `$REEL_STORE`, else `~/.local/share/reel`.
  package static func resolve(_ explicit: String?, environment: [String: String] = ProcessInfo.processInfo.environment)
    -> StoreLayout
  {
    if let explicit, !explicit.isEmpty { return StoreLayout(root: explicit) }
    if let fromEnvironment = environment["REEL_STORE"], !fromEnvironment.isEmpty {
      return StoreLayout(root: fromEnvironment)
    }
    let home = environment["HOME"] ?? NSHomeDirectory()
    return StoreLayout(root: home + "/.local/share/reel")
  }

  package var catalogPath: String { root + "/catalog.sqlite" }
  /// Private scratch folders of running commands (decrypted archive indexes); see
  /// `PrivateScratch`.
  package var temporaryDirectory: String { root + "/tmp" }
  package var volumesDirectory: String { root + "/volumes" }
  package func volumeDirectory(_ name: String) -> String { volumesDirectory + "/" + name }
  package func descriptorPath(_ name: String) -> String { volumeDirectory(name) + "/volume.json" }
  package func journalDirectory(_ name: String) -> String { volumeDirectory(name) + "/journal" }
  package func liveImagePath(_ name: String) -> String { volumeDirectory(name) + "/live.img" }
  package func baseImagePath(_ name: String) -> String { volumeDirectory(name) + "/base.img" }

  package var isInitialized: Bool { FileManager.default.fileExists(atPath: catalogPath) }

  package func requireInitialized() throws {
    guard isInitialized else {
      throw ReelError(
        .notFound, "no Reel store at \(root)",
        remedy: "run `reel init --store \(root)` first, or point --store / REEL_STORE at an existing store")
    }
  }

  /// Reads a volume's descriptor; the error names the volume and lists what exists.
  package func descriptor(of name: String) throws -> VolumeDescriptor {
    try requireInitialized()
    let path = descriptorPath(name)
    guard let data = FileManager.default.contents(atPath: path) else {
      let known = volumeNames()
      throw ReelError(
        .notFound, "no volume named \"\(name)\" in the store at \(root)",
        remedy: known.isEmpty
          ? "create one with `reel volume create \(name) --size SIZE`"
          : "known volumes: \(known.joined(separator: ", "))")
    }
    do {
      var descriptor = try JSONDecoder().decode(VolumeDescriptor.self, from: data)
      // The folder's name is the volume's name: a rename moves the folder first, then
      // rewrites the descriptor, and may be killed in between.
      descriptor.name = name
      guard VolumeDescriptor.readableVersions.contains(descriptor.formatVersion) else {
        throw ReelError(
          .incompatible,
          "\(path): volume descriptor version \(descriptor.formatVersion) is not supported by this Reel (it reads versions \(VolumeDescriptor.readableVersions.lowerBound)–\(VolumeDescriptor.readableVersions.upperBound))",
          remedy: "use the Reel release that created this volume, or a newer one")
      }
      return descriptor
    } catch let error as ReelError {
      throw error
    } catch {
      throw ReelError(.corrupt, "\(path): unreadable volume descriptor (\(error))")
    }
  }

  package func volumeNames() -> [String] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: volumesDirectory)) ?? []
    // Names never start with "."; such folders are volumes being created or deleted.
    return names.filter { !$0.hasPrefix(".") && FileManager.default.fileExists(atPath: descriptorPath($0)) }.sorted()
  }

  /// Writes `volume.json` into `folder` (the volume's own, or a staging folder that will
  /// be renamed to it), atomically and durably.
  package static func writeDescriptor(_ descriptor: VolumeDescriptor, inFolder folder: String) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
    let data = try encoder.encode(descriptor)
    try Durable.replaceFile(at: folder + "/volume.json", with: Array(data) + [10], mode: 0o600)
  }
}
