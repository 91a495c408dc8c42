import Foundation
import ReelCodec
import ReelCore
import ReelJournal
import ReelTestSupport
import Testing

/// A store folder of its own for the built `reel` to run against.
final class ReelSandbox {
  private let folder = TemporaryDirectory("reel-cli")
  var root: String { folder.path }
  var store: String { root + "/store" }

  @discardableResult
  func reel(_ arguments: String...) throws -> CommandResult {
    try run(reelExecutable, arguments)
  }

  /// Runs `executable` with the store set; `environment` adds variables (nil removes one)
  /// and `input`, when given, is its standard input.
  func run(
    _ executable: String, _ arguments: [String], environment changes: [String: String?] = [:],
    input: [UInt8]? = nil
  ) throws -> CommandResult {
    try ReelTestSupport.run(
      executable, arguments, environment: changes.merging(["REEL_STORE": store]) { first, _ in first }, input: input)
  }

  func json(_ text: String) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(text.utf8)) as! [String: Any]
  }
}

@Suite struct CLITests {
  @Test func helpAndVersion() throws {
    let sandbox = ReelSandbox()
    let help = try sandbox.reel("--help")
    #expect(help.status == 0)
    for command in ["init", "volume", "journal", "timeline", "restore"] {
      #expect(help.stdout.contains(command), "help lists \(command)")
    }
    let version = try sandbox.reel("--version")
    #expect(version.status == 0 && version.stdout.hasPrefix("0."))
  }

  /// libcurl, GnuTLS and libarchive (with the ~35 libraries they pull in) are opened by the
  /// commands that use them, not mapped at every start (CLazyLibrary; docs/architecture.md,
  /// "Start-up").
  @Test func startUpLoadsNoLibraryOnlySomeCommandsUse() throws {
    // The dynamic loader lists what it would load and stops (what ldd does).
    let listing = try run(reelExecutable, [], environment: ["LD_TRACE_LOADED_OBJECTS": "1"])
    #expect(listing.status == 0)
    #expect(listing.stdout.contains("libsqlite3"), "the listing names what is loaded: \(listing.output)")
    for library in ["libcurl", "libgnutls", "libarchive", "libnghttp2", "libkrb5"] {
      #expect(!listing.stdout.contains(library), "\(library) is loaded at start-up: \(listing.stdout)")
    }
  }

  @Test func initCreatesACatalogOnceAndRefusesAForeignFolder() throws {
    let sandbox = ReelSandbox()
    let first = try sandbox.reel("init")
    #expect(first.status == 0 && first.stdout.contains("Created Reel store"))
    #expect(FileManager.default.fileExists(atPath: sandbox.store + "/catalog.sqlite"))
    let second = try sandbox.reel("init")
    #expect(second.status == 0 && second.stdout.contains("nothing changed"))
    let foreign = sandbox.root + "/foreign"
    try FileManager.default.createDirectory(atPath: foreign, withIntermediateDirectories: true)
    _ = FileManager.default.createFile(atPath: foreign + "/precious.txt", contents: Data("keep".utf8))
    let refused = try sandbox.reel("init", "--store", foreign)
    #expect(refused.status != 0 && refused.stderr.contains("not an empty folder or a Reel store"))
    #expect(FileManager.default.contents(atPath: foreign + "/precious.txt") == Data("keep".utf8))
  }

