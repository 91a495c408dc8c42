import Foundation
import ReelCore
import ReelFiles
import ReelStore

#if canImport(Glibc)
  import Glibc
#endif

/// One node as the mount shows it: attributes carrying the mount's inode number, and how
/// long the kernel may keep them.
struct MountNode: Sendable {
  var attributes: FileAttributes
  var cacheSeconds: Double
}

enum MountLookup: Sendable {
  case found(MountNode)
  /// Not there; the kernel may remember that for `cacheSeconds` (0: ask again next time).
  case absent(cacheSeconds: Double)
}

/// What `statfs` reports for a node.
struct MountStatistics: Sendable {
  var blockSize: Int
  var blocks: UInt64
}

/// A volume as the mount shows it; `latest` is resolved once, when the mount starts.
struct MountedVolume: Sendable {
  var name: String
  var descriptor: VolumeDescriptor
}

/// The tree `reel mount` shows, without any FUSE type in sight:
///
///     NAME/latest/                 the volume when the mount started
///     NAME/bookmarks/LABEL/        each bookmark (listed, and new ones appear)
///     NAME/at/<RFC 3339 instant>/  any instant typed in, resolved when first looked up
///
/// and in each of those point folders `disk.img` (the raw volume at that point) and
/// `files/` (the file system inside it, through ReelFiles). Everything under a point
/// folder is immutable, so the kernel may cache it for long; the folders above change
/// (new bookmarks) and are cached for a second.
final class MountedTree: Sendable {
  static let changingSeconds = 1.0
  static let fixedSeconds = 3600.0
  static let diskImageName = FileName("disk.img")
  static let filesName = FileName("files")

  let live: LiveStore
  let volumes: [MountedVolume]
  private let partition: Int?
  private let owner: (uid: UInt32, gid: UInt32)
  private let started: FileTime
  private let log: MountErrorLog
  private let openFileSystem: @Sendable (any VolumeSource, Int?) throws -> any FileSystemReading
  private let fileSystems: FileSystemCache
  private let diskImages = DiskImageWindows()
  private let folderReadAhead = FolderReadAhead()
  /// Where each folder inside a file system was looked up, for the `..` of its listing.
  private let parents = Locked(DirectoryParents())
  private let numbering = Locked(Numbering())
  /// Per volume: when the last catch-up ingest started and ended. Held while ingesting, so
  /// a second request waits for the first instead of ingesting again.
  private let ingests: [Locked<(started: Timestamp, ended: Timestamp)?>]

  init(
    live: LiveStore, volumes names: [String], partition: Int?, log: MountErrorLog, openReaders: Int = 4,
    openFileSystem: @escaping @Sendable (any VolumeSource, Int?) throws -> any FileSystemReading
  ) throws {
    self.live = live
    self.partition = partition
    self.log = log
    self.openFileSystem = openFileSystem
    fileSystems = FileSystemCache(capacity: openReaders)
    owner = (getuid(), getgid())
    started = FileTime(Timestamp.now())
    volumes = try names.map { MountedVolume(name: $0, descriptor: try live.store.layout.descriptor(of: $0)) }
    ingests = volumes.map { _ in Locked(nil) }
    for index in volumes.indices {
      catchUp(index, through: nil)
      _ = try point(PointKey(volume: index, folder: .latest), parent: number(.volume(index)))
    }
  }

  /// The state `latest/` shows, per volume.
  var latest: [ResolvedPoint] {
    numbering.withLock { numbering in
      volumes.indices.map {
        numbering.points[Int(numbering.pointIDs[PointKey(volume: $0, folder: .latest)]!.value) - 1]
      }
      .map(\.view.resolved)
    }
  }

  // MARK: Operations

