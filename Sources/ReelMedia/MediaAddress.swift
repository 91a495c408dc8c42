import Foundation
import ReelCore

/// Media as a user names it: `dir:PATH`, `vtape:PATH` (a cartridge file, or a folder of
/// them — a virtual tape library) or `tape:/dev/nstN`.
package enum MediaAddress: Sendable, Equatable, CustomStringConvertible {
  case folder(String)
  case virtualTape(String)
  case tapeDrive(String)

  package init(parsing text: String) throws {
    guard let colon = text.firstIndex(of: ":"), colon != text.index(before: text.endIndex) else {
      throw Self.usage(text)
    }
    let path = String(text[text.index(after: colon)...])
    switch text[..<colon] {
    case "dir": self = .folder(path)
    case "vtape": self = .virtualTape(path)
    case "tape": self = .tapeDrive(path)
    default: throw Self.usage(text)
    }
  }

  private static func usage(_ text: String) -> ReelError {
    ReelError(
      .usage, "cannot read \"\(text)\" as media",
      remedy: "write dir:PATH (a folder), vtape:PATH (a cartridge file or a folder of them) or tape:/dev/nstN")
  }

  package var description: String {
    switch self {
    case .folder(let path): "dir:\(path)"
    case .virtualTape(let path): "vtape:\(path)"
    case .tapeDrive(let path): "tape:\(path)"
    }
  }

  /// True for `vtape:` naming a folder: a library of `*.vtape` cartridge files.
  package var isLibrary: Bool {
    guard case .virtualTape(let path) = self else { return false }
    var isFolder: ObjCBool = false
    return FileManager.default.fileExists(atPath: path, isDirectory: &isFolder) && isFolder.boolValue
  }

  /// The cartridge files of a library, in name order; the path itself otherwise.
  func cartridgePaths() throws -> [String] {
    guard case .virtualTape(let path) = self else { return [] }
    guard isLibrary else { return [path] }
    return try FileManager.default.contentsOfDirectory(atPath: path)
      .filter { $0.hasSuffix(".vtape") }.sorted().map { path + "/" + $0 }
  }

  /// Opens every medium this address names. A library opens each cartridge in it.
  package func open() throws -> [any MediaVolume] {
    switch self {
    case .folder(let path): [ColdStorageFolder(path: path)]
    case .tapeDrive(let path): [TapeCartridge(drive: try LinuxTapeDrive(path: path))]
    case .virtualTape:
      try cartridgePaths().map { TapeCartridge(drive: try VirtualTapeDrive(path: $0)) }
    }
  }

  /// Opens the one medium this address names; a library is refused.
  package func openOne() throws -> any MediaVolume {
    guard !isLibrary else {
      throw ReelError(
        .usage, "\(self) is a library of cartridges; name one cartridge file", remedy: "e.g. \(self)/NAME.vtape")
    }
    return try open()[0]
  }
}
