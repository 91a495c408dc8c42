import Foundation
import ReelTestSupport
import Testing

/// The fuzzer, built next to the test bundle like `reel`.
var fuzzExecutable: String { (reelExecutable as NSString).deletingLastPathComponent + "/reel-fuzz" }

/// Inputs that crashed (or, for the old parsers, would have), minimized, one per finding.
let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path

@Suite struct FuzzTests {
  /// A short fixed-seed run of every target: no input may crash, hang or exhaust memory.
  /// The fuzzer runs each target in a child process and exits 1 when one ended by a signal.
  @Test func everyTargetSurvivesAFixedSeedRun() throws {
    let work = TemporaryDirectory("reel-fuzz")
    let result = try run(fuzzExecutable, ["run", "--work", work.path, "--seed", "19", "--count", "60"])
    #expect(result.status == 0, "\(result.output)")
    #expect(result.stdout.contains("ratio=1.00"), "\(result.output)")
    let crashes = (try? FileManager.default.contentsOfDirectory(atPath: work.path + "/crashes")) ?? []
    #expect(crashes.isEmpty, "crashing inputs: \(crashes)")
  }

  /// Each checked-in input gives an answer or an error naming the problem, never a signal.
  /// catalog-file-number-overflow.json is what `reel-fuzz run catalog --seed 7` found and
  /// minimized on the old code: a catalog's file number of -2^63 trapped (exit 132) in the
  /// tape positioning arithmetic when rehydration opened the archive. A `since:` of a
  /// billion weeks trapped converting the window to nanoseconds for the stage's cutoff.
  /// label-year-past-2262.txt is what `benchmarks/fuzz.sh 30` (release, seed 19) found: a
  /// `labeled:` year past 2262 overflowed the Int64 nanoseconds of `Timestamp`. The two
  /// s3reply inputs are what `reel-fuzz run s3reply --seed 19` found at once: FoundationXML
  /// on Linux dereferences null on a processing instruction (signal 11) and traps on an
  /// element name that is not UTF-8 (signal 4); Reel's own reader of S3 replies, which
  /// replaced it, refuses both.
  /// catalog-size-2-63.json is what the fixed-seed run found (2026-12-05): an archive entry
  /// of 2^63 bytes on a 1.5 KB tape file; the tail the tape lacked was handed out as zeros
  /// without end (SIGALRM), which mending would have written to disk.
  /// tar-parity-size-2-62.tar is a sealed archive whose PARITY member claims 2^62 bytes:
  /// `benchmarks/fuzz.sh` (2026-12-06) found the same through a pax `GNU.sparse.size`, and
  /// the verifier's bound on the protected bytes (64 times the member) overflowed (exit
  /// 132). tar-sparse-member.tar holds one sparse member, which the tar reader now refuses.
  /// tar-parity-bound-doubled.tar (found by the same run, 2026-12-06, after that fix): a
  /// PARITY member large enough that the saturated bound, doubled to bound the member's
  /// size, overflowed (exit 132); parity headers now take bounds up to 1 PiB only.
  @Test(arguments: [
    ("catalog", "catalog-file-number-overflow.json", "accepted"),
    ("catalog", "catalog-volume-escapes.json", "accepted"),
    ("catalog", "catalog-size-2-63.json", "accepted"),
    ("label", "label-block-size-negative.txt", "data-block-size -1048576"),
    ("label", "label-year-past-2262.txt", "refused"),
    ("tar", "tar-pax-size-negative.tar", "size attribute is negative"),
    ("tar", "tar-parity-size-2-62.tar", "refused"),
    ("tar", "tar-sparse-member.tar", "is a sparse file"),
    ("tar", "tar-parity-bound-doubled.tar", "refused"),
    ("pipeline", "pipeline-since-overflows.yaml", "accepted"),
    ("s3reply", "s3reply-processing-instruction.xml", "refused"),
    ("s3reply", "s3reply-name-not-utf8.xml", "refused"),
  ])
  func foundInputsStayHarmless(target: String, file: String, answer: String) throws {
    let result = try run(fuzzExecutable, ["replay", target, fixtures + "/" + file])
    #expect(result.signal == nil, "\(result.output)")
    #expect(result.status == 0 && result.stdout.contains(answer), "\(result.output)")
  }
}
