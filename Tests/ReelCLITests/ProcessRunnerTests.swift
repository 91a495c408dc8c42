import Foundation
import ReelTestSupport
import Testing

/// The shared runner reads both output streams as they come: a child that fills one pipe
/// while the runner waits on the other would hang the test.
@Suite struct ProcessRunnerTests {
  @Test func aMebibyteOnEachStreamIsCapturedWhole() throws {
    let mebibyte = 1 << 20
    let result = try run(
      "/bin/sh",
      ["-c", "head -c \(mebibyte) /dev/zero | tr '\\0' e >&2; head -c \(mebibyte) /dev/zero | tr '\\0' o"])
    #expect(result.succeeded, "\(result.status)")
    #expect(result.stderr == String(repeating: "e", count: mebibyte))
    #expect(result.stdout == String(repeating: "o", count: mebibyte))
  }

  @Test func inputEnvironmentAndFolderReachTheChild() throws {
    let folder = TemporaryDirectory()
    var permissions = stat()
    #expect(stat(folder.path, &permissions) == 0 && permissions.st_mode & 0o777 == 0o700)
    // More input than a pipe holds, echoed back while it is still being written.
    let input = (0..<(2 << 20)).map { UInt8(ascii: "a") + UInt8($0 % 26) }
    let echoed = try run("/bin/cat", [], input: input)
    #expect(echoed.succeeded)
    #expect(echoed.stdout == String(decoding: input, as: UTF8.self))
    let shown = try run(
      "/bin/sh", ["-c", "echo \"$REEL_RUNNER_TEST\"; pwd; echo \"${HOME+home}\""],
      environment: ["REEL_RUNNER_TEST": "given", "HOME": nil], directory: folder.path)
    #expect(shown.stdout == "given\n\(folder.path)\n\n")
    let killed = try run("/bin/sh", ["-c", "kill -9 $$"])
    #expect(killed.killed && killed.status == 128 + SIGKILL)
  }
}