  func lookup(_ name: FileName, in parent: UInt64) throws -> MountLookup {
    if let (point, inode) = MountInode.fileSystemPart(of: parent) {
      let reader = try fileSystem(point)
      guard let entry = try reader.lookup(name, in: inode) else { return .absent(cacheSeconds: Self.fixedSeconds) }
      if entry.kind == .directory { folderReadAhead.reached(entry.inode, in: inode, point: point, reader: reader) }
      let node = try fileSystemNode(point, entry.inode, reader)
      if entry.kind == .directory { parents.withLock { $0.remember(node.attributes.inode, in: parent) } }
      return .found(node)
    }
    switch try synthetic(parent) {
    case .root:
      guard let index = volumes.firstIndex(where: { FileName($0.name) == name }) else {
        return .absent(cacheSeconds: Self.changingSeconds)
      }
      return .found(node(.volume(index)))
    case .volume(let index):
      switch name {
      case FileName("latest"):
        return .found(node(.pointFolder(try point(PointKey(volume: index, folder: .latest), parent: parent))))
      case FileName("bookmarks"): return .found(node(.bookmarks(index)))
      case FileName("at"): return .found(node(.instants(index)))
      default: return .absent(cacheSeconds: Self.fixedSeconds)
      }
    case .bookmarks(let index):
      guard let label = String(validating: name.bytes, as: UTF8.self), Self.isFolderName(label) else {
        return .absent(cacheSeconds: 0)
      }
      let key = PointKey(volume: index, folder: .bookmark(label))
      // A folder made already shows what it showed: nothing newer can change it.
      if !isResolved(key) { catchUp(index, through: nil) }
      do {
        let id = try point(key, parent: parent)
        return .found(node(.pointFolder(id)))
      } catch let error as ReelError where error.kind == .notFound || error.kind == .usage {
        return .absent(cacheSeconds: 0)  // file managers probe for names like .hidden
      }
    case .instants(let index):
      guard let text = String(validating: name.bytes, as: UTF8.self), let instant = Timestamp(rfc3339: text) else {
        return .absent(cacheSeconds: 0)
      }
      guard instant <= Timestamp.now() else {
        log.report(
          "\(volumes[index].name)/at/\(text): \(instant.rfc3339) is in the future; look it up once it has passed")
        return .absent(cacheSeconds: 0)
      }
      let key = PointKey(volume: index, folder: .instant(text))
      if !isResolved(key) { catchUp(index, through: instant) }
      do {
        let id = try point(key, parent: parent)
        return .found(node(.pointFolder(id)))
      } catch let error as ReelError where error.kind == .notFound {
        log.report("\(volumes[index].name)/at/\(text): \(error.description)")
        return .absent(cacheSeconds: 0)
      }
    case .pointFolder(let id):
      if name == Self.diskImageName { return .found(node(.diskImage(id))) }
      if name == Self.filesName {
        let reader = try fileSystem(id)
        return .found(try fileSystemNode(id, reader.rootInode, reader))
      }
      return .absent(cacheSeconds: Self.fixedSeconds)
    case .diskImage:
      throw ReelErrorForMount.notDirectory()
    }
  }

  func node(_ inode: UInt64) throws -> MountNode {
    if let (point, fileInode) = MountInode.fileSystemPart(of: inode) {
      return try fileSystemNode(point, fileInode, try fileSystem(point))
    }
    return node(try synthetic(inode))
  }

