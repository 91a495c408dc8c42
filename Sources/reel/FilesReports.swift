import ReelCore
import ReelFiles

/// One file of `reel files ls --json` and `reel files find --json`.
struct ListedFileJSON: Encodable {
  var name: String
  var path: String
  var type: String
  var mode: String
  var permissions: UInt16
  var uid: UInt32
  var gid: UInt32
  var size: UInt64
  var links: UInt32
  var inode: UInt64
  var mtime: String
  var target: String?

  init(_ file: WalkedFile, name: String, target: [UInt8]?) {
    self.name = name
    path = file.displayPath
    type = file.attributes.kind.rawValue
    mode = FileMode.describe(file.attributes.kind, file.attributes.permissions)
    permissions = file.attributes.permissions
    uid = file.attributes.uid
    gid = file.attributes.gid
    size = file.attributes.size
    links = file.attributes.linkCount
    inode = file.inode
    mtime = file.attributes.modificationTime.rfc3339
    self.target = target.map(FilePath.display)
  }
}

/// `reel files get --json`.
struct ExtractionJSON: Encodable {
  var volume: String
  var seq: Seq
  var time: String
  var to: String
  var files: Int
  var directories: Int
  var symbolicLinks: Int
  var hardLinks: Int
  var specialFiles: Int
  var bytes: UInt64
  var warnings: [String]

  init(_ report: ExtractionReport, opened: FilesAtPoint, to: String) {
    volume = opened.view.descriptor.name
    seq = opened.view.resolved.seq
    time = opened.view.resolved.time.rfc3339
    self.to = to
    files = report.files
    directories = report.directories
    symbolicLinks = report.symbolicLinks
    hardLinks = report.hardLinks
    specialFiles = report.specialFiles
    bytes = report.bytes
    warnings = report.warnings
  }

  private enum CodingKeys: String, CodingKey {
    case volume, seq, time, to, files, directories, bytes, warnings
    case symbolicLinks = "symbolic_links"
    case hardLinks = "hard_links"
    case specialFiles = "special_files"
  }
}

/// One change of `reel files diff --json`.
struct FileChangeJSON: Encodable {
  var change: String
  var path: String
  var type: String
  var what: [String]

  init(_ change: FileChange) {
    self.change = change.kind.rawValue
    path = change.displayPath
    type = change.fileKind.rawValue
    what = change.what
  }
}

/// One version of `reel files history --json`.
struct FileVersionJSON: Encodable {
  var seq: Seq
  var time: String
  var changes: [String]
  var exists: Bool
  var type: String?
  var size: UInt64?
  var mode: String?
  var uid: UInt32?
  var gid: UInt32?
  var mtime: String?
  var ctime: String?
  var sha256: String?
  var target: String?

  init(_ version: FileVersion) {
    let state = version.state
    seq = version.seq
    time = version.time.rfc3339
    changes = version.changes
    exists = state.exists
    guard state.exists, let kind = state.kind else { return }
    type = kind.rawValue
    size = state.size
    mode = FileMode.describe(kind, state.permissions)
    uid = state.uid
    gid = state.gid
    mtime = state.modificationTime?.rfc3339
    ctime = state.changeTime?.rfc3339
    sha256 = kind == .regular ? state.contentHash?.hex : nil
    target = state.target.map(FilePath.display)
  }
}
