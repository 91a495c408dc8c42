import Foundation
import ReelCore
import ReelIO
import ReelJournal
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// A fresh folder under /tmp, removed when the test's scope ends.
final class TemporaryDirectory {
  let path: String

  init(_ label: String = "reel-capture") {
    var template = Array("/tmp/\(label)-XXXXXX".utf8CString)
    let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    precondition(created != nil, "mkdtemp failed")
    path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
  }

  deinit { try? FileManager.default.removeItem(atPath: path) }
}

/// The `reel` executable built next to this test bundle.
func reelExecutable() throws -> String {
  var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
  if directory.path.hasSuffix(".xctest/Contents/MacOS") {
    directory = directory.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
  }
  let path = directory.appendingPathComponent("reel").path
  try #require(FileManager.default.isExecutableFile(atPath: path), "reel not built at \(path)")
  return path
}

/// A system tool by name, from the usual folders.
func tool(_ name: String) throws -> String {
  for folder in ["/usr/bin", "/usr/sbin", "/bin", "/sbin", "/usr/local/bin"] {
    let path = folder + "/" + name
    if FileManager.default.isExecutableFile(atPath: path) { return path }
  }
  try #require(Bool(false), "\(name) is not installed")
  return name
}

struct CommandResult {
  var status: Int32
  var stdout: String
  var stderr: String
  var succeeded: Bool { status == 0 }
}

/// A child process started with posix_spawn and reaped with waitpid. Foundation's
/// `Process` was seen to hang in `waitUntilExit` when tests spawn from several threads.
final class ChildProcess: @unchecked Sendable {
  let pid: pid_t
  private let lock = NSLock()
  private var status: Int32?

  /// Starts `executable`; stdin is /dev/null, stdout and stderr go to the given files
  /// (appended), or to /dev/null.
  init(
    _ executable: String, _ arguments: [String], stdout: String? = nil, stderr: String? = nil,
    environment: [String: String] = [:]
  ) throws {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, stdout ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
    posix_spawn_file_actions_addopen(&actions, 2, stderr ?? "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0o644)
    let argv = ([executable] + arguments).map { strdup($0) } + [nil]
    let envp =
      ProcessInfo.processInfo.environment.merging(environment) { $1 }.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { for pointer in argv + envp { free(pointer) } }
    // Test threads block signals; without a reset the child would inherit that mask and
    // never see SIGTERM.
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var noSignals = sigset_t()
    sigemptyset(&noSignals)
    posix_spawnattr_setsigmask(&attributes, &noSignals)
    var defaults = sigset_t()
    sigemptyset(&defaults)
    for number in [SIGINT, SIGTERM, SIGPIPE] { sigaddset(&defaults, number) }
    posix_spawnattr_setsigdefault(&attributes, &defaults)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    var child: pid_t = 0
    let result = posix_spawn(&child, executable, &actions, &attributes, argv, envp)
    try #require(result == 0, "cannot start \(executable): \(String(cString: strerror(result)))")
    pid = child
  }

  deinit {
    if isRunning { kill(pid, SIGKILL) }
    _ = wait()
  }

  var isRunning: Bool {
    lock.withLock {
      if status != nil { return false }
      var raw: Int32 = 0
      if waitpid(pid, &raw, WNOHANG) == pid { status = raw }
      return status == nil
    }
  }

  /// Waits for the exit; the exit status, or 128 + signal number when killed.
  @discardableResult
  func wait() -> Int32 {
    let raw: Int32 = lock.withLock {
      if let status { return status }
      var raw: Int32 = 0
      while waitpid(pid, &raw, 0) < 0 && errno == EINTR {}
      status = raw
      return raw
    }
    let signal = raw & 0x7F
    return signal == 0 ? (raw >> 8) & 0xFF : 128 + signal
  }

  func signal(_ number: Int32) {
    if isRunning { kill(pid, number) }
  }
}

/// Runs a program to completion; output goes through files so a chatty program never
/// blocks on a full pipe.
@discardableResult
func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> CommandResult {
  let scratch = TemporaryDirectory("reel-run")
  let out = scratch.path + "/out"
  let err = scratch.path + "/err"
  let status = try ChildProcess(executable, arguments, stdout: out, stderr: err, environment: environment).wait()
  return CommandResult(
    status: status, stdout: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
    stderr: (try? String(contentsOfFile: err, encoding: .utf8)) ?? "")
}

/// Runs a program that must succeed, failing the test with its output otherwise.
@discardableResult
func runChecked(_ executable: String, _ arguments: [String]) throws -> CommandResult {
  let result = try run(executable, arguments)
  try #require(
    result.succeeded,
    "\(executable) \(arguments.joined(separator: " ")) exited \(result.status)\n\(result.stdout)\n\(result.stderr)")
  return result
}

