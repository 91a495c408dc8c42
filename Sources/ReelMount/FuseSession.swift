import CFuse3
import ReelCore
import ReelFiles

#if canImport(Glibc)
  import Glibc
#endif

// The one file that speaks libfuse3's low-level API: the session's lifecycle, the table of
// C callbacks, and the replies. Each callback finds the tree through the session's
// userdata (an unmanaged reference the session holds), asks it in Swift terms, and turns
// the answer or the error into one reply.

/// A mounted FUSE session over a `MountedTree`, served by libfuse's worker threads.
final class FuseSession {
  private let session: OpaquePointer
  private let context: Unmanaged<FuseContext>
  let mountPoint: String

  /// Creates the session and mounts it on `mountPoint` with `options` (`-o` options).
  init(tree: MountedTree, log: MountErrorLog, mountPoint: String, options: [String]) throws {
    self.mountPoint = mountPoint
    var arguments = fuse_args()
    defer { fuse_opt_free_args(&arguments) }
    for argument in ["reel", "-o", options.joined(separator: ",")] {
      guard fuse_opt_add_arg(&arguments, argument) == 0 else { throw ReelError(.io, "out of memory") }
    }
    var operations = FuseOperations.table()
    let context = Unmanaged.passRetained(FuseContext(tree: tree, log: log))
    guard
      let session = fuse_session_new(
        &arguments, &operations, MemoryLayout<fuse_lowlevel_ops>.size, context.toOpaque())
    else {
      context.release()
      throw ReelError(.usage, "libfuse refused the mount options \(options.joined(separator: ","))")
    }
    guard fuse_session_mount(session, mountPoint) == 0 else {
      fuse_session_destroy(session)
      context.release()
      throw ReelError(
        .io, "cannot mount on \(mountPoint) (libfuse said why above)",
        remedy:
          "check that /dev/fuse exists and you may open it (mode 0666 on most systems), that fusermount3 is installed (Debian package fuse3), and that the folder is not already a mount point"
      )
    }
    self.session = session
    self.context = context
  }

  /// Serves requests until the file system is unmounted (`fusermount3 -u`) or SIGINT,
  /// SIGTERM or SIGHUP arrives; then unmounts and frees the session.
  func run(threads: Int) {
    // libfuse's handlers end the loop; its workers block these signals, so the handler
    // runs on this thread and wakes the loop.
    fuse_set_signal_handlers(session)
    let configuration = fuse_loop_cfg_create()
    fuse_loop_cfg_set_max_threads(configuration, UInt32(max(1, threads)))
    fuse_loop_cfg_set_idle_threads(configuration, UInt32(max(1, threads / 2)))
    _ = fuse_session_loop_mt(session, configuration)
    fuse_loop_cfg_destroy(configuration)
    fuse_remove_signal_handlers(session)
    fuse_session_unmount(session)
    fuse_session_destroy(session)
    context.release()
  }
}

/// What the callbacks reach through the session's userdata.
private final class FuseContext {
  let tree: MountedTree
  let log: MountErrorLog
  /// Open directories' listings, taken at opendir so offsets stay valid across readdir calls.
  let directories = Locked(DirectoryHandles())

  init(tree: MountedTree, log: MountErrorLog) {
    self.tree = tree
    self.log = log
  }
}

private struct DirectoryHandles {
  var next: UInt64 = 1
  var open: [UInt64: [ListedEntry]] = [:]
}

/// A directory entry ready for `fuse_add_direntry`: its name NUL-terminated.
private struct ListedEntry: Sendable {
  var name: [CChar]
  var inode: UInt64
  var kind: FileKind
}

private func context(_ request: fuse_req_t) -> FuseContext {
  Unmanaged<FuseContext>.fromOpaque(fuse_req_userdata(request)).takeUnretainedValue()
}

/// Runs `body`, which replies; when it throws, replies with the error's errno instead.
private func replying(_ request: fuse_req_t, quiet: Bool = false, _ body: (FuseContext) throws -> Void) {
  let context = context(request)
  do {
    try body(context)
  } catch {
    fuse_reply_err(request, context.log.errno(for: error, quiet: quiet))
  }
}

