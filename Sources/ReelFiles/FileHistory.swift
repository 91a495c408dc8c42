import ReelCodec
import ReelCore
import ReelStore

/// What one path is at one point: whether it exists and, if so, everything a change to it
/// touches. The change time is in it because the kernel moves it on every write, so a
/// change undone later (A→B→A) still shows between two probes whose ctime differs.
package struct FileState: Sendable, Equatable {
  package var exists: Bool
  /// False when the volume held no file system that could be read at that point.
  package var fileSystem: Bool = true
  package var kind: FileKind?
  package var size: UInt64 = 0
  package var permissions: UInt16 = 0
  package var uid: UInt32 = 0
  package var gid: UInt32 = 0
  package var modificationTime: FileTime?
  package var changeTime: FileTime?
  /// SHA-256 of a regular file's bytes, or of a folder's sorted names and kinds.
  package var contentHash: SHA256Digest?
  package var target: [UInt8]?
  package var extendedAttributes: [ExtendedAttribute] = []

  static let absent = FileState(exists: false)

  /// What changed from `before` to this state, in words: created, removed, type, size,
  /// mode, owner, mtime, ctime, content, target, xattrs.
  func changes(from before: FileState) -> [String] {
    if !before.exists && exists { return ["created"] }
    if before.exists && !exists { return [fileSystem ? "removed" : "unreadable"] }
    if !exists {
      return fileSystem != before.fileSystem ? [fileSystem ? "readable again" : "unreadable"] : []
    }
    if kind != before.kind { return ["type"] }
    var what: [String] = []
    if size != before.size { what.append("size") }
    if permissions != before.permissions { what.append("mode") }
    if uid != before.uid || gid != before.gid { what.append("owner") }
    if modificationTime != before.modificationTime { what.append("mtime") }
    if changeTime != before.changeTime { what.append("ctime") }
    if contentHash != before.contentHash { what.append("content") }
    if target != before.target { what.append("target") }
    if extendedAttributes != before.extendedAttributes { what.append("xattrs") }
    return what
  }
}

/// A distinct version of a path: the point from which it held, and what differs from the
/// version before.
package struct FileVersion: Sendable, Equatable {
  package var seq: Seq
  package var time: Timestamp
  package var state: FileState
  /// Empty for the first version listed (the state at the start of the range).
  package var changes: [String]
}

/// The versions of one path across a range of history, found by bisection
/// (`HistorySearch.changes`): the state is probed at the range's ends, and a range whose
/// ends differ is split at its middle change until the changes stand between neighbouring
/// records. Only records that changed the volume's bytes are candidates. Cost: about
/// (versions × log₂ records) file-system opens, not one per record.
///
/// Limit: a change undone inside one interval whose ends are equal (A→B→A with the same
/// ctime at both ends) is not seen; a write through the kernel always moves ctime, so only
/// changes made without it (a raw write to the volume, a clock set back) can hide.
package enum FileHistory {
  /// `start` is the point the range begins at (its state is the first version);
  /// `candidates` the later records that changed the volume, in seq order.
  package static func versions(
    of path: [UInt8], start: VolumeChange, candidates: [VolumeChange],
    open: @escaping (Seq) throws -> (any FileSystemReading)?
  ) throws -> [FileVersion] {
    let points = [start] + candidates
    let search = HistorySearch(points: points) { index -> FileState in
      do {
        return try probe(path, open(points[index].seq))
      } catch let error as ReelError where error.kind == .corrupt || error.kind == .incompatible {
        // A point in the middle of writing that the file system cannot be read at (a
        // whole image being copied over it): a state of its own, not the end of the search.
        return FileState(exists: false, fileSystem: false)
      }
    }
    let changed = try search.changes()
    var versions = [FileVersion(seq: start.seq, time: start.time, state: try search.answer(0), changes: [])]
    for index in changed {
      let current = try search.answer(index)
      versions.append(
        FileVersion(
          seq: points[index].seq, time: points[index].time, state: current,
          changes: current.changes(from: versions.last!.state)))
    }
    return versions
  }

  /// The state of `path` in `files` (nil: no file system there). A path that does not
  /// resolve (missing, a folder in it missing or not a folder, a link loop) is absent.
  package static func probe(_ path: [UInt8], _ files: (any FileSystemReading)?) throws -> FileState {
    guard let files else { return FileState(exists: false, fileSystem: false) }
    let file: ResolvedFile
    do {
      file = try PathResolver(files: files, place: "").resolve(path, followLastLink: false)
    } catch let error as ReelError where error.kind == .notFound {
      return .absent
    }
    let attributes = file.attributes
    var state = FileState(
      exists: true, kind: attributes.kind, size: attributes.size, permissions: attributes.permissions,
      uid: attributes.uid, gid: attributes.gid, modificationTime: attributes.modificationTime,
      changeTime: attributes.changeTime)
    switch attributes.kind {
    case .regular:
      let hasher = SHA256Hasher()
      var offset: UInt64 = 0
      while offset < attributes.size {
        let bytes = try files.read(file.inode, offset: offset, length: Int(min(1 << 20, attributes.size - offset)))
        guard !bytes.isEmpty else { break }
        hasher.update(bytes)
        offset += UInt64(bytes.count)
      }
      state.contentHash = hasher.finish()
    case .directory:
      let hasher = SHA256Hasher()
      for entry in try TreeWalk.sortedEntries(files, of: file.inode) {
        hasher.update(entry.name.bytes + [0] + Array(entry.kind.rawValue.utf8) + [0])
      }
      state.contentHash = hasher.finish()
    case .symlink:
      state.target = try files.symlinkTarget(of: file.inode)
    default:
      break
    }
    state.extendedAttributes = try files.extendedAttributes(of: file.inode).sorted { $0.name < $1.name }
    return state
  }
}
