import Foundation
import ReelCore

#if canImport(Glibc)
  import Glibc
#endif

/// One target fuzzed in this process: inputs from a seeded mutator, each written to
/// `current` before it runs, so the supervisor finds the input a crash or hang ended on.
struct Campaign {
  var target: FuzzTarget
  var seeds: [[UInt8]]
  var seed: UInt64
  var count: Int?
  var seconds: Double?
  var work: String
  /// Seconds one input may take before SIGALRM ends the process as a hang.
  var inputTimeout: UInt32 = 10

  func run() throws -> Int {
    let scratch = work + "/scratch"
    try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    let current = open(work + "/current.bin", O_WRONLY | O_CREAT | O_TRUNC, 0o600)
    guard current >= 0 else { throw ReelError(.io, "cannot write \(work)/current.bin") }
    defer { close(current) }
    var mutator = Mutator(seed: seed, seeds: seeds)
    let started = Date()
    var executed = 0
    while true {
      if let count, executed >= count { break }
      if let seconds, Date().timeIntervalSince(started) >= seconds { break }
      // The seeds themselves run first: a valid input must stay valid.
      let input = executed < seeds.count ? seeds[executed] : mutator.input()
      _ = input.withUnsafeBytes { pwrite(current, $0.baseAddress, $0.count, 0) }
      _ = ftruncate(current, off_t(input.count))
      alarm(inputTimeout)
      try? target.run(input, scratch)
      alarm(0)
      executed += 1
    }
    return executed
  }
}

/// Limits that make an absurd allocation a crash rather than a machine that swaps.
func limitMemory(gibibytes: UInt64) {
  var limit = rlimit(rlim_cur: rlim_t(gibibytes << 30), rlim_max: rlim_t(gibibytes << 30))
  _ = setrlimit(Int32(RLIMIT_AS.rawValue), &limit)
}