  /// Every entry of a folder, `.` and `..` first.
  func entries(of inode: UInt64) throws -> [DirectoryEntry] {
    if let (point, directory) = MountInode.fileSystemPart(of: inode) {
      let reader = try fileSystem(point)
      let parent =
        directory == reader.rootInode
        ? try mountedPoint(point).node : parents.withLock { $0.parent(of: inode) } ?? inode
      let entries = try reader.entries(of: directory)
      folderReadAhead.listed(entries, of: directory, point: point, reader: reader)
      let listed = try entries.map { entry in
        DirectoryEntry(
          name: entry.name, inode: try MountInode.inFileSystem(point: point, inode: entry.inode), kind: entry.kind)
      }
      return Self.dots(inode, parent) + listed
    }
    let synthetic = try synthetic(inode)
    switch synthetic {
    case .root:
      return Self.dots(inode, inode)
        + volumes.indices.map { folder(volumes[$0].name, number(.volume($0))) }
    case .volume(let index):
      let latest = try point(PointKey(volume: index, folder: .latest), parent: inode)
      return Self.dots(inode, MountInode.root) + [
        folder("latest", number(.pointFolder(latest))), folder("bookmarks", number(.bookmarks(index))),
        folder("at", number(.instants(index))),
      ]
    case .bookmarks(let index):
      catchUp(index, through: nil)
      let descriptor = volumes[index].descriptor
      let ingested = try live.historyBounds(of: descriptor).ingested
      var listed: [DirectoryEntry] = []
      for bookmark in try live.bookmarks(of: descriptor, after: 0, through: ingested)
      where Self.isFolderName(bookmark.label) {
        do {
          let id = try point(PointKey(volume: index, folder: .bookmark(bookmark.label)), parent: inode)
          listed.append(folder(bookmark.label, number(.pointFolder(id))))
        } catch {
          _ = log.errno(for: error)  // pruned since: the others are still worth listing
        }
      }
      return Self.dots(inode, number(.volume(index))) + listed
    case .instants(let index):
      // Like an automounter: any instant can be looked up, none is listed.
      return Self.dots(inode, number(.volume(index)))
    case .pointFolder(let id):
      let mounted = try mountedPoint(id)
      var listed = [DirectoryEntry(name: Self.diskImageName, inode: number(.diskImage(id)), kind: .regular)]
      do {
        let reader = try fileSystem(id)
        listed.append(
          DirectoryEntry(
            name: Self.filesName, inode: try MountInode.inFileSystem(point: id, inode: reader.rootInode),
            kind: .directory))
      } catch {
        // No readable file system: the raw image is still there; the log says why.
      }
      return Self.dots(inode, mounted.parent) + listed
    case .diskImage:
      throw ReelErrorForMount.notDirectory()
    }
  }

  func read(_ inode: UInt64, offset: UInt64, length: Int) throws -> [UInt8] {
    if let (point, fileInode) = MountInode.fileSystemPart(of: inode) {
      return try fileSystem(point).read(fileInode, offset: offset, length: length)
    }
    guard case .diskImage(let id) = try synthetic(inode) else { throw ReelErrorForMount.isDirectory() }
    return try diskImages.read(id, try mountedPoint(id).view, offset: offset, length: length)
  }

  func symlinkTarget(of inode: UInt64) throws -> [UInt8] {
    guard let (point, fileInode) = MountInode.fileSystemPart(of: inode) else { throw ReelErrorForMount.notSymlink() }
    return try fileSystem(point).symlinkTarget(of: fileInode)
  }

  func extendedAttributes(of inode: UInt64) throws -> [ExtendedAttribute] {
    guard let (point, fileInode) = MountInode.fileSystemPart(of: inode) else {
      _ = try synthetic(inode)
      return []
    }
    return try fileSystem(point).extendedAttributes(of: fileInode)
  }

  func statistics(of inode: UInt64) throws -> MountStatistics {
    guard let (point, _) = MountInode.fileSystemPart(of: inode) else {
      return MountStatistics(blockSize: 4096, blocks: 0)
    }
    let info = try fileSystem(point).info
    let blockSize = max(info.blockSize, 512)
    return MountStatistics(blockSize: blockSize, blocks: info.size / UInt64(blockSize))
  }

  // MARK: Nodes

  private func synthetic(_ inode: UInt64) throws -> SyntheticNode {
    guard let node = numbering.withLock({ $0.node(inode) }) else { throw ReelErrorForMount.unknownInode(inode) }
    return node
  }

  private func number(_ node: SyntheticNode) -> UInt64 {
    numbering.withLock { $0.number(node) }
  }

  private func mountedPoint(_ id: PointID) throws -> MountedPoint {
    guard let point = numbering.withLock({ $0.point(id) }) else {
      throw ReelErrorForMount.unknownInode(UInt64(id.value) << 32)
    }
    return point
  }

  private func isResolved(_ key: PointKey) -> Bool {
    numbering.withLock { $0.pointIDs[key] != nil }
  }

