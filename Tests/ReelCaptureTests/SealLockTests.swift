import Foundation
import ReelCore
import ReelTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// One seal of a volume at a time: a second seal (another folder, another process) waits
/// for the first and then continues its chain, instead of continuing the same parent.
@Suite(.serialized) struct SealLockTests {
  @Test func aSealWaitsForTheOneHoldingTheVolumeThenContinuesItsChain() throws {
    let store = try TestStore()
    try store.createVolume("v", size: "1M")
    let work = store.directory.path
    let environment = ["REEL_PASSPHRASE": "lock", "REEL_KDF_MEMORY_KIB": "1024", "REEL_STORE": store.root]
    try #require(try run(store.reel, ["key", "create", "--out", work + "/k.key"], environment: environment).succeeded)
    try runChecked(store.reel, ["bookmark", "v", "one", "--store", store.root])
    let sealed = try run(
      store.reel, ["seal", "v", "--out", work + "/a", "--key", work + "/k.key"], environment: environment)
    try #require(sealed.succeeded, "\(sealed.stderr)")
    try runChecked(store.reel, ["bookmark", "v", "two", "--store", store.root])

    // As a seal in progress holds it.
    let lock = open(store.layout.volumeDirectory("v") + "/seal.lock", O_RDWR | O_CREAT, 0o600)
    try #require(lock >= 0)
    defer { close(lock) }
    try #require(flock(lock, LOCK_EX) == 0)
    let waiting = try ChildProcess(
      store.reel, ["seal", "v", "--out", work + "/b", "--key", work + "/k.key", "--json"], stdout: work + "/b.out",
      stderr: work + "/b.err", environment: environment)
    Thread.sleep(forTimeInterval: 1.5)
    #expect(waiting.isRunning, "the second seal went ahead while the volume's seal lock was held")
    #expect(
      ((try? FileManager.default.contentsOfDirectory(atPath: work + "/b")) ?? []).allSatisfy { $0.hasPrefix(".") })
    flock(lock, LOCK_UN)
    #expect(waiting.wait() == 0, "\((try? String(contentsOfFile: work + "/b.err", encoding: .utf8)) ?? "")")
    let output = (try? String(contentsOfFile: work + "/b.out", encoding: .utf8)) ?? ""
    let report = try #require(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any])
    #expect(report["chain_index"] as? Int == 1, "\(output)")
  }
}
