import Foundation
import ReelCore
import ReelStore

/// The checks `reel media label` makes before it writes anything.
extension MediaAddress {
  /// The one medium a label `name` goes to: for a library folder, its cartridge
  /// `NAME.vtape`. A vtape path that does not exist becomes a new cartridge file only when
  /// it is named `*.vtape` inside an existing folder; anything else is most likely a
  /// mistyped library folder, and a cartridge file under that name would hide the mistake.
  package func labelTarget(name: String) throws -> MediaAddress {
    guard case .virtualTape(let path) = self else { return self }
    if isLibrary { return .virtualTape(path + "/\(name).vtape") }
    guard !FileManager.default.fileExists(atPath: path) else { return self }
    guard !path.isEmpty, path.hasSuffix(".vtape") else {
      throw ReelError(
        .notFound, "\(self): \(path.isEmpty ? "no path given" : "\(path) does not exist"); nothing was created",
        remedy:
          "for a library, create the folder first (mkdir -p \(path.isEmpty ? "DIR" : path)); for a new cartridge file, name it NAME.vtape"
      )
    }
    let folder = (path as NSString).deletingLastPathComponent
    var isFolder: ObjCBool = false
    guard
      folder.isEmpty || (FileManager.default.fileExists(atPath: folder, isDirectory: &isFolder) && isFolder.boolValue)
    else {
      throw ReelError(
        .notFound, "\(self): the folder \(folder) does not exist; nothing was created",
        remedy: "create it first (mkdir -p \(folder)), or check the path")
    }
    return self
  }

  /// Creates the vtape cartridge file when it is not there yet; refuses a capacity that
  /// differs from an existing cartridge's, since that is fixed when it is created.
  package func createCartridgeIfMissing(capacity: UInt64?) throws {
    guard case .virtualTape(let path) = self else { return }
    if !FileManager.default.fileExists(atPath: path) {
      try VirtualTapeDrive.create(path: path, capacity: capacity ?? (16 << 30))
    } else if let capacity, let existing = try? VirtualTapeDrive(path: path), existing.capacity != capacity {
      throw ReelError(
        .usage, "\(self) exists with a capacity of \(ByteSize.describe(existing.capacity))",
        remedy: "leave out --capacity; a cartridge's capacity is fixed when it is created")
    }
  }
}

extension MediaLabel {
  /// Refuses `name` when another cartridge that could end up in the same media set already
  /// has it in the store's catalog (one of the set, or a scratch one, which any set may
  /// take): export, `media needed` and the operator at the shelf tell cartridges apart by
  /// label. Relabeling the same cartridge (`cartridgeID`, the one the medium holds now) is
  /// no clash; with `force`, neither is a catalog entry for a cartridge that used to be at
  /// this very address (the file was replaced), which is returned to be forgotten.
  package static func checkUnique(
    name: String, mediaSet: String?, cartridgeID: String?, address: MediaAddress, force: Bool,
    among cartridges: [CartridgeRecord]
  ) throws -> CartridgeRecord? {
    guard
      let other = cartridges.first(where: {
        $0.label == name && $0.cartridgeID != cartridgeID
          && ($0.mediaSet == mediaSet || $0.mediaSet == nil || mediaSet == nil)
      })
    else { return nil }
    if force, let known = try? MediaAddress(parsing: other.address), known.sameMedium(as: address) { return other }
    throw ReelError(
      .alreadyExists,
      "\(other.mediaSet.map { "media set \"\($0)\"" } ?? "the scratch pool") already has a cartridge labeled \(name) (\(other.address), cartridge \(other.cartridgeID)); nothing was written",
      remedy:
        "choose another --name (`reel media list` shows the labels in use), or relabel that same cartridge with --force"
    )
  }
}

extension MediaAddress {
  func sameMedium(as other: MediaAddress) -> Bool {
    func key(_ address: MediaAddress) -> String {
      switch address {
      case .folder(let path): "dir:" + (path as NSString).standardizingPath
      case .virtualTape(let path): "vtape:" + (path as NSString).standardizingPath
      case .tapeDrive(let path): "tape:" + path
      case .objectStore: address.description
      }
    }
    return key(self) == key(other)
  }
}