  /// The point folder for `key`, made (and its point resolved) the first time it is asked for.
  private func point(_ key: PointKey, parent: UInt64) throws -> PointID {
    if let id = numbering.withLock({ $0.pointIDs[key] }) { return id }
    let name = volumes[key.volume].name
    let view: VolumeView
    switch key.folder {
    case .latest: view = try VolumeView(live: live, volume: name, at: .latest)
    case .bookmark(let label): view = try VolumeView(live: live, volume: name, at: .bookmark(label))
    case .instant(let text):
      view = try VolumeView(live: live, volume: name, at: .time(Timestamp(rfc3339: text)!))
    }
    return numbering.withLock { numbering in
      if let id = numbering.pointIDs[key] { return id }
      let id = PointID(value: UInt32(numbering.points.count + 1))
      let folder = numbering.number(.pointFolder(id))
      numbering.points.append(MountedPoint(key: key, view: view, node: folder, parent: parent))
      numbering.pointIDs[key] = id
      return id
    }
  }

  private func fileSystem(_ id: PointID) throws -> any FileSystemReading {
    let point = try mountedPoint(id)
    let key = FileSystemCache.Key(volume: point.key.volume, seq: point.view.resolved.seq)
    do {
      return try fileSystems.reader(for: key) { try openFileSystem(point.view, partition) }
    } catch {
      // Said once, whatever errno the kernel gets: `files/` is missing or refuses for this reason.
      log.report((error as? ReelError)?.description ?? "\(error)")
      throw error
    }
  }

  private func fileSystemNode(_ point: PointID, _ inode: UInt64, _ reader: any FileSystemReading) throws -> MountNode {
    var attributes = try reader.attributes(of: inode)
    attributes.inode = try MountInode.inFileSystem(point: point, inode: inode)
    return MountNode(attributes: attributes, cacheSeconds: Self.fixedSeconds)
  }

  private func node(_ synthetic: SyntheticNode) -> MountNode {
    let inode = number(synthetic)
    switch synthetic {
    case .root, .volume, .bookmarks, .instants:
      return directoryNode(inode, time: started, cacheSeconds: Self.changingSeconds)
    case .pointFolder(let id):
      let point = numbering.withLock { $0.point(id)! }
      return directoryNode(inode, time: FileTime(point.view.resolved.time), cacheSeconds: Self.fixedSeconds)
    case .diskImage(let id):
      let point = numbering.withLock { $0.point(id)! }
      let time = FileTime(point.view.resolved.time)
      // Only the mounting user: the raw image holds every file whatever its permissions.
      return MountNode(
        attributes: FileAttributes(
          inode: inode, kind: .regular, permissions: 0o400, uid: owner.uid, gid: owner.gid, size: point.view.size,
          linkCount: 1, accessTime: time, modificationTime: time, changeTime: time,
          allocatedBytes: point.view.size),
        cacheSeconds: Self.fixedSeconds)
    }
  }

  private func directoryNode(_ inode: UInt64, time: FileTime, cacheSeconds: Double) -> MountNode {
    MountNode(
      attributes: FileAttributes(
        inode: inode, kind: .directory, permissions: 0o555, uid: owner.uid, gid: owner.gid, size: 0, linkCount: 2,
        accessTime: time, modificationTime: time, changeTime: time),
      cacheSeconds: cacheSeconds)
  }

  private func folder(_ name: String, _ inode: UInt64) -> DirectoryEntry {
    DirectoryEntry(name: FileName(name), inode: inode, kind: .directory)
  }

  private static func dots(_ inode: UInt64, _ parent: UInt64) -> [DirectoryEntry] {
    [
      DirectoryEntry(name: FileName("."), inode: inode, kind: .directory),
      DirectoryEntry(name: FileName(".."), inode: parent, kind: .directory),
    ]
  }

  /// A bookmark label that can be a folder name (labels may hold `/`; those are reached
  /// through `at/` and their instant).
  static func isFolderName(_ label: String) -> Bool {
    !label.isEmpty && label != "." && label != ".." && !label.contains("/") && label.utf8.count <= 255
  }

