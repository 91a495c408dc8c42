import Foundation
import ReelCore
import ReelIO
import ReelJournal
import ReelTestSupport
import Testing

/// A volume with a history written straight into its journal, and the model of its bytes
/// at each bookmark; used through the real `reel` binary.
final class CloneSandbox {
  let store: TestStore
  var model: [UInt8]
  var atBookmark: [String: [UInt8]] = [:]
  let size: Int

  init(megabytes: Int = 4) throws {
    store = try TestStore()
    size = megabytes << 20
    model = [UInt8](repeating: 0, count: size)
    try expectSuccess(["volume", "create", "db", "--size", "\(megabytes)M", "--store-block-size", "64K"])
  }

  @discardableResult
  func expectSuccess(_ arguments: [String]) throws -> CommandResult {
    let result = try store.reelCommand(arguments)
    try #require(result.succeeded, "reel \(arguments.joined(separator: " ")): \(result.stderr)")
    return result
  }

  /// Blocks only ever written whole at the end of `writeHistory`.
  static let settledBlocks = 4

  /// Whole-block writes, then small writes all over (partial versions), then a bookmark.
  /// `settle`: end with the whole-block writes of the first `settledBlocks` blocks.
  func writeHistory(
    volume: String, model: inout [UInt8], rounds: Int, bookmark: String? = nil, settle: Bool = true
  ) throws {
    let descriptor = try store.descriptor(volume)
    let (writer, _) = try JournalWriter.open(directory: store.layout.journalDirectory(volume), volume: descriptor.id)
    var generator = SystemRandomNumberGenerator()
    for round in 0..<rounds {
      for _ in 0..<8 {
        let offset = Int.random(in: Self.settledBlocks..<(size / 65536), using: &generator) * 65536
        let data = (0..<65536).map { UInt8(truncatingIfNeeded: $0 / 512 &+ round &* 31 &+ offset / 65536) }
        try writer.append(.write(offset: UInt64(offset), data: data))
        model.replaceSubrange(offset..<(offset + 65536), with: data)
      }
      for _ in 0..<100 {
        let at = Int.random(in: 0..<(size / 4096), using: &generator) * 4096
        let data = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) }
        try writer.append(.write(offset: UInt64(at), data: data))
        model.replaceSubrange(at..<(at + 4096), with: data)
      }
    }
    // The first blocks end as one whole-block write each, which no later whole-block write
    // replaces: their state is a single full version, so promote can share its chunk.
    for block in 0..<(settle ? Self.settledBlocks : 0) {
      let data = (0..<65536).map { UInt8(truncatingIfNeeded: $0 / 256 &+ block &+ rounds &* 7) }
      try writer.append(.write(offset: UInt64(block * 65536), data: data))
      model.replaceSubrange((block * 65536)..<((block + 1) * 65536), with: data)
    }
    if let bookmark { try writer.append(.bookmark(bookmark)) }
    try writer.close()
  }

  func restore(_ volume: String, at point: String) throws -> [UInt8] {
    let output = store.directory.path + "/restore-\(UUID().uuidString).img"
    defer { unlink(output) }
    try expectSuccess(["restore", volume, "--at", point, "--output", output])
    return Array(FileManager.default.contents(atPath: output) ?? Data())
  }

  func json(_ arguments: [String]) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(try expectSuccess(arguments).stdout.utf8))
  }

  func checkClean() throws {
    let check = try store.reelCommand(["store", "check", "--read-data"])
    #expect(check.succeeded, "store check: \(check.stdout) \(check.stderr)")
  }

  var volumeFolders: [String] {
    ((try? FileManager.default.contentsOfDirectory(atPath: store.layout.volumesDirectory)) ?? []).sorted()
  }
}

