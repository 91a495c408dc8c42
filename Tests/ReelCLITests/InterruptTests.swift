import Foundation
import ReelTestSupport
import Testing

/// Ctrl-C and SIGTERM stop a long command cleanly: it says so, removes what it had half
/// written, and exits 128 + the signal.
@Suite(.serialized) struct InterruptTests {
  /// A store with a volume of 48 MiB of random data, so a restore takes a while.
  func sandboxWithLargeVolume() throws -> ReelSandbox {
    let sandbox = ReelSandbox()
    try sandbox.reel("init")
    let base = sandbox.root + "/base.img"
    var generator = SystemRandomNumberGenerator()
    var bytes = [UInt8](repeating: 0, count: 48 << 20)
    for index in stride(from: 0, to: bytes.count, by: 8) {
      withUnsafeBytes(of: generator.next()) { bytes.replaceSubrange(index..<(index + 8), with: $0) }
    }
    _ = FileManager.default.createFile(atPath: base, contents: Data(bytes))
    let created = try sandbox.reel("volume", "create", "disk", "--from", base)
    #expect(created.status == 0, "\(created.stderr)")
    return sandbox
  }

  func partials(in folder: String) throws -> [String] {
    try FileManager.default.contentsOfDirectory(atPath: folder).filter { $0.contains(".reel-partial-") }
  }

  /// Starts `reel restore`, waits for its partial file, sends `signal`; returns the exit
  /// status and standard error.
  func interruptRestore(_ sandbox: ReelSandbox, output: String, signal number: Int32) throws -> (Int32, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: reelExecutable)
    process.arguments = ["restore", "disk", "--at", "latest", "--output", output]
    var environment = ProcessInfo.processInfo.environment
    environment["REEL_STORE"] = sandbox.store
    process.environment = environment
    let errorFile = sandbox.root + "/stderr-\(number)"
    _ = FileManager.default.createFile(atPath: errorFile, contents: nil)
    process.standardError = FileHandle(forWritingAtPath: errorFile)
    process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
    try process.run()
    let partial = output + ".reel-partial-\(process.processIdentifier)"
    let deadline = Date().addingTimeInterval(60)
    while !FileManager.default.fileExists(atPath: partial) && process.isRunning && Date() < deadline {
      usleep(200)
    }
    #expect(FileManager.default.fileExists(atPath: partial), "the restore got as far as writing")
    kill(process.processIdentifier, number)
    process.waitUntilExit()
    let stderr = (try? String(contentsOfFile: errorFile, encoding: .utf8)) ?? ""
    return (process.terminationStatus, stderr)
  }

  @Test func ctrlCAndSigtermDuringRestoreRemoveThePartialFile() throws {
    let sandbox = try sandboxWithLargeVolume()
    for (number, code) in [(SIGINT, Int32(130)), (SIGTERM, Int32(143))] {
      let output = sandbox.root + "/restored-\(number).img"
      let (status, stderr) = try interruptRestore(sandbox, output: output, signal: number)
      #expect(status == code, "\(stderr)")
      #expect(stderr.contains("reel: interrupted; removed the partial \(output).reel-partial-"), "\(stderr)")
      #expect(try partials(in: sandbox.root).isEmpty)
      #expect(!FileManager.default.fileExists(atPath: output))
    }
  }

  @Test func aRerunRemovesThePartialOfAKilledRestore() throws {
    let sandbox = ReelSandbox()
    try sandbox.reel("init")
    try sandbox.reel("volume", "create", "disk", "--size", "64K")
    let output = sandbox.root + "/restored.img"
    // A PID that is not running: a child that has exited and been reaped.
    let child = Process()
    child.executableURL = URL(fileURLWithPath: "/bin/true")
    try child.run()
    child.waitUntilExit()
    let stale = output + ".reel-partial-\(child.processIdentifier)"
    _ = FileManager.default.createFile(atPath: stale, contents: Data(count: 4096))
    // One of a process that still runs (this one) is not touched.
    let running = output + ".reel-partial-\(getpid())"
    _ = FileManager.default.createFile(atPath: running, contents: Data(count: 10))

    let rerun = try sandbox.reel("restore", "disk", "--at", "latest", "--output", output)
    #expect(rerun.status == 0, "\(rerun.stderr)")
    #expect(rerun.stderr.contains("removed \(stale)"), "\(rerun.stderr)")
    #expect(!FileManager.default.fileExists(atPath: stale))
    #expect(FileManager.default.fileExists(atPath: running))
  }
}