  // MARK: Catching up with a served volume

  /// Takes the journal's newest records into the store before a point is resolved, so
  /// instants and bookmarks written since the mount started are found (the store is
  /// shared with a running `reel serve`). Skipped when an ingest that started after
  /// `instant` already covered it, or (for listings) one ended less than two seconds ago;
  /// a failure (say, no write access to the store) is logged once and the store's
  /// history is used as it is.
  private func catchUp(_ index: Int, through instant: Timestamp?) {
    ingests[index].withLock { last in
      let now = Timestamp.now()
      if let last {
        if let instant, last.started.nanoseconds > instant.nanoseconds + 1_000_000_000 { return }
        if instant == nil, now.nanoseconds - last.ended.nanoseconds < 2_000_000_000 { return }
      }
      defer { last = (started: now, ended: Timestamp.now()) }
      do {
        let report = try live.ingest(volume: volumes[index].name)
        for damage in report.damage { log.report("damaged store: \(damage); run `reel store repair`") }
      } catch {
        let message = (error as? ReelError)?.description ?? "\(error)"
        log.report(
          "the newest writes of \(volumes[index].name) could not be taken into the store (\(message)); showing the history the store holds"
        )
      }
    }
  }
}

/// The parent of each file-system folder the kernel has looked up. Only `..` in listings
/// needs it (the kernel walks up by its own dentries), so it is forgotten when it grows
/// large rather than kept exact.
private struct DirectoryParents {
  static let limit = 1 << 20
  private var parents: [UInt64: UInt64] = [:]

  mutating func remember(_ directory: UInt64, in parent: UInt64) {
    if parents.count >= Self.limit { parents.removeAll() }
    parents[directory] = parent
  }

  func parent(of directory: UInt64) -> UInt64? { parents[directory] }
}

/// The nodes Reel makes up, numbered from 1 (the root) in the order they are first seen.
enum SyntheticNode: Hashable, Sendable {
  case root
  case volume(Int)
  case bookmarks(Int)
  case instants(Int)
  case pointFolder(PointID)
  case diskImage(PointID)
}

/// Which folder shows a point.
enum PointFolder: Hashable, Sendable {
  case latest
  case bookmark(String)
  /// As typed under `at/`: two spellings of one instant are two folders.
  case instant(String)
}

struct PointKey: Hashable, Sendable {
  var volume: Int
  var folder: PointFolder
}

struct MountedPoint: Sendable {
  var key: PointKey
  var view: VolumeView
  /// The point folder's inode and its parent's.
  var node: UInt64
  var parent: UInt64
}

/// The mount's numbering tables: synthetic nodes and point folders, never forgotten
/// (a few per point a user visits); file-system nodes need no table (see `MountInode`).
private struct Numbering {
  var nodes: [SyntheticNode] = [.root]
  var numbers: [SyntheticNode: UInt64] = [.root: MountInode.root]
  var points: [MountedPoint] = []
  var pointIDs: [PointKey: PointID] = [:]

  mutating func number(_ node: SyntheticNode) -> UInt64 {
    if let number = numbers[node] { return number }
    nodes.append(node)
    let number = UInt64(nodes.count)
    numbers[node] = number
    return number
  }

  func node(_ inode: UInt64) -> SyntheticNode? {
    guard inode >= 1, inode <= UInt64(nodes.count) else { return nil }
    return nodes[Int(inode - 1)]
  }

  func point(_ id: PointID) -> MountedPoint? {
    let index = Int(id.value) - 1
    return points.indices.contains(index) ? points[index] : nil
  }
}

extension FileTime {
  init(_ time: Timestamp) {
    let (quotient, remainder) = time.nanoseconds.quotientAndRemainder(dividingBy: 1_000_000_000)
    let seconds = remainder < 0 ? quotient - 1 : quotient
    self.init(seconds: seconds, nanoseconds: UInt32(time.nanoseconds - seconds * 1_000_000_000))
  }
}
