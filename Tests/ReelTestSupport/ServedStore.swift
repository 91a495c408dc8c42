import Foundation
import ReelCore
import ReelIO
import ReelJournal
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// A store in a fresh folder, made with the real `reel` binary.
package final class TestStore {
  package let directory = TemporaryDirectory("reel-capture")
  package let reel = reelExecutable
  package let root: String
  package var layout: StoreLayout { StoreLayout(root: root) }
  package var socketPath: String { directory.path + "/nbd.sock" }

  /// `root` puts the store elsewhere (say, on a small file system); the sockets and logs
  /// stay in `directory`.
  package init(root: String? = nil) throws {
    self.root = root ?? directory.path + "/store"
    try runChecked(reel, ["init", "--store", self.root])
  }

  package func createVolume(_ name: String, size: String = "32M", blockSize: Int = 4096) throws {
    try runChecked(
      reel, ["volume", "create", name, "--size", size, "--block-size", String(blockSize), "--store", root])
  }

  package func uri(_ name: String) -> String { "nbd+unix:///\(name)?socket=\(socketPath)" }

  package func reelCommand(_ arguments: [String], environment: [String: String?] = [:]) throws -> CommandResult {
    try run(reel, arguments + ["--store", root], environment: environment)
  }

  package func descriptor(_ name: String) throws -> VolumeDescriptor { try layout.descriptor(of: name) }

  /// `reel bookmark NAME LABEL` (through the server when one serves the volume); the
  /// bookmark's seq, from the command's report ("Bookmark LABEL at seq N, TIME").
  package func bookmark(_ name: String, _ label: String) throws -> Seq {
    let result = try reelCommand(["bookmark", name, label])
    try #require(result.succeeded, "bookmark \(label) failed: \(result.stderr)")
    let seq = result.stdout.firstMatch(of: /at seq ([0-9]+),/).flatMap { Seq($0.1) }
    return try #require(seq, "no seq in \(result.stdout)")
  }

  package func journal(_ name: String) throws -> JournalReader {
    try JournalReader(directory: layout.journalDirectory(name), volume: try descriptor(name).id)
  }

  package func records(_ name: String) throws -> [JournalRecord] {
    var records: [JournalRecord] = []
    try journal(name).forEachRecord {
      records.append($0)
      return true
    }
    return records
  }

  /// The volume as the journal says it was at `seq`: zeros, then every write, trim and
  /// zeroing up to it. Independent of the server and of `reel restore`.
  package func replay(_ name: String, upTo seq: Seq = .max) throws -> [UInt8] {
    let descriptor = try descriptor(name)
    var image = [UInt8](repeating: 0, count: Int(descriptor.size))
    if descriptor.hasBase {
      let base = layout.baseImagePath(name)
      image = Array(try #require(FileManager.default.contents(atPath: base), "cannot read \(base)"))
    }
    try journal(name).forEachRecord { record in
      guard record.seq <= seq else { return false }
      let start = Int(record.offset)
      let end = start + Int(record.length)
      switch record.kind {
      case .write: image.replaceSubrange(start..<end, with: record.payload)
      case .trim, .writeZeroes: image.replaceSubrange(start..<end, with: repeatElement(0, count: end - start))
      case .flush, .bookmark: break
      case .rollback:
        let payload = try #require(record.rollback)
        let target = try replay(name, upTo: payload.targetSeq)
        for extent in payload.extents {
          let range = Int(extent.offset)..<Int(extent.end)
          image.replaceSubrange(range, with: target[range])
        }
      }
      return true
    }
    return image
  }

  /// Bytes in the volume's journal folder (segments and all).
  package func journalBytes(_ name: String) -> UInt64 {
    let directory = layout.journalDirectory(name)
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    return names.reduce(0) { total, name in
      var info = stat()
      return total + (lstat(directory + "/" + name, &info) == 0 ? UInt64(info.st_size) : 0)
    }
  }

  package func liveState(_ name: String) throws -> [String: Any] {
    let data = try #require(FileManager.default.contents(atPath: layout.volumeDirectory(name) + "/live.state"))
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
  }
}

/// `reel serve` as a child process. Killed (SIGKILL) and reaped when dropped, whatever the
/// test did; never found by name.
package final class ServerProcess {
  package let child: ChildProcess
  package let logPath: String
  package let outputPath: String
  private let socketPath: String?

  package init(
    store: TestStore, volumes: [String], extra: [String] = [], socket: String? = nil, waitForSocket: Bool = true,
    umask: mode_t? = nil
  ) throws {
    let socketPath = socket ?? store.socketPath
    self.socketPath = extra.contains("--listen") && socket == nil ? nil : socketPath
    let stamp = UUID().uuidString.prefix(8)
    logPath = store.directory.path + "/serve-\(stamp).log"
    outputPath = store.directory.path + "/serve-\(stamp).out"
    var arguments = ["serve"] + volumes + ["--store", store.root] + extra
    if self.socketPath != nil { arguments += ["--socket", socketPath] }
    if let umask {
      // exec keeps the process: the child's pid is still reel serve's.
      let (shell, shellArguments) = withUmask(umask, store.reel, arguments)
      child = try ChildProcess(shell, shellArguments, stdout: outputPath, stderr: logPath)
    } else {
      child = try ChildProcess(store.reel, arguments, stdout: outputPath, stderr: logPath)
    }
    if waitForSocket {
      // A socket file left by a killed server may already exist: wait for this server's word.
      // A start that rebuilds a large live image from the store can take tens of seconds
      // while the stress tests load both cores; a dead server still fails at once.
      try waitUntil("the server listens", timeout: 120) { output.contains("Listening on") }
      if let path = self.socketPath {
        try waitUntil("the server's socket \(path) appears") { FileManager.default.fileExists(atPath: path) }
      }
    }
  }

  package var pid: Int32 { child.pid }
  package var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
  package var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

  /// Waits (bounded) for `condition`, failing early if the server died.
  package func waitUntil(_ what: String, timeout: Double = 30, _ condition: () -> Bool) throws {
    let deadline = Date(timeIntervalSinceNow: timeout)
    while !condition() {
      try #require(child.isRunning, "reel serve exited (\(child.wait())) before \(what):\n\(log)")
      try #require(Date() < deadline, "timed out waiting until \(what):\n\(log)")
      usleep(20_000)
    }
  }

  /// Sends `signal` and waits for the exit; returns the exit status (128 + signal when
  /// killed by one).
  @discardableResult
  package func stop(_ signal: Int32 = SIGTERM) -> Int32 {
    child.signal(signal)
    let deadline = Date(timeIntervalSinceNow: 60)
    while child.isRunning && Date() < deadline { usleep(20_000) }
    if child.isRunning {
      Issue.record("reel serve did not exit within 60 s of signal \(signal):\n\(log)")
      child.signal(SIGKILL)
    }
    return child.wait()
  }
}

/// Unmounts, retrying while the kernel still reports the mount busy (a writeback or a
/// just-exited process can hold it for a moment on a loaded machine).
package func unmount(_ mountPoint: String) throws {
  try runWhileBusy("umount", [mountPoint], tries: 20, pause: 0.5)
}

/// Runs `name` until it succeeds or stops saying "busy" (at most `tries` times, `pause`
/// seconds apart); requires that it succeeded.
private func runWhileBusy(_ name: String, _ arguments: [String], tries: Int, pause: TimeInterval) throws {
  var result = try run(try tool(name), arguments)
  var attempts = 1
  while !result.succeeded && result.stderr.contains("busy") && attempts < tries {
    Thread.sleep(forTimeInterval: pause)
    result = try run(try tool(name), arguments)
    attempts += 1
  }
  try #require(
    result.succeeded,
    "\(name) \(arguments.joined(separator: " ")) exited \(result.status) after \(attempts) tries\n\(result.stderr)")
}