  @Test func commandsOnAMissingStoreOrVolumeSayWhatToDo() throws {
    let sandbox = ReelSandbox()
    let noStore = try sandbox.reel("volume", "list")
    #expect(noStore.status == 66 && noStore.stderr.contains("reel init"))
    try sandbox.reel("init")
    let noVolume = try sandbox.reel("journal", "dump", "ghost")
    #expect(noVolume.status == 66 && noVolume.stderr.contains("no volume named \"ghost\""))
    let badName = try sandbox.reel("volume", "create", "../evil", "--size", "1M")
    #expect(badName.status == 64 && badName.stderr.contains("invalid volume name"))
    let badSize = try sandbox.reel("volume", "create", "v", "--size", "lots")
    #expect(badSize.status == 64 && badSize.stderr.contains("cannot read \"lots\" as a size"))
    let unaligned = try sandbox.reel("volume", "create", "v", "--size", "1000")
    #expect(unaligned.status == 64 && unaligned.stderr.contains("multiple of the block size"))
    let oddStoreBlock = try sandbox.reel("volume", "create", "v", "--size", "1M", "--store-block-size", "100K")
    #expect(oddStoreBlock.status == 64 && oddStoreBlock.stderr.contains("store block size 102400 is not supported"))
    #expect(try sandbox.reel("volume", "create", "v", "--size", "1M", "--store-block-size", "1M").status == 0)
    let list = try sandbox.reel("volume", "list", "--json")
    let volumes = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]]
    #expect(volumes?.first?["store_block_size"] as? Int == 1 << 20)
  }

  /// Writes a history straight into a volume's journal, then checks dump, timeline and
  /// restore at every bookmark against a model image kept in the test.
  @Test func restoreAtEveryBookmarkMatchesAModel() throws {
    let sandbox = ReelSandbox()
    try sandbox.reel("init")
    let size = 1 << 20
    // A base image with content, so restore must start from it, not from zeros.
    let basePath = sandbox.root + "/base.img"
    var model = (0..<size).map { UInt8(truncatingIfNeeded: $0 / 4096 &+ 1) }
    _ = FileManager.default.createFile(atPath: basePath, contents: Data(model))
    #expect(try sandbox.reel("volume", "create", "disk", "--from", basePath).status == 0)
    let list = try sandbox.reel("volume", "list", "--json")
    let volumes = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as! [[String: Any]]
    let volume = VolumeID(string: volumes[0]["id"] as! String)!

    let (writer, _) = try JournalWriter.open(directory: sandbox.store + "/volumes/disk/journal", volume: volume)
    var generator = SystemRandomNumberGenerator()
    var expected: [String: [UInt8]] = [:]
    for step in 0..<5 {
      for _ in 0..<20 {
        let offset = Int.random(in: 0..<(size / 512), using: &generator) * 512
        let length = min(size - offset, 512 * Int.random(in: 1...32, using: &generator))
        switch Int.random(in: 0..<4, using: &generator) {
        case 0:
          try writer.append(.trim(offset: UInt64(offset), length: UInt64(length)))
          model.replaceSubrange(offset..<(offset + length), with: repeatElement(0, count: length))
        case 1:
          try writer.append(.writeZeroes(offset: UInt64(offset), length: UInt64(length)))
          model.replaceSubrange(offset..<(offset + length), with: repeatElement(0, count: length))
        default:
          let data = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
          try writer.append(.write(offset: UInt64(offset), data: data))
          model.replaceSubrange(offset..<(offset + length), with: data)
        }
      }
      try writer.append(.flush)
      try writer.append(.bookmark("step \(step)"))
      expected["step \(step)"] = model
    }
    try writer.close()

    let timeline = try sandbox.json(try sandbox.reel("timeline", "disk", "--json").stdout)
    #expect((timeline["bookmarks"] as! [[String: Any]]).count == 5)
    #expect(timeline["last_seq"] as? Int == 5 * 22)
    let dump = try sandbox.reel("journal", "dump", "disk", "--json", "--from", "100")
    let lines = dump.stdout.split(separator: "\n")
    #expect(lines.count == 11)
    #expect(try sandbox.json(String(lines.last!))["label"] as? String == "step 4")
    #expect(try sandbox.reel("journal", "verify", "disk").stdout.contains("OK"))

    for (label, image) in expected {
      let output = sandbox.root + "/\(label).img"
      let run = try sandbox.reel("restore", "disk", "--at", label, "--output", output)
      #expect(run.status == 0, "\(run.stderr)")
      #expect(FileManager.default.contents(atPath: output) == Data(image), "restore at \(label)")
    }
    // The volume as created, before the first record: the base image.
    let atCreation = sandbox.root + "/created.img"
    #expect(try sandbox.reel("restore", "disk", "--at", "seq:0", "--output", atCreation).status == 0)
    #expect(FileManager.default.contents(atPath: atCreation) == FileManager.default.contents(atPath: basePath))
  }

  @Test func restoreRefusesBadPointsAndKeepsExistingFiles() throws {
    let sandbox = ReelSandbox()
    try sandbox.reel("init")
    try sandbox.reel("volume", "create", "disk", "--size", "64K")
    let unknown = try sandbox.reel("restore", "disk", "--at", "nope", "--output", sandbox.root + "/x.img")
    #expect(unknown.status == 66 && unknown.stderr.contains("no bookmark \"nope\""))
    let early = try sandbox.reel("restore", "disk", "--at", "2001-01-01T00:00:00Z", "--output", sandbox.root + "/x.img")
    #expect(early.status == 66 && early.stderr.contains("before volume disk existed"))
    #expect(!FileManager.default.fileExists(atPath: sandbox.root + "/x.img"))
    let existing = sandbox.root + "/keep.img"
    _ = FileManager.default.createFile(atPath: existing, contents: Data("mine".utf8))
    let refused = try sandbox.reel("restore", "disk", "--at", "latest", "--output", existing)
    #expect(refused.status == 73)
    #expect(FileManager.default.contents(atPath: existing) == Data("mine".utf8))
    #expect(try sandbox.reel("restore", "disk", "--at", "latest", "--output", existing, "--force").status == 0)
    #expect(FileManager.default.contents(atPath: existing) == Data(count: 65536))
  }
}
