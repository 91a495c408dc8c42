import Foundation
import ReelCore
import ReelJournal
import ReelTestSupport
import Testing

/// `reel bisect --sql` on a volume made from an ext4 image holding a SQLite database, then
/// overwritten through `reel serve` by a second image (nbdcopy) in which the database had
/// its EU customers deleted: bisect must name the record that wrote the database's pages.
@Suite(.serialized) struct BisectSQLTests {
  static let question = "SELECT count(*) FROM customer WHERE region = 'EU'"

  /// A 64 MiB ext4 image of `folder`; one UUID and hash seed, so two images of folders that
  /// differ only in a file's bytes differ only there.
  func makeImage(_ image: String, from folder: String) throws {
    try runChecked(
      try tool("mkfs.ext4"),
      [
        "-q", "-F", "-b", "4096", "-U", "6f0c3c36-3c5a-4d53-9a57-0b8f7d5c2a11", "-E",
        "hash_seed=1b4e28ba-2fa1-11d2-883f-0016d3cca427", "-d", folder, image, "64M",
      ])
  }

  @Test func findsTheRecordThatWroteTheDelete() throws {
    let store = try TestStore()
    let folder = store.directory.path
    let sqlite3 = try tool("sqlite3")
    try FileManager.default.createDirectory(atPath: folder + "/v1", withIntermediateDirectories: true)
    let customers = (1...300).map { "(\($0), '\($0 % 3 == 0 ? "US" : "EU")')" }.joined(separator: ", ")
    try runChecked(
      sqlite3,
      [
        folder + "/v1/shop.db",
        "CREATE TABLE customer(id INTEGER PRIMARY KEY, region TEXT); INSERT INTO customer VALUES \(customers);",
      ])
    try FileManager.default.createDirectory(atPath: folder + "/v2", withIntermediateDirectories: true)
    try FileManager.default.copyItem(atPath: folder + "/v1/shop.db", toPath: folder + "/v2/shop.db")
    try runChecked(sqlite3, [folder + "/v2/shop.db", "DELETE FROM customer WHERE region = 'EU';"])
    try makeImage(folder + "/v1.img", from: folder + "/v1")
    try makeImage(folder + "/v2.img", from: folder + "/v2")
    let blocks = try runChecked(try tool("debugfs"), ["-R", "blocks /shop.db", folder + "/v1.img"]).stdout
    let databaseBlocks = Set(blocks.split(whereSeparator: \.isWhitespace).compactMap { UInt64($0) })
    try #require(!databaseBlocks.isEmpty, "debugfs blocks: \(blocks)")
    try #require(store.reelCommand(["volume", "create", "vm", "--from", folder + "/v1.img"]).succeeded)
    let server = try ServerProcess(store: store, volumes: ["vm"])
    try runChecked(try tool("nbdcopy"), ["--flush", folder + "/v2.img", store.uri("vm")])
    #expect(server.stop() == 0)

    let result = try store.reelCommand(
      ["bisect", "vm", "--from", "seq:0", "--sql", Self.question, "--db", "/shop.db", "--json"])
    try #require(result.succeeded, "\(result.output)")
    let report = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
    let after = try #require(report["after"] as? [String: Any], "\(report)")
    let before = try #require(report["before"] as? [String: Any])
    let afterSeq = try #require(after["seq"] as? Int)
    let beforeSeq = try #require(before["seq"] as? Int)
    #expect(before["answer"] as? String == "count(*) = 200", "\(before)")
    #expect(after["answer"] as? String == "count(*) = 0", "\(after)")
    // Neighbours among the records that changed the volume, and the later one wrote
    // pages of the database.
    let changes = try store.records("vm").filter { $0.kind == .write || $0.kind == .trim || $0.kind == .writeZeroes }
    let index = try #require(changes.firstIndex { $0.seq == Seq(afterSeq) })
    #expect(index == 0 ? beforeSeq == 0 : changes[index - 1].seq == Seq(beforeSeq))
    let record = changes[index]
    let written = Set((record.offset / 4096)..<((record.offset + record.length + 4095) / 4096))
    #expect(!written.isDisjoint(with: databaseBlocks), "seq \(afterSeq) wrote no block of /shop.db")
    let records = changes.count
    let evaluations = try #require(report["evaluations"] as? [Any]).count
    #expect(evaluations <= Int(log2(Double(records)).rounded(.up)) + 2, "\(evaluations) for \(records) records")
    let commands = try #require(report["commands"] as? [String])
    #expect(
      commands.last
        == "reel sql vm --at seq:\(beforeSeq) --db /shop.db 'SELECT count(*) FROM customer WHERE region = '\\''EU'\\'''",
      "\(commands)")
    // The command printed for "as of just before" runs and answers as bisect said.
    let asBefore = try store.reelCommand(["sql", "vm", "--at", "seq:\(beforeSeq)", "--db", "/shop.db", Self.question])
    #expect(asBefore.stdout.contains("200"), "\(asBefore.output)")

    // A database that is not there at --from: nothing to compare with.
    let missing = try store.reelCommand(
      ["bisect", "vm", "--from", "seq:0", "--sql", Self.question, "--db", "/nope.db"])
    #expect(missing.status == 66, "\(missing.output)")
    #expect(missing.stderr.contains("at --from (seq 0"), "\(missing.stderr)")
    // SQL that writes is refused at --from too.
    let writing = try store.reelCommand(
      ["bisect", "vm", "--from", "seq:0", "--sql", "DELETE FROM customer", "--db", "/shop.db"])
    #expect(writing.status == 64, "\(writing.output)")
  }
}