private func bytes(_ name: UnsafePointer<CChar>) -> [UInt8] {
  Array(UnsafeRawBufferPointer(start: name, count: strlen(name)))
}

private func modeBits(_ kind: FileKind) -> mode_t {
  switch kind {
  case .regular: S_IFREG
  case .directory: S_IFDIR
  case .symlink: S_IFLNK
  case .characterDevice: S_IFCHR
  case .blockDevice: S_IFBLK
  case .fifo: S_IFIFO
  case .socket: S_IFSOCK
  }
}

private func timespec(_ time: FileTime) -> timespec {
  Glibc.timespec(tv_sec: Int(time.seconds), tv_nsec: Int(time.nanoseconds))
}

private func status(_ attributes: FileAttributes) -> stat {
  var result = stat()
  result.st_ino = ino_t(attributes.inode)
  result.st_mode = modeBits(attributes.kind) | mode_t(attributes.permissions & 0o7777)
  result.st_nlink = nlink_t(attributes.linkCount)
  result.st_uid = attributes.uid
  result.st_gid = attributes.gid
  result.st_size = off_t(clamping: attributes.size)
  result.st_blocks = blkcnt_t(clamping: (attributes.allocatedBytes + 511) / 512)
  result.st_blksize = 4096
  result.st_rdev = dev_t(attributes.device)
  result.st_atim = timespec(attributes.accessTime)
  result.st_mtim = timespec(attributes.modificationTime)
  result.st_ctim = timespec(attributes.changeTime)
  return result
}

private func entry(_ node: MountNode) -> fuse_entry_param {
  var result = fuse_entry_param()
  result.ino = node.attributes.inode
  result.generation = 1
  result.attr = status(node.attributes)
  result.attr_timeout = node.cacheSeconds
  result.entry_timeout = node.cacheSeconds
  return result
}

/// Replies with bytes, or with `ERANGE` when the caller's buffer is too small, or with the
/// size needed when the caller asked for it (size 0): the xattr protocol.
private func replyXattr(_ request: fuse_req_t, _ value: [UInt8], size: Int) {
  if size == 0 {
    fuse_reply_xattr(request, value.count)
  } else if size < value.count {
    fuse_reply_err(request, ERANGE)
  } else {
    value.withUnsafeBytes { _ = fuse_reply_buf(request, $0.bindMemory(to: CChar.self).baseAddress, value.count) }
  }
}

