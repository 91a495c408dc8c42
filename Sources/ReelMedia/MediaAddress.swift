import Foundation
import ReelCore

/// Media as a user names it: `dir:PATH`, `vtape:PATH` (a cartridge file, or a folder of
/// them — a virtual tape library), `tape:/dev/nstN` or `s3://BUCKET[/PREFIX]` (objects in
/// an S3-compatible object store, docs/object-storage.md).
package enum MediaAddress: Sendable, Equatable, CustomStringConvertible {
  case folder(String)
  case virtualTape(String)
  case tapeDrive(String)
  /// `prefix` is empty or ends in `/`.
  case objectStore(bucket: String, prefix: String)

  package init(parsing text: String) throws {
    if text.hasPrefix("s3:") {
      self = try Self.objectStore(parsing: text)
      return
    }
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
      remedy:
        "write dir:PATH (a folder), vtape:PATH (a cartridge file or a folder of them), tape:/dev/nstN or s3://BUCKET[/PREFIX]"
    )
  }

  package var description: String {
    switch self {
    case .folder(let path): "dir:\(path)"
    case .virtualTape(let path): "vtape:\(path)"
    case .tapeDrive(let path): "tape:\(path)"
    case .objectStore(let bucket, let prefix): "s3://\(bucket)" + (prefix.isEmpty ? "" : "/" + prefix.dropLast())
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
    case .objectStore(let bucket, let prefix): [try ObjectStoreBucket(bucket: bucket, prefix: prefix)]
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
