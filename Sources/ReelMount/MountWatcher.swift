import CLinux
import Foundation
import ReelCore
import ReelIO

#if canImport(Glibc)
  import Glibc
#endif

/// Takes a `reel mount` off its folder when the process ends without unmounting, however
/// it ends (SIGKILL, a crash, the OOM killer). fusermount3's `auto_unmount` does this
/// too, but it first probes the mount to tell a dead daemon from a live one, and under
/// load that probe let 2 of 6 killed mounts stay behind as `Transport endpoint is not
/// connected` (docs/files.md). This watcher needs no probe: it is a child `reel` reading
/// a pipe whose only write end the mounting process holds, so end of file means that
/// process is gone; it then detaches the mount it was told about (by mount ID, so never
/// a mount made later on the same folder), if it is still there.
package enum MountWatcher {
  /// The hidden `reel` subcommand the child runs.
  package static let commandName = "mount-watch"

  /// A started watcher: the mounting process keeps `pipe` open for as long as it lives.
  struct Guard {
    let pipe: Int32
    let pid: pid_t

    /// After a clean unmount: the watcher reads end of file, finds the mount gone and exits.
    func release() {
      close(pipe)
      var status: Int32 = 0
      _ = waitpid(pid, &status, 0)
    }
  }

  /// Starts the watcher for the FUSE mount just made on `mountPoint`.
  static func start(mountPoint: String) throws -> Guard {
    let folder = canonical(mountPoint)
    guard let mount = MountTable.current().last(where: { $0.mountPoint == folder }) else {
      throw ReelError(.io, "the mount on \(mountPoint) is not in /proc/self/mountinfo")
    }
    var ends: [Int32] = [0, 0]
    guard pipe2(&ends, O_CLOEXEC) == 0 else { throw PosixFile.error(errno, "pipe2", mountPoint) }
    defer { close(ends[0]) }
    // Its own session: a signal to the mounting process's group (Ctrl-C, kill -- -PGID)
    // must not take the watcher with it. Standard error stays: the watcher says there
    // when it detached a mount. It runs in / with the folder's full path, so it keeps no
    // other folder busy.
    let child: pid_t
    do {
      child = try Spawn.start(
        "/proc/self/exe", ["reel", commandName, "--mount-id", String(mount.id), folder], directory: "/",
        stdin: .descriptor(ends[0]), stdout: .null, stderr: .inherit, grouping: .ownSession)
    } catch {
      close(ends[1])
      throw error
    }
    return Guard(pipe: ends[1], pid: child)
  }

  /// The watcher's side (`reel mount-watch`): waits for end of file on standard input,
  /// then detaches mount `mountID` from `mountPoint` (the full path /proc/self/mountinfo
  /// shows, as `start` passes it: no path lookup through a dead mount) if it is still
  /// there. Returns what it did, for the log; nil when the mount was already gone.
  package static func watch(mountPoint: String, mountID: Int) throws -> String? {
    for number in [SIGINT, SIGTERM, SIGHUP, SIGQUIT] { signal(number, SIG_IGN) }
    var byte: UInt8 = 0
    while true {
      let got = read(0, &byte, 1)
      if got == 0 { break }
      if got < 0 && errno != EINTR { break }
    }
    let mounts = MountTable.current().filter { $0.mountPoint == mountPoint }
    guard mounts.contains(where: { $0.id == mountID }) else { return nil }
    // Only the topmost mount on a folder can be detached by its path.
    guard mounts.last?.id == mountID else {
      return "left the mount on \(mountPoint): another mount was made on top of it"
    }
    if geteuid() == 0 {
      guard umount2(mountPoint, Int32(MNT_DETACH)) == 0 else { throw PosixFile.error(errno, "umount2", mountPoint) }
    } else {
      try detachAsUser(mountPoint)
    }
    return "reel mount ended without unmounting; detached its mount on \(mountPoint)"
  }

  /// Users other than root unmount FUSE through the setuid helper.
  private static func detachAsUser(_ mountPoint: String) throws {
    let child = try Spawn.start(
      "/bin/fusermount3", ["fusermount3", "-u", "-z", mountPoint], stdout: .null, stderr: .inherit,
      grouping: .same)
    var status: Int32 = 0
    while waitpid(child, &status, 0) < 0 && errno == EINTR {}
    guard status == 0 else { throw ReelError(.io, "fusermount3 -u -z \(mountPoint) failed (status \(status))") }
  }

  /// The folder as /proc/self/mountinfo names it.
  static func canonical(_ path: String) -> String {
    guard let resolved = realpath(path, nil) else { return path }
    defer { free(resolved) }
    return String(cString: resolved)
  }
}

/// The mounts of this process's namespace, oldest first (/proc/self/mountinfo).
struct MountTable {
  struct Entry {
    var id: Int
    var mountPoint: String
  }

  static func current() -> [Entry] {
    guard let text = try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8) else { return [] }
    return text.split(separator: "\n").compactMap { line in
      let fields = line.split(separator: " ")
      guard fields.count > 4, let id = Int(fields[0]) else { return nil }
      return Entry(id: id, mountPoint: unescape(fields[4]))
    }
  }

  /// Space, tab, newline and backslash are written as \ and three octal digits.
  static func unescape(_ field: Substring) -> String {
    var bytes: [UInt8] = []
    let utf8 = Array(field.utf8)
    var index = 0
    while index < utf8.count {
      if utf8[index] == UInt8(ascii: "\\"), index + 3 < utf8.count,
        let value = UInt8(String(decoding: utf8[(index + 1)...(index + 3)], as: UTF8.self), radix: 8)
      {
        bytes.append(value)
        index += 4
      } else {
        bytes.append(utf8[index])
        index += 1
      }
    }
    return String(decoding: bytes, as: UTF8.self)
  }
}