@Suite struct CloneCommandTests {
  /// `reel clone` at a bookmark reads what `reel restore` of the origin gives there; the
  /// clone shows in `volume list` and `timeline`; the origin cannot be deleted while the
  /// clone reads it; promote makes the clone independent (its history intact), rename
  /// keeps it, and then the origin can go.
  @Test func cloneRestorePromoteRenameDelete() throws {
    let sandbox = try CloneSandbox()
    var origin = sandbox.model
    try sandbox.writeHistory(volume: "db", model: &origin, rounds: 3, bookmark: "before upgrade")
    let atBookmark = origin
    try sandbox.writeHistory(volume: "db", model: &origin, rounds: 2)

    let clone =
      try sandbox.json(["clone", "db", "--at", "before upgrade", "--as", "db-test", "--json"]) as! [String: Any]
    let point = clone["origin_seq"] as! Int
    #expect(try sandbox.restore("db", at: "before upgrade") == atBookmark)
    #expect(try sandbox.restore("db-test", at: "latest") == atBookmark)
    #expect(try sandbox.restore("db-test", at: "seq:\(point)") == atBookmark)

    let list = try sandbox.json(["volume", "list", "--json"]) as! [[String: Any]]
    let db = list.first { $0["name"] as? String == "db" }!
    let test = list.first { $0["name"] as? String == "db-test" }!
    #expect((db["clones"] as! [[String: Any]]).map { $0["volume"] as! String } == ["db-test"])
    #expect((test["origin"] as! [String: Any])["volume"] as? String == "db")
    #expect((test["origin"] as! [String: Any])["seq"] as? Int == point)
    let timeline = try sandbox.json(["timeline", "db-test", "--json"]) as! [String: Any]
    #expect((timeline["origin"] as! [String: Any])["volume"] as? String == "db")
    let text = try sandbox.expectSuccess(["timeline", "db"]).stdout
    #expect(text.contains("Clones: cloned as db-test (seq \(point))"), "\(text)")

    // Points before the clone existed are the origin's.
    let early = try sandbox.store.reelCommand([
      "restore", "db-test", "--at", "seq:\(point - 1)", "--output", sandbox.store.directory.path + "/early.img",
    ])
    #expect(!early.succeeded)
    #expect(early.stderr.contains("db-test was cloned from db at seq \(point)"), "\(early.stderr)")

    // The origin cannot be deleted while the clone reads it.
    let refused = try sandbox.store.reelCommand(["volume", "delete", "db", "--yes", "--force"])
    #expect(!refused.succeeded)
    #expect(refused.stderr.contains("db-test (at seq \(point))"), "\(refused.stderr)")
    #expect(sandbox.volumeFolders == ["db", "db-test"])

    // The clone's own writes, then promote: its whole history reads the same afterwards.
    var cloneModel = atBookmark
    // Not settled: the clone's blocks 0..<settledBlocks keep reading the origin's.
    try sandbox.writeHistory(volume: "db-test", model: &cloneModel, rounds: 1, bookmark: "tested", settle: false)
    let promote = try sandbox.json(["volume", "promote", "db-test", "--json"]) as! [String: Any]
    #expect(promote["blocks"] as! Int > 0)
    #expect(promote["chunks_shared"] as! Int > 0)
    #expect(try sandbox.restore("db-test", at: "latest") == cloneModel)
    #expect(try sandbox.restore("db-test", at: "seq:\(point)") == atBookmark)
    let promoted = try sandbox.json(["timeline", "db-test", "--json"]) as! [String: Any]
    #expect(promoted["origin"] is NSNull)

    try sandbox.expectSuccess(["volume", "rename", "db-test", "db-new"])
    #expect(try sandbox.restore("db-new", at: "tested") == cloneModel)

    // Never sealed: refused without --force; a confirmation is needed without --yes.
    let unsealed = try sandbox.store.reelCommand(["volume", "delete", "db", "--yes"])
    #expect(!unsealed.succeeded)
    #expect(unsealed.stderr.contains("never sealed"), "\(unsealed.stderr)")
    let unconfirmed = try sandbox.store.reelCommand(["volume", "delete", "db", "--force"])
    #expect(!unconfirmed.succeeded)
    #expect(unconfirmed.stderr.contains("needs confirmation"), "\(unconfirmed.stderr)")
    #expect(sandbox.volumeFolders == ["db", "db-new"])
    let deleted = try sandbox.store.reelCommand(["volume", "delete", "db", "--yes", "--force"])
    #expect(deleted.succeeded, "\(deleted.stderr)")
    #expect(deleted.stderr.contains("never sealed"))
    #expect(sandbox.volumeFolders == ["db-new"])
    #expect(try sandbox.restore("db-new", at: "latest") == cloneModel)
    #expect(try sandbox.restore("db-new", at: "seq:\(point)") == atBookmark)
    try sandbox.checkClean()
  }