package func sha256(_ path: String) throws -> String {
  let result = try runChecked(try tool("sha256sum"), [path])
  return String(result.stdout.prefix(64))
}

package func writeRandomFile(_ path: String, bytes: Int) throws {
  let random = try #require(FileHandle(forReadingAtPath: "/dev/urandom"))
  defer { try? random.close() }
  _ = FileManager.default.createFile(atPath: path, contents: random.readData(ofLength: bytes))
}

/// A served volume as the kernel sees it: nbdfuse exposes the export as the file `device`,
/// and a file system on it (or on an image file) mounts through a loop device at
/// `mountPoint`. Every mount and nbdfuse it made is undone, in reverse order, when the
/// fixture is dropped, also after a failed test.
package final class KernelMount {
  package let device: String
  package let mountPoint: String
  private let fuseDirectory: String
  private var fuse: ChildProcess?
  private var undo: [() -> Void] = []

  /// Uses `folder`/fuse for nbdfuse and `folder`/mnt as the mount point.
  package init(in folder: String) throws {
    fuseDirectory = folder + "/fuse"
    mountPoint = folder + "/mnt"
    device = fuseDirectory + "/nbd"
    try FileManager.default.createDirectory(atPath: fuseDirectory, withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
  }

  deinit {
    for step in undo.reversed() { step() }
  }

  /// Exposes `uri` (served by `server`) as `device`, waiting until it appears.
  package func connect(_ uri: String, servedBy server: ServerProcess, readOnly: Bool = false) throws {
    let fuse = try ChildProcess(try tool("nbdfuse"), (readOnly ? ["-r"] : []) + [fuseDirectory, uri])
    self.fuse = fuse
    let folder = fuseDirectory
    undo.append { _ = try? run("/usr/bin/fusermount3", ["-u", "-z", folder]) }
    try server.waitUntil("nbdfuse shows \(device)") {
      fuse.isRunning && FileManager.default.fileExists(atPath: device)
    }
  }

  /// Removes the nbdfuse mount; nbdfuse's exit status. Right after `unmount` the loop
  /// device may still hold `device` (the kernel detaches an autoclear loop device
  /// asynchronously), and fusermount3 says "busy" until it lets go.
  package func disconnect() throws -> Int32 {
    try runWhileBusy("fusermount3", ["-u", fuseDirectory], tries: 40, pause: 0.25)
    let status = fuse?.wait() ?? 0
    fuse = nil
    return status
  }

  /// `options` go to mkfs.ext4 (say `["-b", "4096"]`: below 512 MiB it picks 1 KiB blocks).
  package func formatExt4(_ options: [String] = []) throws {
    try runChecked(try tool("mkfs.ext4"), ["-q", "-F"] + options + [device])
  }

  /// Mounts `image` (the device unless told otherwise) at `mountPoint`.
  package func mount(_ image: String? = nil, options: String = "loop") throws {
    let backing = image ?? device
    try runChecked(try tool("mount"), ["-o", options, backing, mountPoint])
    let mountPoint = mountPoint
    undo.append {
      _ = try? run("/usr/bin/umount", [mountPoint])
      // `mount -o loop` detaches on unmount; detach what is left if the unmount failed.
      if let listed = try? run("/usr/sbin/losetup", ["-j", backing]) {
        for line in listed.stdout.split(separator: "\n") {
          if let loop = line.split(separator: ":").first {
            _ = try? run("/usr/sbin/losetup", ["-d", String(loop)])
          }
        }
      }
    }
  }

  package func unmount() throws {
    try ReelTestSupport.unmount(mountPoint)
  }
}
