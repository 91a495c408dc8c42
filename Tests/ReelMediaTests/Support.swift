import Foundation
import ReelArchive
import ReelCodec
import ReelCore
import ReelStore
import ReelTestSupport
import Testing

/// A temporary folder with a store for the built `reel` to use, and a place for media.
final class MediaSandbox: @unchecked Sendable {
  private let folder = TemporaryDirectory("reel-media")
  var root: String { folder.path }
  var store: String { root + "/store" }
  var library: String { root + "/vtl" }

  init() throws {
    try FileManager.default.createDirectory(atPath: library, withIntermediateDirectories: true)
  }

  @discardableResult
  func reel(_ arguments: String...) throws -> CommandResult {
    try run(reelExecutable, arguments, environment: ["REEL_STORE": store])
  }

  func json(_ text: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(text.utf8))
  }

  func cartridge(_ name: String) -> String { library + "/\(name).vtape" }

  func bytes(_ path: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path) ?? Data()) }

  /// A file's SHA-256, so comparisons of whole cartridges print a line, not megabytes.
  func digest(_ path: String) -> String { SHA256Digest.hash(bytes(path)).hex }

  /// Every bookmark of `store` (a rehydrated one) restores volume "disk" to the state it
  /// marked: `states` maps each bookmark to the SHA-256 of that state.
  func expectEveryBookmarkRestores(_ states: [String: String], from store: String) throws {
    for (bookmark, expected) in states {
      let image = root + "/\(bookmark)-\(UUID().uuidString.prefix(8)).img"
      let restored = try run(
        reelExecutable, ["restore", "disk", "--at", bookmark, "--output", image], environment: ["REEL_STORE": store])
      #expect(restored.status == 0, "\(restored.output)")
      #expect(digest(image) == expected, "bookmark \(bookmark) restores bit-exact from \(store)")
      try? FileManager.default.removeItem(atPath: image)
    }
  }

  /// Three archives of one chain exported to media set "weekly" on vtape cartridges C1, C2
  /// and C3, one archive each (a store is initialized first).
  func exportChainToThreeCartridges(_ maker: ArchiveMaker) throws -> [SealedArchive] {
    let archives = try ["a", "b", "c"].map { try maker.seal(randomBytes: 1_200_000, bookmark: $0) }
    #expect(try reel("init").status == 0)
    let capacity = archives.map(\.size).max()! + (3 << 20)
    for name in ["C1", "C2", "C3"] {
      #expect(try reel("media", "label", "vtape:" + library, "--name", name, "--capacity", "\(capacity)").status == 0)
    }
    let export = try reel(
      "export", archives[0].path, archives[1].path, archives[2].path, "--to", "vtape:" + library,
      "--media-set", "weekly")
    #expect(export.status == 0 && export.stdout.contains("C3 file"), "\(export.output)")
    return archives
  }
}

/// Real sealed archives: one chain of a volume, each archive holding about `randomBytes`
/// of incompressible writes, so its size is predictable to within a megabyte.
final class ArchiveMaker: @unchecked Sendable {
  let fixture: StoreFixture
  let key: SymmetricKey
  let keyPath: String
  static let passphrase = "correct horse"
  var archives: [SealedArchive] = []

  init() throws {
    fixture = try StoreFixture(size: 4 << 20)
    keyPath = fixture.root + "/master.key"
    key = try KeyFile.create(at: keyPath, passphrase: Self.passphrase)
  }

  /// `parity`: percent of Reed–Solomon parity (nil: the seal's default).
  @discardableResult
  func seal(randomBytes: Int, bookmark: String, parity: Int? = nil) throws -> SealedArchive {
    let piece = 256 << 10
    for index in 0..<(randomBytes / piece) {
      var data = [UInt8](repeating: 0, count: piece)
      for position in data.indices { data[position] = UInt8(truncatingIfNeeded: fixture.rng.next()) }
      try fixture.append(.write(offset: UInt64(index % 16) * UInt64(piece), data: data))
    }
    try fixture.append(.bookmark(bookmark))
    var request = SealRequest(volume: fixture.name, outputDirectory: fixture.root + "/archives", masterKeys: [key])
    if let parity { request.parityPercent = parity }
    let outcome = try Sealer.seal(request, live: fixture.live)
    guard case .sealed(let archive) = outcome else { throw ReelError(.usage, "nothing sealed") }
    archives.append(archive)
    return archive
  }
}

extension Array where Element == [String: Any] {
  /// The catalog's files as (file, kind, state, archive id) for compact comparisons.
  var fileSummary: [String] {
    map { entry in
      let archive = (entry["archive"] as? [String: Any])?["archiveID"] as? String
      return "\(entry["file"] ?? "?") \(entry["kind"] ?? "?") \(entry["state"] ?? "-") \(archive?.prefix(8) ?? "-")"
    }
  }
}
