import Foundation
import ReelCodec
import ReelCore

#if canImport(Glibc)
  import Glibc
#endif

/// Runs each target's campaign in a child process and turns a child killed by a signal
/// into a minimized input saved under `crashes`.
struct Supervisor {
  var work: String
  var crashes: String
  var seed: UInt64
  var count: Int?
  var seconds: Double?
  /// Children a target may lose to crashes before the supervisor moves on.
  var relaunches = 3

  static var executable: String {
    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
  }

  struct Outcome {
    var executed = 0
    var crashes: [String] = []
  }

  /// True when no target crashed.
  func run(targets: [FuzzTarget]) throws -> Bool {
    let seeds = work + "/seeds"
    if !FileManager.default.fileExists(atPath: seeds + "/tar") { try FuzzSeeds.build(into: seeds) }
    var clean = 0
    var executed = 0
    let started = Date()
    for target in targets {
      let began = Date()
      let outcome = try campaign(target, seeds: seeds)
      let elapsed = max(Date().timeIntervalSince(began), 0.001)
      executed += outcome.executed
      if outcome.crashes.isEmpty { clean += 1 }
      print(
        String(
          format: "target %@: %d inputs, %.0f inputs/s, %d crash(es)%@", target.name, outcome.executed,
          Double(outcome.executed) / elapsed, outcome.crashes.count,
          outcome.crashes.isEmpty ? "" : " — " + outcome.crashes.joined(separator: ", ")))
    }
    let rate = Double(executed) / max(Date().timeIntervalSince(started), 0.001)
    print(
      String(
        format: "RESULT fuzz reel=%.0f baseline=n/a ratio=%.2f target=1.00", rate,
        Double(clean) / Double(max(targets.count, 1))))
    return clean == targets.count
  }

  private func campaign(_ target: FuzzTarget, seeds: String) throws -> Outcome {
    var outcome = Outcome()
    let folder = work + "/" + target.name
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    let started = Date()
    for attempt in 0...relaunches {
      var arguments = [
        "campaign", target.name, "--seeds", seeds, "--work", folder, "--seed", "\(seed &+ UInt64(attempt))",
      ]
      if let count { arguments += ["--count", "\(max(count - outcome.executed, 0))"] }
      if let seconds { arguments += ["--seconds", "\(max(seconds - Date().timeIntervalSince(started), 0.1))"] }
      let (status, signal, output) = try child(arguments, scratch: folder + "/scratch")
      if let line = output.split(separator: "\n").last(where: { $0.hasPrefix("executed ") }) {
        outcome.executed += Int(line.dropFirst("executed ".count)) ?? 0
      }
      guard let signal else {
        if status != 0 { throw ReelError(.io, "the \(target.name) campaign failed (exit \(status)): \(output)") }
        break
      }
      let input = try FuzzSeeds.bytes(folder + "/current.bin")
      let saved = try save(minimize(input, target: target, folder: folder), target: target)
      outcome.crashes.append("signal \(signal): \(saved)")
      FileHandle.standardError.write(Data("CRASH \(target.name) signal \(signal), input saved as \(saved)\n".utf8))
      if let seconds, Date().timeIntervalSince(started) >= seconds { break }
    }
    return outcome
  }

  /// Runs this executable with `arguments`: exit status, the signal that ended it, stdout.
  /// A `reel serve` the child started for the NBD target is ended by its pid afterwards:
  /// a child killed by a signal could not.
  func child(_ arguments: [String], scratch: String) throws -> (status: Int32, signal: Int32?, output: String) {
    defer {
      let pidFile = NBDFuzzing.pidFile(scratch: scratch)
      if let text = try? String(contentsOfFile: pidFile, encoding: .utf8), let pid = Int32(text), pid > 1 {
        kill(pid, SIGKILL)
        try? FileManager.default.removeItem(atPath: pidFile)
      }
    }
    let process = Process()
    process.executableURL = URL(fileURLWithPath: Self.executable)
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = FileHandle.nullDevice
    try process.run()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    let signal = process.terminationReason == .uncaughtSignal ? process.terminationStatus : nil
    return (process.terminationStatus, signal, String(decoding: data, as: UTF8.self))
  }

  /// Whether `input` still ends a replay with a signal.
  func crashes(_ input: [UInt8], target: FuzzTarget, folder: String) throws -> Bool {
    let path = folder + "/candidate.bin"
    guard FileManager.default.createFile(atPath: path, contents: Data(input)) else { return false }
    let scratch = folder + "/replay-scratch"
    return try child(["replay", target.name, path, "--scratch", scratch], scratch: scratch).signal != nil
  }

  /// Cuts pieces out of the input while it still crashes: halves, then smaller pieces,
  /// a bounded number of tries.
  func minimize(_ input: [UInt8], target: FuzzTarget, folder: String) throws -> [UInt8] {
    guard try crashes(input, target: target, folder: folder) else { return input }
    var best = input
    var piece = max(best.count / 2, 1)
    var tries = 0
    while piece >= 1 && tries < 120 {
      var offset = 0
      var shrank = false
      while offset < best.count && tries < 120 {
        var candidate = best
        candidate.removeSubrange(offset..<min(offset + piece, best.count))
        tries += 1
        if try crashes(candidate, target: target, folder: folder) {
          best = candidate
          shrank = true
        } else {
          offset += piece
        }
      }
      if !shrank { piece /= 2 }
    }
    return best
  }

  func save(_ input: [UInt8], target: FuzzTarget) throws -> String {
    try FileManager.default.createDirectory(atPath: crashes, withIntermediateDirectories: true)
    let path = crashes + "/\(target.name)-\(SHA256Digest.hash(input).hex.prefix(12)).bin"
    guard FileManager.default.createFile(atPath: path, contents: Data(input)) else {
      throw ReelError(.io, "cannot save a crashing input in \(crashes)")
    }
    return path
  }
}
