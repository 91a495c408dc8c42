import Foundation
import ReelCore
import ReelJournal
import ReelTestSupport
import Testing

/// `reel bisect --file` on a volume made from an ext4 image and then written through
/// `reel serve` by qemu-io, one NBD write per journal record: the test writes the change
/// itself, so it knows the exact seq bisect must find.
@Suite(.serialized) struct BisectFileTests {
  /// A store with volume `vm`: an 80 MiB image holding a 64 MiB ext4 (4 KiB blocks) made
  /// from a folder with /target.txt (4096 × "A") and /other.txt, so the last 16 MiB of the
  /// volume are outside the file system and writes there change no file.
  struct Volume {
    let store: TestStore
    /// Byte offset of /target.txt's only data block in the volume.
    let targetOffset: UInt64
    let noise: UInt64 = 70 << 20

    init() throws {
      store = try TestStore()
      let folder = store.directory.path
      try FileManager.default.createDirectory(atPath: folder + "/source/mail/cur", withIntermediateDirectories: true)
      try Data(repeating: UInt8(ascii: "A"), count: 4096).write(to: URL(fileURLWithPath: folder + "/source/target.txt"))
      try Data("never changes\n".utf8).write(to: URL(fileURLWithPath: folder + "/source/other.txt"))
      let image = folder + "/vm.img"
      try runChecked(try tool("truncate"), ["-s", "80M", image])
      try runChecked(try tool("mkfs.ext4"), ["-q", "-F", "-b", "4096", "-d", folder + "/source", image, "64M"])
      let mapped = try runChecked(try tool("debugfs"), ["-R", "bmap /target.txt 0", image]).stdout
      let block = try #require(UInt64(mapped.trimmingCharacters(in: .whitespacesAndNewlines)), "bmap: \(mapped)")
      targetOffset = block * 4096
      try #require(store.reelCommand(["volume", "create", "vm", "--from", image]).succeeded)
    }

    /// qemu-io's `write` of 4 KiB of `pattern` at `offset`.
    func write(_ pattern: UInt8, at offset: UInt64) -> String {
      "write -P 0x\(String(pattern, radix: 16)) \(offset) 4096"
    }

    /// `count` writes outside the file system, each to its own block.
    func noise(_ count: Int, from first: Int = 0) -> [String] {
      (first..<first + count).map { write(0x5a, at: noise + UInt64($0 % 2048) * 4096) }
    }

    /// Serves the volume and sends `commands` through one qemu-io session, then a flush.
    func serveAndWrite(_ commands: [String]) throws {
      let server = try ServerProcess(store: store, volumes: ["vm"])
      let script = (commands + ["flush"]).joined(separator: "\n") + "\n"
      // Writeback: no FUA on each write, so the writes go as fast as the server takes them.
      let written = try run(
        try tool("qemu-io"), ["-t", "writeback", "-f", "raw", store.uri("vm")], input: Array(script.utf8))
      try #require(written.succeeded && !written.stdout.contains("failed"), "qemu-io: \(written.output)")
      #expect(server.stop() == 0)
    }

    /// The records that changed the volume, in order.
    func changes() throws -> [JournalRecord] {
      try store.records("vm").filter { $0.kind == .write || $0.kind == .trim || $0.kind == .writeZeroes }
    }

    func bisect(_ arguments: [String]) throws -> [String: Any] {
      let result = try store.reelCommand(["bisect", "vm"] + arguments + ["--json"])
      try #require(result.succeeded, "\(result.output)")
      return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    }
  }

  /// ⌈log₂(records)⌉ + 2, the issue's bound.
  func bound(_ records: Int) -> Int { Int(log2(Double(records)).rounded(.up)) + 2 }

