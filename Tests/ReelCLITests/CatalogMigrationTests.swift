import Foundation
import ReelCodec
import ReelTestSupport
import Testing

/// A store made by the last Reel with catalog schema v7 (Fixtures/README.md) opens with
/// today's, migrates to v8 (compact rows), v9 (unnamed chunks allowed; its rows keep
/// their names) and v10 (delta chunks allowed) and reads back every point as it did.
@Suite struct CatalogMigrationTests {
  static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("Fixtures/store-catalog-v7.tar.zst").path

  /// SHA-256 of `reel restore` at each point, taken with the v7 build that made the store.
  static let restores: [(volume: String, point: String, sha256: String)] = [
    ("data", "seq:1", "5f280729a796acd140a15c0513c57a86ba45646c8fbb9a45f927b070a4349002"),
    ("data", "seq:20", "9e3a52157b4c966865c57fae11a64e4a0f387f901e873560f3704bd17c213d41"),
    ("data", "seq:40", "e0710fc2f8b6ab1020caeb68b8168f108f6d96b1e713ba15883d88e3d7824558"),
    ("data", "seq:57", "9cba4dba196309b2cf1bdb4dfe8be754d1bf540b7812b5a2193e6b94cf3255c5"),
    ("data", "benchmark end", "100c47ba6e1cfb2917e865c5d7a7c9efa71dbb662ed53882e54be6f29151ce08"),
    // The instant of seq 1's record.
    ("data", "2026-12-06T03:19:23.806129003Z", "5f280729a796acd140a15c0513c57a86ba45646c8fbb9a45f927b070a4349002"),
    ("copy", "seq:40", "e0710fc2f8b6ab1020caeb68b8168f108f6d96b1e713ba15883d88e3d7824558"),
    ("copy", "seq:50", "6fdf915207af606dfa5301f851dab46113cb6d7f117ea6198c0f9b42e735bc89"),
    ("copy", "latest", "3a10b807f93e1c056bde6bd3f633538f485995282b8c8d21019083490bed05a1"),
  ]

  func unpackedV7Store() throws -> ReelSandbox {
    let sandbox = ReelSandbox()
    let unpacked = try run(try tool("tar"), ["--zstd", "-xf", Self.fixture, "-C", sandbox.root])
    try #require(unpacked.status == 0, "\(unpacked.output)")
    return sandbox
  }

  func sqlite(_ sandbox: ReelSandbox, _ sql: String) throws -> String {
    let result = try run(try tool("sqlite3"), [sandbox.store + "/catalog.sqlite", sql])
    try #require(result.status == 0, "\(result.output)")
    return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
  }

  @Test func aVersion7StoreMigratesAndRestoresEveryPointAsBefore() throws {
    let sandbox = try unpackedV7Store()
    #expect(try sqlite(sandbox, "SELECT COUNT(*) FROM block_version") == "94")
    #expect(try sqlite(sandbox, "SELECT typeof(volume_id) FROM block_version LIMIT 1") == "text")
    // Chunks only partial versions use lose their names in v9.
    let partialOnly = try #require(
      Int(
        try sqlite(
          sandbox,
          """
          SELECT COUNT(*) FROM (SELECT chunk FROM block_version WHERE full = 0 AND chunk IS NOT NULL
            EXCEPT SELECT chunk FROM block_version WHERE full = 1 AND chunk IS NOT NULL)
          """)))
    #expect(partialOnly > 0)

    let check = try sandbox.reel("store", "check", "--read-data")
    #expect(
      check.status == 0 && check.stdout.contains("94 chunks") && check.stdout.contains("94 block versions"),
      "\(check.output)")
    #expect(try sqlite(sandbox, "SELECT value FROM store_info WHERE key = 'catalog_schema'") == "12")
    // v10: no chunk of an older store is a delta. v11: none is in a compression group.
    #expect(try sqlite(sandbox, "SELECT COUNT(*) FROM chunk WHERE base_id IS NOT NULL") == "0")
    #expect(try sqlite(sandbox, "SELECT COUNT(*) FROM chunk WHERE record_offset IS NOT NULL") == "0")
    #expect(
      try sqlite(sandbox, "SELECT typeof(volume), typeof(chunk_id) FROM block_version WHERE seq = 1 LIMIT 1")
        == "integer|integer")
    #expect(try sqlite(sandbox, "SELECT length(digest) FROM chunk WHERE digest IS NOT NULL LIMIT 1") == "32")
    #expect(try sqlite(sandbox, "SELECT COUNT(*) FROM chunk WHERE digest IS NULL") == String(partialOnly))
    // The views give the old shape, with names, to people and checks.
    #expect(try sqlite(sandbox, "SELECT COUNT(DISTINCT volume_id) FROM block_version_named") == "2")
    #expect(
      try sqlite(sandbox, "SELECT COUNT(*) FROM chunk_named WHERE length(hash) = 64 AND pack IS NOT NULL")
        == String(94 - partialOnly))

    for (volume, point, sha256) in Self.restores {
      let image = sandbox.root + "/restored-\(volume).img"
      let restored = try sandbox.reel("restore", volume, "--at", point, "--output", image, "--force")
      try #require(restored.status == 0, "\(volume) at \(point): \(restored.output)")
      #expect(try SHA256Digest.hash(fileAt: image).hex == sha256, "\(volume) at \(point)")
    }
    let timeline = try sandbox.json(try sandbox.reel("timeline", "data", "--json").stdout)
    #expect(timeline["records"] as? Int == 73 && timeline["last_seq"] as? Int == 73)
  }

  /// v7's repair deleted the row of a chunk it could not give back; the versions still
  /// named it. v8 keeps such a name as a lost chunk (no pack): the points that need it
  /// still fail, naming it, and the others still restore.
  @Test func aChunkWhoseRowV7RepairDeletedStaysLostAfterTheMigration() throws {
    let sandbox = try unpackedV7Store()
    // The newest full version of store block 0 of `data`: only the latest points need it.
    let victim = try sqlite(
      sandbox,
      """
      SELECT v.chunk FROM block_version v JOIN volume n ON n.id = v.volume_id
      WHERE n.name = 'data' AND v.block = 0 AND v.full = 1 ORDER BY v.seq DESC LIMIT 1
      """)
    let victimSeq = try sqlite(
      sandbox,
      "SELECT MAX(seq) FROM block_version WHERE chunk = '\(victim)'")
    _ = try sqlite(sandbox, "DELETE FROM chunk WHERE hash = '\(victim)'")

    let check = try sandbox.reel("store", "check")
    #expect(check.status != 0 && check.output.contains("chunk \(victim) has no stored record"), "\(check.output)")
    #expect(try sqlite(sandbox, "SELECT pack IS NULL FROM chunk_named WHERE hash = '\(victim)'") == "1")
    let latest = try sandbox.reel("restore", "data", "--at", "latest", "--output", sandbox.root + "/latest.img")
    #expect(latest.status != 0 && latest.stderr.contains(victim), "\(latest.output)")
    let early = try sandbox.reel("restore", "data", "--at", "seq:1", "--output", sandbox.root + "/early.img")
    #expect(early.status == 0, "\(early.output)")
    #expect(try SHA256Digest.hash(fileAt: sandbox.root + "/early.img").hex == Self.restores[0].sha256)
    #expect(Int(victimSeq) ?? 0 > 1)
  }
}
