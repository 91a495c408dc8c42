import ReelCore

/// One difference between two trees.
package struct FileChange: Sendable, Equatable {
  package enum Kind: String, Sendable, Codable {
    case added = "A"
    case removed = "D"
    case modified = "M"
  }

  package var kind: Kind
  package var path: [UInt8]
  /// The file's type: at the newer point, or the older one for a removed file.
  package var fileKind: FileKind
  /// For `modified`, what differs, in this order: type, size, mode, owner, mtime,
  /// content, target, xattrs, device.
  package var what: [String]

  package var displayPath: String { FilePath.display(path) }
}

/// Compares two trees (of two points, or two file systems) by walking both by name, in
/// name order. Inode numbers are not compared: a file system reuses them for new files.
/// Content is compared byte for byte, whatever the sizes and times say.
package struct TreeDiff {
  package let old: any FileSystemReading
  package let new: any FileSystemReading
  private static let step = 1 << 20

  package init(old: any FileSystemReading, new: any FileSystemReading) {
    self.old = old
    self.new = new
  }

  /// Reports the differences between `before` and `after` (nil where the path does not
  /// exist at that point), parents before their contents.
  package func compare(
    _ before: ResolvedFile?, _ after: ResolvedFile?, _ report: (FileChange) throws -> Void
  ) throws {
    let path = after?.path ?? before?.path ?? [UInt8(ascii: "/")]
    try compare(
      before.map { ($0.inode, $0.attributes) }, after.map { ($0.inode, $0.attributes) }, path: path, report)
  }

  private func compare(
    _ before: (UInt64, FileAttributes)?, _ after: (UInt64, FileAttributes)?, path: [UInt8],
    _ report: (FileChange) throws -> Void
  ) throws {
    try Interrupt.check()
    switch (before, after) {
    case (nil, nil):
      return
    case (nil, let (inode, attributes)?):
      try whole(.added, new, inode, attributes, path: path, report)
    case (let (inode, attributes)?, nil):
      try whole(.removed, old, inode, attributes, path: path, report)
    case (let (oldInode, oldAttributes)?, let (newInode, newAttributes)?):
      let what = try differences(oldInode, oldAttributes, newInode, newAttributes)
      if !what.isEmpty {
        try report(FileChange(kind: .modified, path: path, fileKind: newAttributes.kind, what: what))
      }
      let oldEntries = oldAttributes.kind == .directory ? try TreeWalk.sortedEntries(old, of: oldInode) : []
      let newEntries = newAttributes.kind == .directory ? try TreeWalk.sortedEntries(new, of: newInode) : []
      var oldIndex = 0
      var newIndex = 0
      while oldIndex < oldEntries.count || newIndex < newEntries.count {
        let oldEntry = oldIndex < oldEntries.count ? oldEntries[oldIndex] : nil
        let newEntry = newIndex < newEntries.count ? newEntries[newIndex] : nil
        var left: DirectoryEntry? = nil
        var right: DirectoryEntry? = nil
        if let oldEntry, let newEntry, oldEntry.name == newEntry.name {
          (left, right) = (oldEntry, newEntry)
          oldIndex += 1
          newIndex += 1
        } else if let oldEntry, newEntry == nil || oldEntry.name < newEntry!.name {
          left = oldEntry
          oldIndex += 1
        } else {
          right = newEntry
          newIndex += 1
        }
        let name = (left ?? right)!.name.bytes
        try compare(
          try left.map { ($0.inode, try old.attributes(of: $0.inode)) },
          try right.map { ($0.inode, try new.attributes(of: $0.inode)) }, path: FilePath.join(path, name), report)
      }
    }
  }

  private func whole(
    _ kind: FileChange.Kind, _ files: any FileSystemReading, _ inode: UInt64, _ attributes: FileAttributes,
    path: [UInt8], _ report: (FileChange) throws -> Void
  ) throws {
    try TreeWalk.walk(files, from: ResolvedFile(path: path, inode: inode, attributes: attributes)) { file in
      try report(FileChange(kind: kind, path: file.path, fileKind: file.attributes.kind, what: []))
      return true
    }
  }

  private func differences(
    _ oldInode: UInt64, _ before: FileAttributes, _ newInode: UInt64, _ after: FileAttributes
  ) throws -> [String] {
    guard before.kind == after.kind else { return ["type"] }
    var what: [String] = []
    // A folder's size follows its entries, which are compared one by one.
    if before.kind != .directory && before.size != after.size { what.append("size") }
    if before.permissions != after.permissions { what.append("mode") }
    if before.uid != after.uid || before.gid != after.gid { what.append("owner") }
    if before.modificationTime != after.modificationTime { what.append("mtime") }
    if before.kind == .regular {
      let same = before.size == after.size ? try sameContent(oldInode, newInode, size: before.size) : false
      if !same { what.append("content") }
    }
    if before.kind == .symlink {
      let oldTarget = try old.symlinkTarget(of: oldInode)
      let newTarget = try new.symlinkTarget(of: newInode)
      if oldTarget != newTarget { what.append("target") }
    }
    let oldAttributes = try old.extendedAttributes(of: oldInode).sorted { $0.name < $1.name }
    let newAttributes = try new.extendedAttributes(of: newInode).sorted { $0.name < $1.name }
    if oldAttributes != newAttributes { what.append("xattrs") }
    if (before.kind == .characterDevice || before.kind == .blockDevice) && before.device != after.device {
      what.append("device")
    }
    return what
  }

  private func sameContent(_ oldInode: UInt64, _ newInode: UInt64, size: UInt64) throws -> Bool {
    var offset: UInt64 = 0
    while offset < size {
      try Interrupt.check()
      let length = Int(min(UInt64(Self.step), size - offset))
      if try old.read(oldInode, offset: offset, length: length)
        != (try new.read(newInode, offset: offset, length: length))
      {
        return false
      }
      offset += UInt64(length)
    }
    return true
  }
}