  @Test func findsTheExactRecordThatChangedTheFile() throws {
    let volume = try Volume()
    try volume.serveAndWrite(
      volume.noise(150) + [volume.write(0x42, at: volume.targetOffset)] + volume.noise(90, from: 150))
    let changes = try volume.changes()
    let index = try #require(changes.firstIndex { $0.offset == volume.targetOffset })
    let changeSeq = changes[index].seq
    let beforeSeq = changes[index - 1].seq
    #expect(changes.count == 241)

    let report = try volume.bisect(["--from", "seq:0", "--to", "latest", "--file", "/target.txt"])
    #expect(report["changed"] as? Bool == true)
    let after = try #require(report["after"] as? [String: Any])
    let before = try #require(report["before"] as? [String: Any])
    #expect(after["seq"] as? Int == Int(changeSeq), "\(report)")
    #expect(before["seq"] as? Int == Int(beforeSeq), "\(report)")
    #expect(before["same"] as? Bool == true && after["same"] as? Bool == false)
    #expect(report["records"] as? Int == changes.count)
    let evaluations = try #require(report["evaluations"] as? [[String: Any]])
    #expect(evaluations.count <= bound(changes.count), "\(evaluations.count) evaluations for \(changes.count) records")
    #expect(report["maximum_evaluations"] as? Int == bound(changes.count))
    // Each evaluation's verdict agrees with the content the file really had there.
    for evaluation in evaluations {
      let seq = try #require(evaluation["seq"] as? Int)
      #expect(evaluation["same"] as? Bool == (seq < Int(changeSeq)), "at seq \(seq)")
    }
    let commands = try #require(report["commands"] as? [String])
    #expect(
      commands == [
        "reel restore vm --at seq:\(beforeSeq) --output FILE",
        "reel files get vm --at seq:\(beforeSeq) /target.txt --to DIR",
      ])

    // The points it names show the two contents.
    let old = try volume.store.reelCommand(["files", "cat", "vm", "/target.txt", "--at", "seq:\(beforeSeq)"])
    #expect(old.stdout == String(repeating: "A", count: 4096))
    let new = try volume.store.reelCommand(["files", "cat", "vm", "/target.txt", "--at", "seq:\(changeSeq)"])
    #expect(new.stdout == String(repeating: "B", count: 4096))

