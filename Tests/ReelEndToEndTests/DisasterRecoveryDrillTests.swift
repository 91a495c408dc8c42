import Foundation
import ReelCore
import ReelJournal
import ReelTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// The disaster-recovery drill (issue "Rehydrate"): an ext4 file system with real files and
/// a SQLite database under updates, captured through `reel serve` + nbdfuse + a loop mount;
/// sealed, exported to a vtape set spanning cartridges; the store deleted; rehydrated from
/// the cartridges and a paper key alone; every bookmark and chosen instants restored and
/// compared with what the device held, and the restored file system mounted read-only.
@Suite(.serialized) struct DisasterRecoveryDrillTests {
  struct Point {
    var name: String
    var sha: String
    var files: [String: String]
    var rows: Int
  }

  func sqlite(_ database: String, _ sql: String) throws -> String {
    try runChecked(try tool("sqlite3"), [database, sql]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  @Test func drillFromCartridgesAndAPaperKeyRestoresEveryPoint() throws {
    let store = try TestStore()
    let work = store.directory.path
    try store.createVolume("fs", size: "48M")
    let key = work + "/master.key"
    let passphrase = ["REEL_PASSPHRASE": "drill passphrase"]
    try runChecked(store.reel, ["key", "create", "--out", key, "--label", "drill"], environment: passphrase)
    let server = try ServerProcess(store: store, volumes: ["fs"])
    let kernel = try KernelMount(in: work)
    let device = kernel.device
    let mountPoint = kernel.mountPoint
    try kernel.connect(store.uri("fs"), servedBy: server)
    try kernel.formatExt4()

    var points: [Point] = []
    let sealed = work + "/sealed"
    var sources = try FileManager.default.contentsOfDirectory(atPath: "/usr/share/common-licenses").sorted()
      .map { "/usr/share/common-licenses/" + $0 }
      .filter { (try? FileManager.default.destinationOfSymbolicLink(atPath: $0)) == nil }
    #expect(sources.count >= 5)
    var rows = 0
    for round in 1...3 {
      try kernel.mount()
      let database = mountPoint + "/app.db"
      if round == 1 {
        _ = try sqlite(database, "CREATE TABLE item (id INTEGER PRIMARY KEY, round INTEGER, note TEXT)")
      }
      // The database under load: inserts and updates in many small transactions.
      for batch in 0..<20 {
        var sql = "BEGIN;"
        for item in 0..<10 {
          sql += "INSERT INTO item (round, note) VALUES (\(round), 'r\(round) b\(batch) i\(item)');"
        }
        sql += "UPDATE item SET note = note || '+' WHERE id % 7 = \(batch % 7); COMMIT;"
        _ = try sqlite(database, sql)
        rows += 10
      }
      // Real files in, some edited, some deleted.
      let folder = mountPoint + "/files"
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
      try writeRandomFile(folder + "/r\(round)-blob.bin", bytes: 3 << 20)
      for source in sources.prefix(4) {
        try FileManager.default.copyItem(
          atPath: source, toPath: folder + "/r\(round)-" + (source as NSString).lastPathComponent)
      }
      sources.append(contentsOf: sources.prefix(4))
      sources.removeFirst(4)
      if round > 1 {
        let present = try FileManager.default.contentsOfDirectory(atPath: folder).sorted()
        try FileManager.default.removeItem(atPath: folder + "/" + present[0])
        let edited = folder + "/" + present[1]
        try (try String(contentsOfFile: edited, encoding: .utf8) + "\nedited in round \(round)\n")
          .write(toFile: edited, atomically: false, encoding: .utf8)
      }
      var files: [String: String] = [:]
      for name in try FileManager.default.contentsOfDirectory(atPath: folder) {
        files[name] = try sha256(folder + "/" + name)
      }
      #expect(try sqlite(database, "SELECT COUNT(*) FROM item") == String(rows))
      try runChecked(try tool("sync"), [])
      try kernel.unmount()
      try runChecked(try tool("sync"), [])
      let sha = try sha256(device)
      let label = "round-\(round)"
      try runChecked(store.reel, ["bookmark", "fs", label, "--store", store.root])
      points.append(Point(name: label, sha: sha, files: files, rows: rows))
      // An instant while the device is quiet, between this bookmark and the next write.
      let instant = Timestamp.now().rfc3339
      points.append(Point(name: instant, sha: sha, files: files, rows: rows))
      if round != 2 {
        let seal = try store.reelCommand(["seal", "fs", "--out", sealed, "--key", key], environment: passphrase)
        try #require(seal.succeeded, "seal: \(seal.stderr)")
      }
    }
    #expect(try kernel.disconnect() == 0)
    #expect(server.stop() == 0)
    let archives = try FileManager.default.contentsOfDirectory(atPath: sealed).filter { $0.hasSuffix(".reel.tar") }
      .sorted()
    #expect(archives.count == 2)

    // Export to a set of small cartridges, so the set spans more than one.
    let library = work + "/vtl"
    try FileManager.default.createDirectory(atPath: library, withIntermediateDirectories: true)
    let sizes = try archives.map {
      try FileManager.default.attributesOfItem(atPath: sealed + "/" + $0)[.size] as! UInt64
    }
    let capacity = sizes.max()! + (3 << 20)
    for number in 1...3 {
      try runChecked(
        store.reel,
        [
          "media", "label", "vtape:" + library, "--name", "DR000\(number)", "--media-set", "drill", "--capacity",
          String(capacity), "--store", store.root,
        ])
    }
    let export = try store.reelCommand(
      ["export"] + archives.map { sealed + "/" + $0 } + ["--to", "vtape:" + library, "--media-set", "drill"])
    try #require(export.succeeded, "export: \(export.stdout) \(export.stderr)")
    #expect(export.stdout.contains("DR0002"), "the set spans cartridges: \(export.stdout)")

    // The paper copy of the key, typed back in; then the server room burns down.
    let paper = try runChecked(store.reel, ["key", "paper", key], environment: passphrase).stdout
    try paper.write(toFile: work + "/paper.txt", atomically: true, encoding: .utf8)
    let typedKey = work + "/typed.key"
    try runChecked(
      store.reel, ["key", "create", "--out", typedKey, "--from-paper", "--paper-file", work + "/paper.txt"],
      environment: passphrase)
    try FileManager.default.removeItem(atPath: key)
    try FileManager.default.removeItem(atPath: store.root)
    try FileManager.default.removeItem(atPath: sealed)

    let recovered = work + "/recovered"
    let rehydrate = try run(
      store.reel, ["rehydrate", "--from", "vtape:" + library, "--key", typedKey, "--store", recovered, "--json"],
      environment: passphrase)
    try #require(rehydrate.succeeded, "rehydrate: \(rehydrate.stdout) \(rehydrate.stderr)")

    for point in points {
      let image = work + "/restored.img"
      try? FileManager.default.removeItem(atPath: image)
      let restore = try run(
        store.reel, ["restore", "fs", "--at", point.name, "--output", image, "--store", recovered],
        environment: passphrase)
      try #require(restore.succeeded, "restore at \(point.name): \(restore.stderr)")
      #expect(try sha256(image) == point.sha, "restored image at \(point.name)")
      try kernel.mount(image, options: "ro,loop,noload")
      var files: [String: String] = [:]
      for name in try FileManager.default.contentsOfDirectory(atPath: mountPoint + "/files") {
        files[name] = try sha256(mountPoint + "/files/" + name)
      }
      #expect(files == point.files, "files at \(point.name)")
      #expect(try sqlite("file:\(mountPoint)/app.db?immutable=1", "SELECT COUNT(*) FROM item") == String(point.rows))
      try kernel.unmount()
    }
  }
}
