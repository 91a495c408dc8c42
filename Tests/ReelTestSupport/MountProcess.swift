import Foundation
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// `reel mount` as a child process on a fresh folder of its own. When dropped, also after
/// a failed test, the mount is detached (`fusermount3 -u -z` on this mount point) and the
/// process killed by its PID, before the folder is removed; never found by name.
package final class MountProcess {
  package let child: ChildProcess
  package let mountPoint: String
  package let logPath: String
  package let outputPath: String
  private let folder: TemporaryDirectory

  /// Starts `reel mount VOLUMES... MOUNTPOINT` on `store` and waits until the kernel lists
  /// the mount. `shared`: the folders above the mount point let other users through.
  package init(store: TestStore, volumes: [String], extra: [String] = [], shared: Bool = false) throws {
    folder = TemporaryDirectory("reel-mount")
    mountPoint = folder.path + "/mnt"
    logPath = folder.path + "/mount.log"
    outputPath = folder.path + "/mount.out"
    try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: false)
    if shared { chmod(folder.path, 0o755) }
    child = try ChildProcess(
      store.reel, ["mount"] + volumes + [mountPoint, "--store", store.root] + extra, stdout: outputPath,
      stderr: logPath)
    // Mounting first takes the journal into the store, which a loaded machine can make slow;
    // a process that died fails at once.
    let deadline = Date(timeIntervalSinceNow: 180)
    while !(output.contains("Unmount with") && isMounted) {
      try #require(child.isRunning, "reel mount exited (\(child.wait())) before mounting:\n\(log)")
      try #require(Date() < deadline, "timed out waiting for reel mount:\n\(output)\n\(log)")
      usleep(20_000)
    }
  }

  deinit {
    if isMounted { _ = try? run("/usr/bin/fusermount3", ["-u", "-z", mountPoint]) }
    if child.isRunning { child.signal(SIGKILL) }
    child.wait()
  }

  package var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
  package var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

  /// Whether the kernel lists a mount on `mountPoint` (/proc/self/mounts).
  package var isMounted: Bool {
    let mounts = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
    return mounts.split(separator: "\n").contains {
      $0.split(separator: " ").dropFirst().first == Substring(mountPoint)
    }
  }

  /// `fusermount3 -u`, then the exit status of `reel mount`.
  package func unmount() throws -> Int32 {
    try runChecked(try tool("fusermount3"), ["-u", mountPoint])
    return try waitForExit()
  }

  /// Sends `signal`, then the exit status of `reel mount`.
  package func stop(_ signal: Int32 = SIGTERM) throws -> Int32 {
    child.signal(signal)
    return try waitForExit()
  }

  private func waitForExit() throws -> Int32 {
    let deadline = Date(timeIntervalSinceNow: 60)
    while child.isRunning {
      try #require(Date() < deadline, "reel mount did not exit:\n\(log)")
      usleep(20_000)
    }
    return child.wait()
  }
}