    // The listing: one line per evaluation as it happens, then before, after and commands.
    let text = try volume.store.reelCommand(["bisect", "vm", "--from", "seq:0", "--file", "/target.txt"])
    #expect(text.succeeded, "\(text.output)")
    let lines = text.stdout.split(separator: "\n").map(String.init)
    let listed = lines.filter { $0.wholeMatch(of: /\s*[0-9]+  seq:[0-9]+  .*/) != nil }
    #expect(listed.count == evaluations.count, "\(text.stdout)")
    #expect(listed.first?.contains("(--from)") == true, "\(text.stdout)")
    #expect(
      lines.first?.hasPrefix("Bisecting content of /target.txt in volume vm from seq:0 (") == true
        && lines.first?.hasSuffix(
          "\(changes.count) records changed the volume, at most \(bound(changes.count)) evaluations")
          == true,
      "\(text.stdout)")
    #expect(lines.contains { $0.hasPrefix("Just before: seq:\(beforeSeq) ") }, "\(text.stdout)")
    #expect(lines.contains { $0.hasPrefix("Just after:  seq:\(changeSeq) ") }, "\(text.stdout)")
    #expect(lines.contains("  reel files get vm --at seq:\(beforeSeq) /target.txt --to DIR"), "\(text.stdout)")
  }

  @Test func noChangeIsSaidAndAChangeBackIsNotSeen() throws {
    let volume = try Volume()
    try volume.serveAndWrite(
      volume.noise(40) + [volume.write(0x42, at: volume.targetOffset)] + volume.noise(40, from: 40)
        + [volume.write(0x41, at: volume.targetOffset)] + volume.noise(40, from: 80))
    let other = try volume.bisect(["--from", "seq:0", "--file", "/other.txt"])
    #expect(other["changed"] as? Bool == false)
    #expect(other["after"] is NSNull && other["before"] is NSNull, "\(other)")
    #expect((other["evaluations"] as? [Any])?.count == 2)
    // A→B→A: the ends agree, so bisect reports no change (the documented limit).
    let back = try volume.store.reelCommand(["bisect", "vm", "--from", "seq:0", "--file", "/target.txt"])
    #expect(back.succeeded, "\(back.output)")
    #expect(back.stdout.contains("No change found"), "\(back.stdout)")
    #expect(back.stdout.contains("change back"), "\(back.stdout)")
  }

  @Test func aPointWhereTheFileSystemCannotBeReadIsAnAnswer() throws {
    let volume = try Volume()
    // Zeros over the first block (the superblock at 1024): no file system from there on.
    try volume.serveAndWrite(volume.noise(60) + [volume.write(0, at: 0)] + volume.noise(60, from: 60))
    let changes = try volume.changes()
    let wiped = try #require(changes.first { $0.offset == 0 }).seq
    let report = try volume.bisect(["--from", "seq:0", "--file", "/target.txt"])
    let after = try #require(report["after"] as? [String: Any], "\(report)")
    #expect(after["seq"] as? Int == Int(wiped))
    #expect(after["failed"] as? Bool == true)
    #expect((after["answer"] as? String)?.hasPrefix("error: ") == true, "\(after)")
    #expect((after["answer"] as? String)?.contains("seq") == false, "the place is in the listing, not the answer")
    #expect((report["evaluations"] as? [Any])?.count ?? 99 <= bound(changes.count))
    // At --from itself there is nothing to compare with: an error.
    let unreadableStart = try volume.store.reelCommand(
      ["bisect", "vm", "--from", "seq:\(wiped)", "--file", "/target.txt"])
    #expect(unreadableStart.status == 66, "\(unreadableStart.output)")
    #expect(unreadableStart.stderr.contains("at --from (seq \(wiped)"), "\(unreadableStart.stderr)")
  }

  @Test func badInputIsAClearError() throws {
    let volume = try Volume()
    try volume.serveAndWrite(volume.noise(5))
    let store = volume.store
    let cases: [([String], Int32, String)] = [
      (["bisect", "vm", "--from", "seq:0"], 64, "give exactly one question"),
      (["bisect", "vm", "--from", "seq:0", "--file", "/a", "--sql", "SELECT 1", "--db", "/x"], 64, "exactly one"),
      (["bisect", "vm", "--from", "seq:0", "--sql", "SELECT 1"], 64, "--sql needs --db"),
      (["bisect", "vm", "--from", "seq:0", "--pg", "SELECT 1"], 64, "--pg needs --pgdata"),
      (["bisect", "vm", "--from", "latest", "--to", "seq:0", "--file", "/a"], 64, "is after --to"),
      (["bisect", "vm", "--from", "2001-01-01T00:00:00Z", "--file", "/a"], 66, "before volume vm existed"),
      (["bisect", "nope", "--from", "seq:0", "--file", "/a"], 66, "nope"),
      (["bisect", "vm", "--from", "2026-13-45", "--file", "/a"], 64, "not a valid time"),
    ]
    for (arguments, status, words) in cases {
      let result = try store.reelCommand(arguments)
      #expect(result.status == status, "\(arguments): \(result.output)")
      #expect(result.stderr.contains(words), "\(arguments): \(result.stderr)")
    }
    // A data directory that is not there at --from: an error, and no copy left behind.
    let scratch = store.directory.path + "/scratch"
    try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
    let pg = try store.reelCommand(
      ["bisect", "vm", "--from", "seq:0", "--pg", "SELECT 1", "--pgdata", "/nope", "--scratch", scratch])
    #expect(pg.status == 66, "\(pg.output)")
    #expect(pg.stderr.contains("at --from (seq 0"), "\(pg.stderr)")
    #expect(try FileManager.default.contentsOfDirectory(atPath: scratch).isEmpty)
  }
}
