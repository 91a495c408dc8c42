import Foundation
import ReelCore
import ReelJournal
import ReelTestSupport
import Testing

/// Disaster recovery ends with serving the recovered volume: a rehydrated store serves
/// the newest sealed state, keeps its bookmarks and timeline, and new writes continue the
/// history (next seqs, next archive of the same chain).
@Suite(.serialized) struct RehydratedServeTests {
  @Test func aRehydratedVolumeServesItsNewestStateAndContinuesItsHistory() throws {
    let store = try TestStore()
    try store.createVolume("v", size: "8M")
    let work = store.directory.path
    let environment = ["REEL_PASSPHRASE": "recover", "REEL_KDF_MEMORY_KIB": "1024"]
    let key = work + "/master.reelkey"
    try runChecked(store.reel, ["key", "create", "--out", key], environment: environment)
    let qemuIO = try tool("qemu-io")
    var server = try ServerProcess(store: store, volumes: ["v"])
    try runChecked(qemuIO, ["-f", "raw", store.uri("v"), "-c", "write -P 0x5a 0 3M", "-c", "write -P 0x17 5M 1M"])
    try runChecked(store.reel, ["bookmark", "v", "first", "--store", store.root], environment: environment)
    try runChecked(qemuIO, ["-f", "raw", store.uri("v"), "-c", "write -P 0x99 1M 512k", "-c", "flush"])
    try runChecked(store.reel, ["bookmark", "v", "sealed", "--store", store.root], environment: environment)
    let sealedImage = work + "/sealed.device"
    try runChecked(try tool("nbdcopy"), [store.uri("v"), sealedImage])
    #expect(server.stop() == 0)
    try runChecked(
      store.reel, ["seal", "v", "--out", work + "/cold", "--key", key, "--store", store.root], environment: environment)
    let originalLastSeq = try #require(try store.records("v").last?.seq)

    let recovered = try TestStore()
    try FileManager.default.removeItem(atPath: recovered.root)
    try runChecked(
      store.reel, ["rehydrate", "--from", "dir:" + work + "/cold", "--key", key, "--store", recovered.root],
      environment: environment)
    server = try ServerProcess(store: recovered, volumes: ["v"])
    #expect(server.log.contains("live store as of seq"), "\(server.log)")
    let served = work + "/served.device"
    try runChecked(try tool("nbdcopy"), [recovered.uri("v"), served])
    #expect(try sha256(served) == sha256(sealedImage), "the rehydrated volume serves its newest sealed state")

    let timeline = try runChecked(store.reel, ["timeline", "v", "--store", recovered.root], environment: environment)
      .stdout
    #expect(timeline.contains("seq 1…\(originalLastSeq)"), "\(timeline)")
    #expect(timeline.contains("first") && timeline.contains("sealed"), "\(timeline)")
    #expect(!timeline.contains("no writes yet"), "\(timeline)")

    // New writes are history after the recovered point.
    try runChecked(qemuIO, ["-f", "raw", recovered.uri("v"), "-c", "write -P 0x42 2M 1M", "-c", "flush"])
    let after = try runChecked(
      store.reel, ["bookmark", "v", "after", "--store", recovered.root, "--json"], environment: environment
    ).stdout
    let afterImage = work + "/after.device"
    try runChecked(try tool("nbdcopy"), [recovered.uri("v"), afterImage])
    #expect(server.stop() == 0)
    let afterSeq = try #require(
      (try JSONSerialization.jsonObject(with: Data(after.utf8)) as? [String: Any])?["seq"] as? Int)
    #expect(afterSeq > Int(originalLastSeq))
    let journal = try recovered.records("v")
    #expect(journal.first.map { $0.seq == originalLastSeq + 1 } == true, "the journal continues the seqs")

    for (point, image) in [("sealed", sealedImage), ("after", afterImage)] {
      let restored = work + "/\(point).restored"
      try runChecked(
        store.reel, ["restore", "v", "--at", point, "--output", restored, "--store", recovered.root],
        environment: environment)
      #expect(try sha256(restored) == sha256(image), "restore of \(point)")
    }
    // Sealing again continues the chain the archives came from.
    let second = try runChecked(
      store.reel, ["seal", "v", "--out", work + "/cold2", "--key", key, "--store", recovered.root, "--json"],
      environment: environment)
    let report = try #require(try JSONSerialization.jsonObject(with: Data(second.stdout.utf8)) as? [String: Any])
    #expect(report["chain_index"] as? Int == 1, "\(second.stdout)")
    #expect(report["from_seq"] as? Int == Int(originalLastSeq), "\(second.stdout)")
  }
}