private enum FuseOperations {
  static func table() -> fuse_lowlevel_ops {
    var operations = fuse_lowlevel_ops()
    operations.lookup = { request, parent, name in
      guard let request, let name else { return }
      replying(request) { context in
        var reply: fuse_entry_param
        switch try context.tree.lookup(FileName(bytes(name)), in: parent) {
        case .found(let node):
          reply = entry(node)
        case .absent(let seconds):
          guard seconds > 0 else { throw ReelErrorForMount.missing() }
          reply = fuse_entry_param()  // inode 0: the kernel caches the miss
          reply.entry_timeout = seconds
        }
        fuse_reply_entry(request, &reply)
      }
    }
    // Nothing is counted per lookup: numbers are computed, not handed out.
    operations.forget = { request, _, _ in fuse_reply_none(request) }
    operations.forget_multi = { request, _, _ in fuse_reply_none(request) }
    operations.getattr = { request, inode, _ in
      guard let request else { return }
      replying(request) { context in
        let node = try context.tree.node(inode)
        var attributes = status(node.attributes)
        fuse_reply_attr(request, &attributes, node.cacheSeconds)
      }
    }
    operations.readlink = { request, inode in
      guard let request else { return }
      replying(request) { context in
        let target = try context.tree.symlinkTarget(of: inode).map { CChar(bitPattern: $0) } + [0]
        target.withUnsafeBufferPointer { _ = fuse_reply_readlink(request, $0.baseAddress) }
      }
    }
    operations.open = { request, inode, info in
      guard let request, let info else { return }
      replying(request) { context in
        guard info.pointee.flags & O_ACCMODE == O_RDONLY, info.pointee.flags & O_TRUNC == 0 else {
          throw ReelError(.usage, "read-only", errno: EROFS)
        }
        guard try context.tree.node(inode).attributes.kind != .directory else { throw ReelErrorForMount.isDirectory() }
        // A point never changes: what the page cache holds stays true across opens.
        info.pointee.keep_cache = 1
        fuse_reply_open(request, info)
      }
    }
    operations.read = { request, inode, size, offset, _ in
      guard let request else { return }
      replying(request) { context in
        let data = try context.tree.read(inode, offset: UInt64(max(0, offset)), length: size)
        data.withUnsafeBytes { _ = fuse_reply_buf(request, $0.bindMemory(to: CChar.self).baseAddress, data.count) }
      }
    }
    operations.opendir = { request, inode, info in
      guard let request, let info else { return }
      replying(request) { context in
        let listed = try context.tree.entries(of: inode).map { entry in
          ListedEntry(name: entry.name.bytes.map { CChar(bitPattern: $0) } + [0], inode: entry.inode, kind: entry.kind)
        }
        info.pointee.fh = context.directories.withLock { handles in
          let handle = handles.next
          handles.next += 1
          handles.open[handle] = listed
          return handle
        }
        info.pointee.keep_cache = 1
        // A folder inside a point never changes: the kernel may keep its listing.
        if MountInode.fileSystemPart(of: inode) != nil { info.pointee.cache_readdir = 1 }
        fuse_reply_open(request, info)
      }
    }
    operations.readdir = { request, _, size, offset, info in
      guard let request, let info else { return }
      replying(request) { context in
        let listed = context.directories.withLock { $0.open[info.pointee.fh] } ?? []
        var buffer = [CChar](repeating: 0, count: size)
        var used = 0
        var index = Int(max(0, offset))
        while index < listed.count {
          let listing = listed[index]
          var attributes = stat()
          attributes.st_ino = ino_t(listing.inode)
          attributes.st_mode = modeBits(listing.kind)
          let needed = buffer.withUnsafeMutableBufferPointer { space in
            listing.name.withUnsafeBufferPointer { name in
              fuse_add_direntry(
                request, space.baseAddress! + used, size - used, name.baseAddress, &attributes, off_t(index + 1))
            }
          }
          guard needed <= size - used else { break }
          used += needed
          index += 1
        }
        fuse_reply_buf(request, buffer, used)
      }
    }
    operations.releasedir = { request, _, info in
      guard let request, let info else { return }
      replying(request) { context in
        _ = context.directories.withLock { $0.open.removeValue(forKey: info.pointee.fh) }
        fuse_reply_err(request, 0)
      }
    }
    operations.statfs = { request, inode in
      guard let request else { return }
      replying(request) { context in
        let statistics = try context.tree.statistics(of: inode)
        var result = statvfs()
        result.f_bsize = UInt(statistics.blockSize)
        result.f_frsize = UInt(statistics.blockSize)
        result.f_blocks = fsblkcnt_t(statistics.blocks)
        result.f_namemax = 255
        result.f_flag = UInt(ST_RDONLY)
        fuse_reply_statfs(request, &result)
      }
    }
    operations.getxattr = { request, inode, name, size in
      guard let request, let name else { return }
      replying(request) { context in
        let wanted = String(decoding: bytes(name), as: UTF8.self)
        guard let attribute = try context.tree.extendedAttributes(of: inode).first(where: { $0.name == wanted }) else {
          throw ReelError(.notFound, "no extended attribute \(wanted)", errno: ENODATA)
        }
        replyXattr(request, attribute.value, size: size)
      }
    }
    operations.listxattr = { request, inode, size in
      guard let request else { return }
      replying(request) { context in
        let names = try context.tree.extendedAttributes(of: inode).flatMap { attribute -> [UInt8] in
          Array(attribute.name.utf8) + [0]
        }
        replyXattr(request, names, size: size)
      }
    }
    return operations
  }
}
