import Foundation
import ReelCodec
import ReelCore

#if canImport(Glibc)
  import Glibc
#endif

// reel-fuzz: a deterministic mutation fuzzer for the parsers of untrusted input.
//
//   reel-fuzz list
//   reel-fuzz run [TARGET…] --work DIR [--seed N] [--count N | --seconds S] [--crashes DIR]
//   reel-fuzz replay TARGET FILE… [--scratch DIR]   (exit 0: every input gave a result or an error)
//
// `run` fuzzes each target in a child process; a child ended by a signal (a trap, SIGALRM
// for an input that hangs, an allocation past the memory limit) leaves the input it was
// on, which is minimized and saved under --crashes. Exit status 1 when anything crashed.

let arguments = Array(CommandLine.arguments.dropFirst())

func option(_ name: String) -> String? {
  guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
  return arguments[index + 1]
}

/// Positional arguments after the command, up to the first option.
func positional() -> [String] {
  Array(arguments.dropFirst().prefix { !$0.hasPrefix("--") })
}

func fail(_ message: String) -> Never {
  FileHandle.standardError.write(Data("reel-fuzz: \(message)\n".utf8))
  exit(2)
}

do {
  switch arguments.first {
  case "list":
    for target in FuzzTarget.all { print("\(target.name)\t\(target.summary)") }
  case "campaign":
    // The child side of `run`.
    guard let name = positional().first, let seeds = option("--seeds"), let work = option("--work") else {
      fail("campaign TARGET --seeds DIR --work DIR")
    }
    limitMemory(gibibytes: 4)
    let target = try FuzzTarget.named(name)
    let campaign = Campaign(
      target: target, seeds: try FuzzSeeds.load(seeds, target: name),
      seed: option("--seed").flatMap { UInt64($0) } ?? 1, count: option("--count").flatMap { Int($0) },
      seconds: option("--seconds").flatMap { Double($0) }, work: work)
    print("executed \(try campaign.run())")
  case "replay":
    let names = positional()
    guard let name = names.first, names.count > 1 else { fail("replay TARGET FILE… [--scratch DIR]") }
    limitMemory(gibibytes: 4)
    let target = try FuzzTarget.named(name)
    let scratch = option("--scratch") ?? NSTemporaryDirectory() + "reel-fuzz-replay-\(getpid())"
    try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    defer { if option("--scratch") == nil { try? FileManager.default.removeItem(atPath: scratch) } }
    for file in names.dropFirst() {
      alarm(30)
      do {
        try target.run(try FuzzSeeds.bytes(file), scratch)
        print("\(file): accepted")
      } catch {
        print("\(file): refused: \(error)")
      }
      alarm(0)
    }
  case "run":
    guard let work = option("--work") else { fail("run [TARGET…] --work DIR [--seed N] [--count N | --seconds S]") }
    let names = positional().isEmpty ? FuzzTarget.all.map(\.name) : positional()
    let supervisor = Supervisor(
      work: work, crashes: option("--crashes") ?? work + "/crashes", seed: option("--seed").flatMap { UInt64($0) } ?? 1,
      count: option("--count").flatMap { Int($0) }, seconds: option("--seconds").flatMap { Double($0) })
    exit(try supervisor.run(targets: try names.map(FuzzTarget.named)) ? 0 : 1)
  default:
    fail("give list, run or replay")
  }
} catch {
  fail("\(error)")
}
