import Foundation
import ReelCore
import ReelTestSupport
import Testing

/// A served volume under random writes while every other writer of the store runs from
/// its own process, round after round: `reel ingest`, `reel seal` (both formats), the
/// nightly pipeline, `reel prune` and `reel restore`. Serve's own ingest runs every
/// 200 ms, so it interleaves with all of them. Afterwards the store must be consistent
/// to the last byte and every bookmark must restore to what the device held.
@Suite(.serialized) struct ServedStoreStressTests {
  @Test func everyWriterOfTheStoreRunsBesideAServedVolume() throws {
    let store = try TestStore()
    try store.createVolume("vt", size: "16M")
    let work = store.directory.path
    let environment = [
      "REEL_KEY": work + "/master.reelkey", "REEL_PASSPHRASE": "stress", "REEL_KDF_MEMORY_KIB": "1024",
      "REEL_VTL": work + "/vtl", "REEL_STORE": store.root,
    ]
    try runChecked(store.reel, ["key", "create", "--out", work + "/master.reelkey"], environment: environment)
    try FileManager.default.createDirectory(atPath: work + "/vtl", withIntermediateDirectories: true)
    for name in ["c1", "c2", "c3"] {
      try runChecked(
        store.reel,
        [
          "media", "label", "vtape:\(work)/vtl/\(name).vtape", "--name", name.uppercased(), "--media-set", "primary",
          "--capacity", "256M",
        ], environment: environment)
    }
    let pipeline = work + "/nightly.yaml"
    try Data(
      """
      pipeline: nightly
      media-set: primary
      stages:
        - stage: cut
        - stage: seal
        - stage: verify
        - stage: export
          to:
            - vtape:${REEL_VTL}
        - stage: verify-on-media
        - stage: record-catalog
        - stage: prune-journal
          copies: 1
      """.utf8
    ).write(to: URL(fileURLWithPath: pipeline))

    let server = try ServerProcess(store: store, volumes: ["vt"], extra: ["--ingest-interval", "0.2"])
    var random = SystemRandomNumberGenerator()
    var bookmarks: [(label: String, image: String)] = []
    let rounds = 4
    for round in 0..<rounds {
      var commands: [String] = []
      for index in 0..<150 {
        let length = 4096 * Int.random(in: 1...16, using: &random)
        let offset = 4096 * Int.random(in: 0..<((16 << 20) - length) / 4096, using: &random)
        commands += ["-c", "write -P \(Int.random(in: 1...255, using: &random)) \(offset) \(length)"]
        if index % 10 == 9 { commands += ["-c", "flush"] }
      }
      let log = work + "/round-\(round)"
      let writer = try ChildProcess(
        try tool("qemu-io"), ["-f", "raw", store.uri("vt")] + commands, stdout: log + ".qemu", stderr: log + ".qemu")
      // Every other writer of packs and catalog rows, each its own process, all at once.
      let sealing =
        round % 2 == 0
        ? ["seal", "vt", "--out", work + "/archives", "--format", round % 4 == 0 ? "1" : "2"]
        : ["pipeline", "run", pipeline]
      // A second seal into another folder at the same moment must not fork the chain.
      let others: [[String]] = [
        ["ingest", "vt"], sealing, ["prune", "vt", "--keep-within", "7d"],
        ["restore", "vt", "--at", "latest", "--output", work + "/latest.img", "--force"],
        ["seal", "vt", "--out", work + "/archives-\(round)", "--until", "latest"],
      ]
      let children = try others.enumerated().map { index, arguments in
        (
          arguments,
          try ChildProcess(
            store.reel, arguments, stdout: log + "-\(index).out", stderr: log + "-\(index).err",
            environment: environment)
        )
      }
      #expect(writer.wait() == 0, "qemu-io: \((try? String(contentsOfFile: log + ".qemu", encoding: .utf8)) ?? "")")
      for (index, (arguments, child)) in children.enumerated() {
        let status = child.wait()
        let output = (try? String(contentsOfFile: log + "-\(index).err", encoding: .utf8)) ?? ""
        #expect(status == 0, "round \(round): reel \(arguments.joined(separator: " ")) exited \(status): \(output)")
      }
      let label = "round-\(round)"
      try runChecked(store.reel, ["bookmark", "vt", label, "--store", store.root], environment: environment)
      let image = work + "/\(label).device"
      try runChecked(try tool("nbdcopy"), [store.uri("vt"), image])
      bookmarks.append((label, image))
    }
    #expect(server.stop() == 0)
    #expect(!server.log.contains("failed"), "\(server.log)")

    // One chain, each archive continuing the one before it.
    let chain = try runChecked(
      try tool("sqlite3"),
      [
        store.layout.catalogPath,
        "SELECT id, COALESCE(parent_id, '-'), from_seq, until_seq FROM sealed_archive ORDER BY until_seq",
      ]
    ).stdout.split(separator: "\n").map { $0.split(separator: "|").map(String.init) }
    #expect(chain.count >= rounds)
    for (previous, archive) in zip(chain, chain.dropFirst()) {
      #expect(archive[1] == previous[0] && archive[2] == previous[3], "chain forks: \(chain)")
    }
    let check = try run(store.reel, ["store", "check", "--read-data"], environment: environment)
    #expect(check.succeeded, "\(check.stdout)\(check.stderr)")
    for (label, image) in bookmarks {
      let restored = work + "/\(label).restored"
      try runChecked(store.reel, ["restore", "vt", "--at", label, "--output", restored], environment: environment)
      #expect(try sha256(restored) == sha256(image), "bookmark \(label)")
    }
  }
}
