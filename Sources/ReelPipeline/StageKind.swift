import Foundation

/// The type a stage parameter must have.
public enum ParameterType: Sendable, Equatable {
  case string
  case choice([String])
  case integer(minimum: Int)
  case boolean
  case size
  case duration
  case strings
  /// Media addresses that must exist when the file is read.
  case media

  var noun: String {
    switch self {
    case .string: "text"
    case .choice(let options): "one of \(options.joined(separator: ", "))"
    case .integer(let minimum): "a whole number ≥ \(minimum)"
    case .boolean: "true or false"
    case .size: "a size (512, 64K, 16M, 1G)"
    case .duration: "a duration (90s, 30m, 12h, 7d, 2w)"
    case .strings: "a list of names"
    case .media: "a list of media (dir:PATH, vtape:PATH, tape:/dev/nstN)"
    }
  }

  var example: String {
    switch self {
    case .string: "NAME"
    case .choice(let options): options[0]
    case .integer(let minimum): String(max(minimum, 1))
    case .boolean: "true"
    case .size: "4G"
    case .duration: "7d"
    case .strings: "[a, b]"
    case .media: "[vtape:/srv/reel/vtl]"
    }
  }
}

public struct ParameterSpec: Sendable {
  public var name: String
  public var type: ParameterType
  public var required: Bool
  public var help: String

  init(_ name: String, _ type: ParameterType, required: Bool = false, _ help: String) {
    self.name = name
    self.type = type
    self.required = required
    self.help = help
  }
}

/// Every stage a pipeline file can name (docs/pipelines.md).
public enum StageKind: String, Sendable, CaseIterable {
  case cut
  case seal
  case verify
  case export
  case verifyOnMedia = "verify-on-media"
  case recordCatalog = "record-catalog"
  case pruneJournal = "prune-journal"
  case offsiteCopy = "offsite-copy"
  case listCartridges = "list-cartridges"
  case rehydrate
  case compare

  public var summary: String {
    switch self {
    case .cut: "fix each volume's cut point: its newest flush barrier or bookmark, or a new bookmark now"
    case .seal: "seal each volume's history up to its cut into a verified archive"
    case .verify: "verify with the key every archive not yet on the media set"
    case .export: "copy the archives to the media set, each read back and verified"
    case .verifyOnMedia: "read each new copy back from the media and verify it with the key"
    case .recordCatalog: "keep a consistent copy of the store catalog (and a media list) beside the archives"
    case .pruneJournal: "delete journal segments that are sealed, verified and have N verified copies"
    case .offsiteCopy: "copy the recent archives of one media set to another"
    case .listCartridges: "list the cartridges of a media set that hold recent archives (to send offsite)"
    case .rehydrate: "rebuild a scratch store from the media and the key"
    case .compare: "restore the latest point of each volume from the scratch store and compare with the live store"
    }
  }

  public var parameters: [ParameterSpec] {
    switch self {
    case .cut:
      [
        ParameterSpec(
          "mode", .choice(["barrier", "bookmark"]),
          "barrier: the newest flush or bookmark; bookmark: a new bookmark now"),
        ParameterSpec("label", .string, "bookmark label for mode bookmark; {pipeline}, {run} and {date} are filled in"),
      ]
    case .seal:
      [
        ParameterSpec("member-size", .size, "largest pack member (default 4G)"),
        ParameterSpec("new-chain", .boolean, "start a new chain with a full base"),
        ParameterSpec(
          "format", .choice(["1", "2"]),
          "archive format: 2 (default) chunks compressed in 8 MiB groups; 1 the store's chunks as they are, ~5% larger, faster to seal and rehydrate"
        ),
      ]
    case .verify:
      []
    case .export:
      [
        ParameterSpec("to", .media, required: true, "the media to write to"),
        ParameterSpec("media-set", .string, "media set (default: the file's media-set)"),
      ]
    case .verifyOnMedia:
      [ParameterSpec("media-set", .string, "media set (default: the file's media-set)")]
    case .recordCatalog:
      [
        ParameterSpec("to", .string, "folder for catalog copies (default: <store>/catalog-copies)"),
        ParameterSpec("keep", .integer(minimum: 1), "how many copies to keep (default 14)"),
      ]
    case .pruneJournal:
      [
        ParameterSpec("copies", .integer(minimum: 1), required: true, "verified copies on media each archive needs"),
        ParameterSpec("media-sets", .strings, "count only copies in these media sets (default: all)"),
      ]
    case .offsiteCopy:
      [
        ParameterSpec("from-media-set", .string, required: true, "the media set to copy from"),
        ParameterSpec("to", .media, required: true, "the offsite media to write to"),
        ParameterSpec("media-set", .string, "the offsite media set (default: the file's media-set)"),
        ParameterSpec("since", .duration, "archives whose history ends within this window (default 7d)"),
      ]
    case .listCartridges:
      [
        ParameterSpec("media-set", .string, "media set (default: the file's media-set)"),
        ParameterSpec("since", .duration, "cartridges holding archives of this window (default 7d)"),
      ]
    case .rehydrate:
      [
        ParameterSpec("from", .media, "media to read (default: the media set's cartridges as the store knows them)"),
        ParameterSpec("media-set", .string, "media set to read (default: the file's media-set)"),
        ParameterSpec("scratch", .string, "scratch store folder (default: <store>/drill/run-N)"),
      ]
    case .compare:
      [ParameterSpec("keep-scratch", .boolean, "keep the scratch store and restored images (default false)")]
    }
  }

  var needsKey: Bool {
    switch self {
    case .seal, .verify, .verifyOnMedia, .rehydrate: true
    default: false
    }
  }

  var needsMediaSet: Bool {
    switch self {
    case .export, .verifyOnMedia, .offsiteCopy, .listCartridges: true
    default: false
    }
  }
}
