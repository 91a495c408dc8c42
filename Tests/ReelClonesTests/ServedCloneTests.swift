import Foundation
import ReelCore
import ReelTestSupport
import Testing

/// Clones next to `reel serve`, with real NBD clients (qemu-io, nbdcopy).
@Suite struct ServedCloneTests {
  /// A clone taken while the origin is served and written holds what was acknowledged
  /// before the clone; served itself, the clone reads through NBD exactly what `reel
  /// restore` of the origin gives at that point, takes writes the origin never sees, and
  /// cannot be deleted or renamed while served; the origin cannot be deleted while the
  /// clone reads it.
  @Test func cloneOfAServedVolumeServedAndWritten() throws {
    let store = try TestStore()
    try store.createVolume("db", size: "8M")
    let origin = try ServerProcess(store: store, volumes: ["db"])
    defer { origin.stop() }
    let qemu = try tool("qemu-io")
    try runChecked(qemu, ["-f", "raw", "-t", "writeback", store.uri("db"), "-c", "write -P 0x5a 0 3M"])
    let seq = try store.bookmark("db", "before")
    try runChecked(qemu, ["-f", "raw", "-t", "writeback", store.uri("db"), "-c", "write -P 0x11 1M 1M"])

    let cloned = try store.reelCommand(["clone", "db", "--at", "before", "--as", "db-test"])
    try #require(cloned.succeeded, "\(cloned.stderr)")
    #expect(cloned.stdout.contains("Cloned db at seq \(seq)"), "\(cloned.stdout)")
    let expected = store.directory.path + "/expected.img"
    try runChecked(store.reel, ["restore", "db", "--at", "before", "--output", expected, "--store", store.root])

    let socket = store.directory.path + "/clone.sock"
    let served = try ServerProcess(store: store, volumes: ["db-test"], socket: socket)
    defer { served.stop() }
    let uri = "nbd+unix:///db-test?socket=\(socket)"
    let read = store.directory.path + "/clone.img"
    try runChecked(try tool("nbdcopy"), [uri, read])
    #expect(FileManager.default.contents(atPath: read) == FileManager.default.contents(atPath: expected))

    try runChecked(qemu, ["-f", "raw", "-t", "writeback", uri, "-c", "write -P 0x77 0 64k"])
    try runChecked(qemu, ["-f", "raw", "-t", "writeback", store.uri("db"), "-c", "write -P 0x22 4M 64k"])
    let cloneRead = try runChecked(qemu, ["-f", "raw", uri, "-c", "read -P 0x77 0 64k", "-c", "read -P 0 4M 64k"])
    #expect(!cloneRead.stdout.contains("Pattern verification failed"), "\(cloneRead.stdout)")
    let originRead = try runChecked(
      qemu, ["-f", "raw", store.uri("db"), "-c", "read -P 0x5a 0 64k", "-c", "read -P 0x22 4M 64k"])
    #expect(!originRead.stdout.contains("Pattern verification failed"), "\(originRead.stdout)")

    for (arguments, message) in [
      (["volume", "delete", "db-test", "--yes", "--force"], "volume db-test is being served"),
      (["volume", "rename", "db-test", "other"], "volume db-test is being served"),
      (["volume", "delete", "db", "--yes", "--force"], "volume db is being served"),
    ] {
      let result = try store.reelCommand(arguments)
      #expect(!result.succeeded)
      #expect(result.stderr.contains(message), "\(arguments): \(result.stderr)")
    }
    #expect(served.stop() == 0)
    #expect(origin.stop() == 0)
    let dependants = try store.reelCommand(["volume", "delete", "db", "--yes", "--force"])
    #expect(dependants.stderr.contains("a clone reads from it: db-test"), "\(dependants.stderr)")
    let check = try store.reelCommand(["store", "check", "--read-data"])
    #expect(check.succeeded, "\(check.stdout)")
  }
}
