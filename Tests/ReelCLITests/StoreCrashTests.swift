import Foundation
import ReelCodec
import ReelCore
import ReelJournal
import ReelTestSupport
import Testing

/// `reel ingest` and `reel prune` killed with SIGKILL at random moments, then run again:
/// the store checks clean, reading every chunk, and restores still match.
@Suite struct StoreCrashTests {
  func makeHistory(_ sandbox: ReelSandbox, megabytes: Int) throws -> (model: [UInt8], bookmarks: [String: [UInt8]]) {
    try sandbox.reel("init")
    let size = megabytes << 20
    try sandbox.reel("volume", "create", "disk", "--size", "\(megabytes)M")
    let list = try sandbox.reel("volume", "list", "--json")
    let volumes = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as! [[String: Any]]
    let volume = VolumeID(string: volumes[0]["id"] as! String)!
    let (writer, _) = try JournalWriter.open(directory: sandbox.store + "/volumes/disk/journal", volume: volume)
    var model = [UInt8](repeating: 0, count: size)
    var bookmarks: [String: [UInt8]] = [:]
    var generator = SystemRandomNumberGenerator()
    for round in 0..<3 {
      var offset = 0
      while offset < size {
        let length = min(size - offset, 256 * 1024)
        let data = (0..<length).map { UInt8(truncatingIfNeeded: ($0 / 4096) &+ round &* 7 &+ offset / 65536) }
        try writer.append(.write(offset: UInt64(offset), data: data))
        model.replaceSubrange(offset..<(offset + length), with: data)
        offset += length
      }
      for _ in 0..<200 {
        let at = Int.random(in: 0..<(size / 4096), using: &generator) * 4096
        let data = (0..<4096).map { _ in UInt8.random(in: 0...255, using: &generator) }
        try writer.append(.write(offset: UInt64(at), data: data))
        model.replaceSubrange(at..<(at + 4096), with: data)
      }
      try writer.append(.bookmark("round \(round)"))
      bookmarks["round \(round)"] = model
    }
    try writer.close()
    return (model, bookmarks)
  }

  func killAfter(_ milliseconds: Int, _ arguments: [String], sandbox: ReelSandbox) throws -> Bool {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: reelExecutable)
    process.arguments = arguments
    var environment = ProcessInfo.processInfo.environment
    environment["REEL_STORE"] = sandbox.store
    process.environment = environment
    process.standardOutput = FileHandle.nullDevice
    process.standardError = FileHandle.nullDevice
    try process.run()
    defer { process.waitUntilExit() }
    usleep(UInt32(milliseconds * 1000))
    let wasRunning = process.isRunning
    kill(process.processIdentifier, SIGKILL)
    return wasRunning
  }

  @Test func killedIngestAndPruneLeaveAConsistentStore() throws {
    let sandbox = ReelSandbox()
    let (model, bookmarks) = try makeHistory(sandbox, megabytes: 8)
    var interrupted = 0
    for delay in [5, 30, 80, 200, 400] {
      if try killAfter(delay, ["ingest", "disk"], sandbox: sandbox) { interrupted += 1 }
    }
    #expect(interrupted > 0, "no kill landed while ingest was running")
    #expect(try sandbox.reel("ingest", "disk").status == 0)
    let check = try sandbox.reel("store", "check", "--read-data")
    #expect(check.status == 0, "\(check.stdout)")
    for (label, image) in bookmarks {
      let output = sandbox.root + "/\(label).img"
      #expect(try sandbox.reel("restore", "disk", "--at", label, "--output", output).status == 0)
      #expect(FileManager.default.contents(atPath: output) == Data(image), "restore at \(label)")
      try FileManager.default.removeItem(atPath: output)
    }
    for delay in [2, 10, 40] {
      _ = try killAfter(delay, ["prune", "disk", "--keep-within", "0s", "--keep-bookmarks"], sandbox: sandbox)
    }
    #expect(try sandbox.reel("prune", "disk", "--keep-within", "0s", "--keep-bookmarks").status == 0)
    #expect(try sandbox.reel("store", "check", "--read-data").status == 0)
    let latest = sandbox.root + "/latest.img"
    #expect(try sandbox.reel("restore", "disk", "--at", "latest", "--output", latest).status == 0)
    #expect(FileManager.default.contents(atPath: latest) == Data(model))
    let oldest = sandbox.root + "/round0.img"
    #expect(try sandbox.reel("restore", "disk", "--at", "round 0", "--output", oldest).status == 0)
    #expect(FileManager.default.contents(atPath: oldest) == Data(bookmarks["round 0"]!))
  }

  @Test func storeCheckNamesDamageAndExitsWithTheCorruptionCode() throws {
    let sandbox = ReelSandbox()
    _ = try makeHistory(sandbox, megabytes: 1)
    #expect(try sandbox.reel("ingest", "disk").status == 0)
    let packs = sandbox.store + "/packs"
    let file = try #require(FileManager.default.subpathsOfDirectory(atPath: packs).first { $0.hasSuffix(".pack") })
    var bytes = Array(FileManager.default.contents(atPath: packs + "/" + file)!)
    bytes[bytes.count / 2] ^= 1
    _ = FileManager.default.createFile(atPath: packs + "/" + file, contents: Data(bytes))
    let check = try sandbox.reel("store", "check", "--read-data")
    #expect(check.status == 65)
    #expect(check.stdout.contains("DAMAGE: chunk"))
    #expect(check.stdout.contains("affects volume disk bytes"))
    let json = try sandbox.reel("store", "check", "--read-data", "--json")
    #expect(try sandbox.json(json.stdout)["clean"] as? Bool == false)
  }
}
