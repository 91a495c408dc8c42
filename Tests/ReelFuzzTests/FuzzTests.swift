import Foundation
import ReelTestSupport
import Testing

/// The fuzzer, next to the test bundle like `reel`.
var fuzzExecutable: String { (reelExecutable as NSString).deletingLastPathComponent + "/reel-fuzz" }

@Suite struct FuzzTests {
  /// A short fixed-seed run of every target: no input may crash, hang or exhaust memory.
  @Test func everyTargetSurvivesAFixedSeedRun() throws {
    let work = TemporaryDirectory("reel-fuzz")
    let result = try run(fuzzExecutable, ["run", "--work", work.path, "--seed", "19", "--count", "150"])
    #expect(result.status == 0, "\(result.output)")
    #expect(result.stdout.contains("RESULT fuzz"), "\(result.output)")
  }
}