  /// Delete and rename are refused while the volume's journal is being written (as
  /// `reel serve` does), and change nothing.
  @Test func deleteAndRenameAreRefusedWhileTheJournalIsWritten() throws {
    let sandbox = try CloneSandbox(megabytes: 1)
    let descriptor = try sandbox.store.descriptor("db")
    let (writer, _) = try JournalWriter.open(
      directory: sandbox.store.layout.journalDirectory("db"), volume: descriptor.id)
    defer { try? writer.close() }
    for arguments in [["volume", "delete", "db", "--yes", "--force"], ["volume", "rename", "db", "other"]] {
      let result = try sandbox.store.reelCommand(arguments)
      #expect(!result.succeeded)
      #expect(result.stderr.contains("volume db is being served or written (pid \(getpid()))"), "\(result.stderr)")
    }
    #expect(sandbox.volumeFolders == ["db"])
    let badName = try sandbox.store.reelCommand(["volume", "rename", "db", "../x"])
    #expect(badName.stderr.contains("invalid volume name"))
  }

  /// `reel clone`, `reel volume promote` and `reel volume delete` killed with SIGKILL at
  /// random moments: each is done or not started — the volume is absent or whole, the
  /// store checks clean reading every chunk — and running it again finishes it.
  @Test func killedClonePromoteAndDeleteAreDoneOrNotStarted() throws {
    let sandbox = try CloneSandbox(megabytes: 8)
    var origin = sandbox.model
    try sandbox.writeHistory(volume: "db", model: &origin, rounds: 4, bookmark: "point")
    let atPoint = origin
    try sandbox.writeHistory(volume: "db", model: &origin, rounds: 1)
    try sandbox.expectSuccess(["ingest", "db"])
    func killed(after microseconds: UInt32, _ arguments: [String]) throws -> Bool {
      let child = try ChildProcess(sandbox.store.reel, arguments + ["--store", sandbox.store.root])
      usleep(microseconds)
      let running = child.isRunning
      child.signal(SIGKILL)
      child.wait()
      return running
    }
    var landed = 0
    for (index, delay) in [0, 2_000, 5_000, 10_000, 20_000, 40_000, 80_000].enumerated() {
      let name = "c\(index)"
      if try killed(after: UInt32(delay), ["clone", "db", "--at", "point", "--as", name]) { landed += 1 }
      try sandbox.checkClean()
      if sandbox.volumeFolders.contains(name) {
        #expect(try sandbox.restore(name, at: "latest") == atPoint, "clone \(name) killed after \(delay) µs")
      } else {
        try sandbox.expectSuccess(["clone", "db", "--at", "point", "--as", name])
      }
      // Promote: its writes go into one transaction.
      var cloneModel = atPoint
      try sandbox.writeHistory(volume: name, model: &cloneModel, rounds: 1)
      if try killed(after: UInt32(delay * 3), ["volume", "promote", name]) { landed += 1 }
      try sandbox.checkClean()
      #expect(try sandbox.restore(name, at: "latest") == cloneModel, "promote of \(name) killed after \(delay * 3) µs")
      let timeline = try sandbox.json(["timeline", name, "--json"]) as! [String: Any]
      if !(timeline["origin"] is NSNull) { try sandbox.expectSuccess(["volume", "promote", name]) }
      #expect(try sandbox.restore(name, at: "latest") == cloneModel)
      // Delete.
      if try killed(after: UInt32(delay * 2), ["volume", "delete", name, "--yes", "--force"]) { landed += 1 }
      try sandbox.checkClean()
      if sandbox.volumeFolders.contains(name) {
        #expect(try sandbox.restore(name, at: "latest") == cloneModel, "delete of \(name) killed after \(delay * 2) µs")
        try sandbox.expectSuccess(["volume", "delete", name, "--yes", "--force"])
      }
      #expect(!sandbox.volumeFolders.contains(name))
      try sandbox.checkClean()
    }
    #expect(landed > 0, "no kill landed while a command was running")
    #expect(try sandbox.restore("db", at: "point") == atPoint)
    #expect(try sandbox.restore("db", at: "latest") == origin)
    // A later clone settles what the killed runs left: no pending marks, no staging folders.
    try sandbox.expectSuccess(["clone", "db", "--at", "latest", "--as", "after"])
    #expect(sandbox.volumeFolders == ["after", "db"])
    let check = try sandbox.expectSuccess(["store", "check"]).stdout
    #expect(!check.contains("interrupted"), "\(check)")
  }
}