/// Unmounts, retrying while the kernel still reports the mount busy (a writeback or a
/// just-exited process can hold it for a moment on a loaded machine).
func unmount(_ mountPoint: String) throws {
  var result = try run(try tool("umount"), [mountPoint])
  var attempts = 1
  while !result.succeeded && result.stderr.contains("busy") && attempts < 20 {
    Thread.sleep(forTimeInterval: 0.5)
    result = try run(try tool("umount"), [mountPoint])
    attempts += 1
  }
  try #require(
    result.succeeded, "umount \(mountPoint) exited \(result.status) after \(attempts) tries\n\(result.stderr)")
}

func sha256(_ path: String) throws -> String {
  let result = try runChecked(try tool("sha256sum"), [path])
  return String(result.stdout.prefix(64))
}

func writeRandomFile(_ path: String, bytes: Int) throws {
  let random = try #require(FileHandle(forReadingAtPath: "/dev/urandom"))
  defer { try? random.close() }
  _ = FileManager.default.createFile(atPath: path, contents: random.readData(ofLength: bytes))
}

func fileBytes(_ path: String) throws -> [UInt8] {
  Array(try #require(FileManager.default.contents(atPath: path), "cannot read \(path)"))
}

/// A store in a fresh folder, made with the real `reel` binary.
final class TestStore {
  let directory = TemporaryDirectory()
  let reel: String
  var root: String { directory.path + "/store" }
  var layout: StoreLayout { StoreLayout(root: root) }
  var socketPath: String { directory.path + "/nbd.sock" }

  init() throws {
    reel = try reelExecutable()
    try runChecked(reel, ["init", "--store", root])
  }

  func createVolume(_ name: String, size: String = "32M", blockSize: Int = 4096) throws {
    try runChecked(
      reel, ["volume", "create", name, "--size", size, "--block-size", String(blockSize), "--store", root])
  }

  func uri(_ name: String) -> String { "nbd+unix:///\(name)?socket=\(socketPath)" }

  func reelCommand(_ arguments: [String]) throws -> CommandResult {
    try run(reel, arguments + ["--store", root])
  }

  func descriptor(_ name: String) throws -> VolumeDescriptor { try layout.descriptor(of: name) }

  func journal(_ name: String) throws -> JournalReader {
    try JournalReader(directory: layout.journalDirectory(name), volume: try descriptor(name).id)
  }

  func records(_ name: String) throws -> [JournalRecord] {
    var records: [JournalRecord] = []
    try journal(name).forEachRecord {
      records.append($0)
      return true
    }
    return records
  }

  /// The volume as the journal says it was at `seq`: zeros, then every write, trim and
  /// zeroing up to it. Independent of the server and of `reel restore`.
  func replay(_ name: String, upTo seq: Seq = .max) throws -> [UInt8] {
    let descriptor = try descriptor(name)
    var image =
      descriptor.hasBase
      ? try fileBytes(layout.baseImagePath(name)) : [UInt8](repeating: 0, count: Int(descriptor.size))
    try journal(name).forEachRecord { record in
      guard record.seq <= seq else { return false }
      let start = Int(record.offset)
      let end = start + Int(record.length)
      switch record.kind {
      case .write: image.replaceSubrange(start..<end, with: record.payload)
      case .trim, .writeZeroes: image.replaceSubrange(start..<end, with: repeatElement(0, count: end - start))
      case .flush, .bookmark: break
      }
      return true
    }
    return image
  }

  /// Bytes in the volume's journal folder (segments and all).
  func journalBytes(_ name: String) -> UInt64 {
    let directory = layout.journalDirectory(name)
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    return names.reduce(0) { total, name in
      var info = stat()
      return total + (lstat(directory + "/" + name, &info) == 0 ? UInt64(info.st_size) : 0)
    }
  }

  func liveState(_ name: String) throws -> [String: Any] {
    let data = try #require(FileManager.default.contents(atPath: layout.volumeDirectory(name) + "/live.state"))
    return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
  }
}

/// `reel serve` as a child process. Killed (SIGKILL) and reaped when dropped, whatever the
/// test did; never found by name.
final class ServerProcess {
  let child: ChildProcess
  let logPath: String
  let outputPath: String
  private let socketPath: String?

  init(
    store: TestStore, volumes: [String], extra: [String] = [], socket: String? = nil, waitForSocket: Bool = true
  ) throws {
    let socketPath = socket ?? store.socketPath
    self.socketPath = extra.contains("--listen") && socket == nil ? nil : socketPath
    let stamp = UUID().uuidString.prefix(8)
    logPath = store.directory.path + "/serve-\(stamp).log"
    outputPath = store.directory.path + "/serve-\(stamp).out"
    var arguments = ["serve"] + volumes + ["--store", store.root] + extra
    if self.socketPath != nil { arguments += ["--socket", socketPath] }
    child = try ChildProcess(store.reel, arguments, stdout: outputPath, stderr: logPath)
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

  var pid: Int32 { child.pid }
  var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
  var output: String { (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? "" }

  /// Waits (bounded) for `condition`, failing early if the server died.
  func waitUntil(_ what: String, timeout: Double = 30, _ condition: () -> Bool) throws {
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
  func stop(_ signal: Int32 = SIGTERM) -> Int32 {
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

/// Kills `server` with SIGKILL while `writer` (qemu-io, output in `output`) is still
/// writing `chunk`-byte blocks, waits for qemu-io to give up, and returns the offsets of
/// the writes qemu-io saw acknowledged.
func killServer(_ server: ServerProcess, amid writer: ChildProcess, output: String, chunk: Int) throws -> [Int] {
  #expect(writer.isRunning, "the writer finished before the kill; the test proves less than it should")
  #expect(server.stop(SIGKILL) == 128 + SIGKILL)
  let deadline = Date(timeIntervalSinceNow: 60)
  while writer.isRunning && Date() < deadline { usleep(20_000) }
  try #require(!writer.isRunning, "qemu-io did not give up after the server died")
  let text = try String(contentsOfFile: output, encoding: .utf8)
  let offsets = text.split(separator: "\n").compactMap { line -> Int? in
    guard line.hasPrefix("wrote \(chunk)/\(chunk) bytes at offset ") else { return nil }
    return Int(line.split(separator: " ").last!)
  }
  try #require(offsets.count >= 8, "too few writes acknowledged before the kill:\n\(text)")
  return offsets
}

/// Mount points and loop devices a test made, undone in reverse order when it ends.
final class MountTracker {
  private var undo: [() -> Void] = []

  func fuse(_ mountPoint: String) {
    undo.append { _ = try? run("/usr/bin/fusermount3", ["-u", "-z", mountPoint]) }
  }

  func mount(_ mountPoint: String, backingFile: String) {
    undo.append {
      _ = try? run("/usr/bin/umount", [mountPoint])
      // `mount -o loop` detaches on unmount; detach what is left if the unmount failed.
      if let listed = try? run("/usr/sbin/losetup", ["-j", backingFile]) {
        for line in listed.stdout.split(separator: "\n") {
          if let device = line.split(separator: ":").first {
            _ = try? run("/usr/sbin/losetup", ["-d", String(device)])
          }
        }
      }
    }
  }

  deinit {
    for step in undo.reversed() { step() }
  }
}

/// A raw NBD client for traffic no real client would send.
final class RawClient {
  private let descriptor: Int32

  init(unixPath: String) throws {
    descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    try #require(descriptor >= 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
      let bytes = Array(unixPath.utf8)
      raw.copyBytes(from: bytes)
      raw[bytes.count] = 0
    }
    let connected = withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
      }
    }
    try #require(connected == 0, "connect to \(unixPath): \(String(cString: strerror(errno)))")
    // A server that hangs must fail the test, not hang it.
    var timeout = timeval(tv_sec: 20, tv_usec: 0)
    setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
  }

  deinit { close(descriptor) }

  func send(_ bytes: [UInt8]) throws {
    var done = 0
    while done < bytes.count {
      let sent = bytes.withUnsafeBytes {
        Glibc.send(descriptor, $0.baseAddress! + done, bytes.count - done, Int32(MSG_NOSIGNAL))
      }
      try #require(sent > 0, "send failed: \(String(cString: strerror(errno)))")
      done += sent
    }
  }

  /// Exactly `count` bytes, or nil if the server closed the connection first.
  func receive(_ count: Int) throws -> [UInt8]? {
    var buffer = [UInt8](repeating: 0, count: count)
    var done = 0
    while done < count {
      let got = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress! + done, count - done, 0) }
      if got == 0 || (got < 0 && errno == ECONNRESET) { return nil }
      try #require(got > 0, "receive failed: \(String(cString: strerror(errno)))")
      done += got
    }
    return buffer
  }

  /// True when the server closed the connection (nothing more to read).
  func isClosedByServer() throws -> Bool { try receive(1) == nil }

  func shutdownWriting() { shutdown(descriptor, Int32(SHUT_WR)) }
}

/// Big-endian encoding for hand-made NBD messages, with the protocol's numbers spelled out
/// here rather than taken from the server.
struct Wire {
  var bytes: [UInt8] = []
  mutating func u16(_ value: UInt16) { withUnsafeBytes(of: value.bigEndian) { bytes += $0 } }
  mutating func u32(_ value: UInt32) { withUnsafeBytes(of: value.bigEndian) { bytes += $0 } }
  mutating func u64(_ value: UInt64) { withUnsafeBytes(of: value.bigEndian) { bytes += $0 } }
  mutating func raw(_ value: [UInt8]) { bytes += value }

  static func read<T: FixedWidthInteger>(_ bytes: [UInt8], at offset: Int, as _: T.Type) -> T {
    var value: T = 0
    for index in offset..<(offset + MemoryLayout<T>.size) { value = value << 8 | T(bytes[index]) }
    return value
  }
}
