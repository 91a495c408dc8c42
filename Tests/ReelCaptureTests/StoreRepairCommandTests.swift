import Foundation
import ReelCore
import ReelTestSupport
import Testing

/// `reel store repair` with the real binary: a damaged chunk whose journal record is gone
/// comes back from the sealed archive, with the key; without it the command says what it
/// could not repair and what it affects.
@Suite(.serialized) struct StoreRepairCommandTests {
  @Test func aDamagedChunkComesBackFromItsSealedArchive() throws {
    try damageSealRepair(writes: [], damaging: "SELECT pack, offset + length - 1 FROM chunk_named LIMIT 1")
  }

  /// A partial version's chunk is unnamed in the catalog (docs/store-format.md): repair
  /// learns its name from the archive's index, by the version that uses it.
  @Test func aDamagedUnnamedChunkComesBackFromItsSealedArchive() throws {
    try damageSealRepair(
      writes: ["write -P 0x5c 300k 4k"],
      damaging: "SELECT pack, offset + length - 1 FROM chunk_named WHERE hash IS NULL")
  }

  /// Writes 1 MiB and then `writes` through NBD, seals, flips the last byte of the chunk
  /// record `damaging` (SQL on the catalog) picks, deletes the journal and repairs.
  func damageSealRepair(writes: [String], damaging: String) throws {
    let store = try TestStore()
    try store.createVolume("v", size: "4M")
    let work = store.directory.path
    let environment = ["REEL_PASSPHRASE": "repair", "REEL_KDF_MEMORY_KIB": "1024"]
    let key = work + "/master.reelkey"
    try #require(try run(store.reel, ["key", "create", "--out", key], environment: environment).succeeded)
    let server = try ServerProcess(store: store, volumes: ["v"])
    try runChecked(
      try tool("qemu-io"),
      ["-f", "raw", store.uri("v"), "-c", "write -P 0x6b 256k 1M"] + writes.flatMap { ["-c", $0] } + ["-c", "flush"])
    try runChecked(store.reel, ["bookmark", "v", "b", "--store", store.root])
    let device = work + "/device.img"
    try runChecked(try tool("nbdcopy"), [store.uri("v"), device])
    #expect(server.stop() == 0)
    let sealed = try run(
      store.reel, ["seal", "v", "--out", work + "/cold", "--key", key, "--store", store.root], environment: environment)
    try #require(sealed.succeeded, "\(sealed.stdout)\(sealed.stderr)")

    let row = try runChecked(try tool("sqlite3"), [store.layout.catalogPath, damaging]).stdout.trimmingCharacters(
      in: .whitespacesAndNewlines
    ).split(separator: "|").map(String.init)
    try #require(row.count == 2)
    let pack = store.root + "/packs/" + row[0].prefix(2) + "/" + row[0] + ".pack"
    let handle = try #require(FileHandle(forUpdatingAtPath: pack))
    try handle.seek(toOffset: UInt64(row[1])!)
    let original = try #require(try handle.read(upToCount: 1))
    try handle.seek(toOffset: UInt64(row[1])!)
    try handle.write(contentsOf: Data([original[0] ^ 0xFF]))
    try handle.close()
    // As after the nightly job pruned the sealed segments.
    let journal = store.layout.journalDirectory("v")
    for name in try FileManager.default.contentsOfDirectory(atPath: journal) where name.hasSuffix(".rjs") {
      try FileManager.default.removeItem(atPath: journal + "/" + name)
    }

    let withoutKey = try store.reelCommand(["store", "repair"])
    #expect(withoutKey.status == 65)
    #expect(withoutKey.stdout.contains("NOT REPAIRED") && withoutKey.stdout.contains("affects volume v bytes"))
    #expect(withoutKey.stdout.contains("give --key"), "\(withoutKey.stdout)")

    let repaired = try run(
      store.reel, ["store", "repair", "--key", key, "--store", store.root], environment: environment)
    #expect(repaired.status == 0, "\(repaired.stdout)\(repaired.stderr)")
    #expect(repaired.stdout.contains("Taken again from sealed archives: 1 chunk(s)"), "\(repaired.stdout)")
    #expect(try store.reelCommand(["store", "check", "--read-data"]).status == 0)
    let restored = work + "/restored.img"
    try runChecked(store.reel, ["restore", "v", "--at", "b", "--output", restored, "--store", store.root])
    #expect(try sha256(restored) == sha256(device))
  }
}
