import Foundation
import ReelArchive
import ReelCodec
import ReelCore
import ReelStore
import ReelTestSupport

/// A temporary folder with a store for the built `reel` to use, and a place for media.
final class MediaSandbox: @unchecked Sendable {
  let root: String
  var store: String { root + "/store" }
  var library: String { root + "/vtl" }

  init() throws {
    var template = Array((NSTemporaryDirectory() + "/reel-media-XXXXXX").utf8CString)
    precondition(template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) } != nil)
    root = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    try FileManager.default.createDirectory(atPath: library, withIntermediateDirectories: true)
  }

  deinit { try? FileManager.default.removeItem(atPath: root) }

  struct Run {
    var status: Int32
    var stdout: String
    var stderr: String
    var output: String { stdout + stderr }
  }

  static var executable: String {
    URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("reel").path
  }

  @discardableResult
  func reel(_ arguments: String...) throws -> Run {
    try run(Self.executable, arguments, environment: ["REEL_STORE": store])
  }

  @discardableResult
  func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> Run {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Run(
      status: process.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
      stderr: String(decoding: errData, as: UTF8.self))
  }

  func json(_ text: String) throws -> Any {
    try JSONSerialization.jsonObject(with: Data(text.utf8))
  }

  func cartridge(_ name: String) -> String { library + "/\(name).vtape" }

  func bytes(_ path: String) -> [UInt8] { Array(FileManager.default.contents(atPath: path) ?? Data()) }

  /// A file's SHA-256, so comparisons of whole cartridges print a line, not megabytes.
  func digest(_ path: String) -> String { SHA256Digest.hash(bytes(path)).hex }
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

  @discardableResult
  func seal(randomBytes: Int, bookmark: String) throws -> SealedArchive {
    let piece = 256 << 10
    for index in 0..<(randomBytes / piece) {
      var data = [UInt8](repeating: 0, count: piece)
      for position in data.indices { data[position] = UInt8(truncatingIfNeeded: fixture.rng.next()) }
      try fixture.append(.write(offset: UInt64(index % 16) * UInt64(piece), data: data))
    }
    try fixture.append(.bookmark(bookmark))
    let outcome = try Sealer.seal(
      SealRequest(volume: fixture.name, outputDirectory: fixture.root + "/archives", masterKeys: [key]),
      live: fixture.live)
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
