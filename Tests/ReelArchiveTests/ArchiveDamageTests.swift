import Foundation
import ReelCodec
import ReelCore
import ReelIO
import ReelStore
import ReelTestSupport
import Testing

@testable import ReelArchive

/// Where each member's header and data sit in a tar file (ustar headers, pax extended
/// headers attributed to the member that follows them).
struct TarMap {
  struct Entry {
    var name: String
    var headerOffset: Int
    var dataOffset: Int
    var size: Int
  }
  var entries: [Entry] = []

  init(_ bytes: [UInt8]) {
    var offset = 0
    var headerStart: Int? = nil
    while offset + 512 <= bytes.count {
      let header = Array(bytes[offset..<(offset + 512)])
      if header.allSatisfy({ $0 == 0 }) { break }
      let name = String(decoding: header[0..<100].prefix { $0 != 0 }, as: UTF8.self)
      let sizeText = String(decoding: header[124..<136].prefix { $0 != 0 && $0 != 0x20 }, as: UTF8.self)
      let size = Int(sizeText, radix: 8) ?? 0
      let type = header[156]
      if headerStart == nil { headerStart = offset }
      if type == UInt8(ascii: "0") || type == 0 {
        entries.append(Entry(name: name, headerOffset: headerStart!, dataOffset: offset + 512, size: size))
        headerStart = nil
      }
      offset += 512 + (size + 511) / 512 * 512
    }
  }

  func entry(_ name: String) -> Entry? { entries.first { $0.name == name } }
}

/// Copies the archive with `change` applied, runs every check with the key, and returns
/// what was said: the problems' text, or the error thrown.
func verdict(of path: String, key: SymmetricKey, _ change: (inout [UInt8]) -> Void) throws -> String? {
  var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
  change(&bytes)
  let damaged = path + ".damaged-\(UUID().uuidString)"
  try Data(bytes).write(to: URL(fileURLWithPath: damaged))
  defer { unlink(damaged) }
  do {
    let result = try ArchiveVerifier.verify(path: damaged, masterKeys: [key])
    return result.problems.isEmpty ? nil : result.problems.map(\.description).joined(separator: "; ")
  } catch let error as ReelError {
    return error.description
  }
}

@Suite struct ArchiveDamageTests {
  static let chain: SealedChain = {
    let chain = try! SealedChain(size: 1 << 20)
    try! chain.history(40, bookmark: "x")
    try! chain.seal()
    return chain
  }()

  @Test func aFlippedByteInAnyMemberFailsVerificationNamingTheMember() throws {
    let chain = Self.chain
    let path = chain.archives[0]
    let map = TarMap(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
    #expect(
      map.entries.map(\.name).first == "README.txt" && map.entries.map(\.name).suffix(2) == ["SHA256SUMS", "PARITY"])
    #expect(try verdict(of: path, key: chain.key) { _ in } == nil, "the intact archive verifies")
    for entry in map.entries {
      for position in [0, entry.size / 2, entry.size - 1] {
        let said = try verdict(of: path, key: chain.key) { $0[entry.dataOffset + position] ^= 0x01 }
        let named =
          said?.contains(entry.name) == true
          || (entry.name == "SHA256SUMS" && said?.contains("SHA256SUMS") == true)
        #expect(named, "flip in \(entry.name) at \(position): \(said ?? "not detected")")
      }
      let header = try verdict(of: path, key: chain.key) { $0[entry.headerOffset + 130] ^= 0x04 }
      #expect(header != nil, "flip in the tar header of \(entry.name) goes unnoticed")
    }
  }

  @Test func keylessChecksAlsoCatchEveryMemberFlip() throws {
    let path = Self.chain.archives[0]
    let original = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    for entry in TarMap(original).entries {
      var bytes = original
      bytes[entry.dataOffset + entry.size / 2] ^= 0x80
      var source = BytesSource(bytes: bytes)
      #expect(throws: ReelError.self, "\(entry.name)") { try ArchiveVerifier.verifyStructure(source: &source) }
    }
    var intact = BytesSource(bytes: original)
    let report = try ArchiveVerifier.verifyStructure(source: &intact)
    #expect(report.totalBytes == UInt64(original.count))
    #expect(report.sha256 == SHA256Digest.hash(original).hex)
  }

  @Test func truncatedArchivesAreRefusedAtEveryCut() throws {
    let path = Self.chain.archives[0]
    let original = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
    let map = TarMap(original)
    let end = map.entries.last!.dataOffset + map.entries.last!.size
    var cuts = [0, 100, 512, 1000]
    for entry in map.entries { cuts += [entry.headerOffset + 300, entry.dataOffset + entry.size / 2] }
    cuts.append(end)
    for cut in cuts {
      let said = try verdict(of: path, key: Self.chain.key) { $0.removeSubrange(cut...) }
      #expect(said != nil, "cut at \(cut) of \(original.count) not noticed")
    }
  }

  @Test func theWrongKeyIsRefusedBeforeAnythingIsImported() throws {
    let chain = Self.chain
    let other = SymmetricKey.random()
    let error = #expect(throws: ReelError.self) {
      try ArchiveVerifier.verify(path: chain.archives[0], masterKeys: [other])
    }
    #expect(error?.kind == .wrongKey)
    #expect(error?.message.contains(other.fingerprint) == true)
    let root = chain.fixture.root + "/wrong-key-store"
    let live = LiveStore(store: try Store.initialize(StoreLayout(root: root)).store)
    #expect(throws: ReelError.self) {
      try ArchiveImporter.importArchive(path: chain.archives[0], masterKeys: [other], into: live)
    }
    #expect(try FileManager.default.contentsOfDirectory(atPath: root + "/volumes").isEmpty)
    // The right key with a forged wrapped key in the manifest (HMAC cannot be checked without
    // the data key, so the unwrap itself must fail).
  }

  @Test func hostileTarsAreRefusedAndNothingIsWrittenOutsideTheArchive() throws {
    let folder = Self.chain.fixture.root + "/hostile"
    try FileManager.default.createDirectory(atPath: folder + "/src", withIntermediateDirectories: true)
    let script = """
      import io, sys, tarfile
      kind, out = sys.argv[1], sys.argv[2]
      with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as t:
          def add(name, data=b"x", **kw):
              info = tarfile.TarInfo(name); info.size = len(data)
              for k, v in kw.items(): setattr(info, k, v)
              t.addfile(info, io.BytesIO(data))
          if kind == "dotdot": add("../evil")
          elif kind == "absolute": add("/tmp/evil")
          elif kind == "symlink":
              info = tarfile.TarInfo("README.txt"); info.type = tarfile.SYMTYPE; info.linkname = "/etc/passwd"
              t.addfile(info)
          elif kind == "huge":
              add("README.txt", b"hello")
              info = tarfile.TarInfo("manifest.json"); info.size = 1 << 40
              t.fileobj.write(info.tobuf(tarfile.PAX_FORMAT)); t.fileobj.write(b"{" * 1024)
              t.offset += 512 + 1024
          elif kind == "notreel": add("README.txt", b"hi"); add("manifest.json", b'{"format": "zip"}')
      """
    try script.write(toFile: folder + "/make.py", atomically: true, encoding: .utf8)
    for kind in ["dotdot", "absolute", "symlink", "huge", "notreel"] {
      let path = folder + "/\(kind).tar"
      let made = try run("/usr/bin/env", ["python3", folder + "/make.py", kind, path])
      #expect(made.status == 0, "\(made.output)")
      let error = #expect(throws: ReelError.self, "\(kind)") { try ArchiveVerifier.verify(path: path, masterKeys: []) }
      #expect(error?.kind == .corrupt, "\(kind): \(String(describing: error))")
    }
    #expect(!FileManager.default.fileExists(atPath: "/tmp/evil"))
    #expect(!FileManager.default.fileExists(atPath: folder + "/../evil"))
  }

  @Test func aManifestThatDoesNotMatchItsMembersIsCaught() throws {
    let chain = Self.chain
    let folder = chain.fixture.root + "/edited"
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    #expect(try run("/usr/bin/env", ["tar", "-xf", chain.archives[0], "-C", folder]).status == 0)
    // Claim another size for the pack, keep SHA256SUMS consistent with the edited manifest.
    let manifestPath = folder + "/manifest.json"
    var manifest = try JSONDecoder().decode(
      ArchiveManifest.self, from: try Data(contentsOf: URL(fileURLWithPath: manifestPath)))
    manifest.members[manifest.members.count - 1].size += 1
    try JSONEncoder().encode(manifest).write(to: URL(fileURLWithPath: manifestPath))
    let sums = try run(
      "/bin/sh", ["-c", "sha256sum README.txt manifest.json manifest.hmac index.sqlite.enc packs/* > SHA256SUMS"],
      directory: folder)
    #expect(sums.status == 0)
    let rebuilt = folder + "/rebuilt.tar"
    let tar = try run(
      "/bin/sh",
      [
        "-c",
        "tar --format=pax -cf rebuilt.tar README.txt manifest.json manifest.hmac index.sqlite.enc packs/* SHA256SUMS",
      ],
      directory: folder)
    #expect(tar.status == 0, "\(tar.output)")
    let keyless = try ArchiveVerifier.verify(path: rebuilt, masterKeys: []).problems
    #expect(keyless.map(\.description).contains { $0.contains("does not match manifest.json") }, "\(keyless)")
    let withKey = #expect(throws: ReelError.self) { try ArchiveVerifier.verify(path: rebuilt, masterKeys: [chain.key]) }
    #expect(withKey?.description.contains("manifest") == true)
  }

  @Test func aChainWithAMissingParentIsNamed() throws {
    let chain = try SealedChain(size: 1 << 20)
    try chain.history(10, bookmark: "a")
    let first = try #require(try chain.seal())
    try chain.history(10, bookmark: "b")
    let second = try #require(try chain.seal())
    #expect(ArchiveChain.problems(of: [first.manifest, second.manifest]).isEmpty)
    #expect(ArchiveChain.problems(of: [second.manifest], searching: [chain.output]).isEmpty)
    try FileManager.default.removeItem(atPath: first.path)
    let problems = ArchiveChain.problems(of: [second.manifest], searching: [chain.output])
    #expect(problems.count == 1)
    #expect(problems.first?.message.contains(first.manifest.archiveID) == true)
  }

  /// Mutated archives for a bounded time: the reader never crashes or hangs, and every
  /// mutation inside a member's bytes is reported.
  @Test func fuzzedArchivesAreReportedNeverCrash() throws {
    let chain = Self.chain
    let original = Array(try Data(contentsOf: URL(fileURLWithPath: chain.archives[0])))
    let map = TarMap(original)
    var rng = SplitMix(seed: UInt64.random(in: 0...UInt64.max))
    let seed = rng.state
    let deadline = Date().addingTimeInterval(8)
    var rounds = 0
    while Date() < deadline {
      rounds += 1
      var bytes = original
      var insideMember = false
      for _ in 0..<(1 + Int(rng.next() % 6)) {
        let position = Int(rng.next() % UInt64(bytes.count))
        switch rng.next() % 4 {
        case 0: bytes.removeSubrange(position...)
        case 1:
          bytes.insert(contentsOf: [UInt8](repeating: UInt8(truncatingIfNeeded: rng.next()), count: 7), at: position)
        default:
          bytes[position] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
          if map.entries.contains(where: { position >= $0.dataOffset && position < $0.dataOffset + $0.size }) {
            insideMember = true
          }
        }
        if bytes.isEmpty { break }
      }
      var source = BytesSource(bytes: bytes)
      var reported = false
      do {
        _ = try ArchiveVerifier.verifyStructure(source: &source)
      } catch is ReelError {
        reported = true
      }
      if insideMember && bytes.count == original.count { #expect(reported, "seed \(seed) round \(rounds)") }
    }
    #expect(rounds > 10)
  }
}

/// An archive held in memory, read as a stream.
struct BytesSource: ArchiveByteSource {
  var bytes: [UInt8]
  var offset = 0

  mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
    let count = min(buffer.count, bytes.count - offset)
    guard count > 0 else { return 0 }
    bytes.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + count)])) }
    offset += count
    return count
  }
}

/// What the seal's own check of the stream it writes says about `bytes`: fed through a pipe
/// from another thread, framed members not re-hashed when every frame authenticates.
func streamVerdict(of bytes: [UInt8], key: SymmetricKey) throws -> String? {
  let pipe = ArchiveBytePipe(depth: 4)
  let feeding = BackgroundTask {
    var offset = 0
    while offset < bytes.count {
      let end = min(bytes.count, offset + 100_000)
      guard bytes[offset..<end].withUnsafeBytes({ pipe.push($0) }) else { break }
      offset = end
    }
    pipe.close()
  }
  defer { try? feeding.value() }
  do {
    let result = try ArchiveVerifier.verify(written: pipe, masterKeys: [key], label: "stream", checkContent: false)
    return result.problems.isEmpty ? nil : result.problems.map(\.description).joined(separator: "; ")
  } catch let error as ReelError {
    return error.description
  }
}

@Suite struct SealStreamCheckTests {
  @Test func theSealsCheckOfItsOwnStreamNamesAFlipInEveryMember() throws {
    let chain = ArchiveDamageTests.chain
    let original = Array(try Data(contentsOf: URL(fileURLWithPath: chain.archives[0])))
    #expect(try streamVerdict(of: original, key: chain.key) == nil, "the intact stream checks out")
    for entry in TarMap(original).entries {
      for position in [0, entry.size / 2, entry.size - 1] {
        var bytes = original
        bytes[entry.dataOffset + position] ^= 0x01
        let said = try streamVerdict(of: bytes, key: chain.key)
        let named =
          said?.contains(entry.name) == true
          || (entry.name == "SHA256SUMS" && said?.contains("SHA256SUMS") == true)
        #expect(named, "flip in \(entry.name) at \(position): \(said ?? "not detected")")
      }
    }
  }

  /// The damage chain's first archive: its bytes, their length and CRC-32C (as the seal's
  /// writer counts them), and a fresh path for a copy next to it.
  static func archiveToCopy(_ suffix: String) throws -> (original: [UInt8], written: StreamSum, copy: String) {
    let chain = ArchiveDamageTests.chain
    let original = Array(try Data(contentsOf: URL(fileURLWithPath: chain.archives[0])))
    var written = StreamSum()
    written.add(original)
    return (original, written, chain.archives[0] + ".\(suffix)-\(UUID().uuidString)")
  }

  @Test func aReadBackThatDiffersFromTheVerifiedStreamFailsTheSeal() throws {
    let (original, written, copy) = try Self.archiveToCopy("read-back")
    defer { unlink(copy) }
    try Data(original).write(to: URL(fileURLWithPath: copy))
    let readBack = try ArchiveWriter.readBack(copy, label: "copy", matches: written)
    #expect(readBack.checksum == CRC32C.checksum(original), "the CRC-32C an export checks against")
    var changed = original
    changed[changed.count / 2] ^= 0x10
    try Data(changed).write(to: URL(fileURLWithPath: copy))
    let error = #expect(throws: ReelError.self) { try ArchiveWriter.readBack(copy, label: "copy", matches: written) }
    #expect(error?.message.contains("copy: read back from the disk, it is not what was written") == true)
    try Data(original.dropLast(1 << 20)).write(to: URL(fileURLWithPath: copy))
    #expect(throws: ReelError.self) { try ArchiveWriter.readBack(copy, label: "copy", matches: written) }
  }

  /// The read-back that follows the direct writes reads the disk, not the bytes it was
  /// given: started before anything is written (as the seal starts it) it sees the whole
  /// stream; a byte changed on the disk behind the writer's back fails the comparison.
  @Test func theReadBackThatFollowsTheWritesReadsWhatTheDiskHolds() throws {
    let (original, written, copy) = try Self.archiveToCopy("following")
    defer { unlink(copy) }
    let writer = try DirectFileWriter(creating: copy)
    let following = try FollowingReadBack(path: copy, writer: writer)
    var offset = 0
    while offset < original.count {
      let end = min(original.count, offset + 300_007)
      try original[offset..<end].withUnsafeBytes { try writer.append($0) }
      offset = end
    }
    try writer.finish()
    try writer.file.sync()
    let followed = try #require(try following.result(), "direct reads of \(copy)")
    try ArchiveWriter.require(followed, label: "copy", matches: written)
    #expect(followed.checksum == CRC32C.checksum(original), "the CRC-32C an export checks against")

    // Changed on the disk through another descriptor, then read back again.
    let other = try PosixFile(path: copy, flags: O_WRONLY)
    var byte = original[original.count / 3] ^ 0x40
    #expect(pwrite(other.descriptor, &byte, 1, off_t(original.count / 3)) == 1)
    try other.sync()
    let reread = try #require(try FollowingReadBack(path: copy, writer: writer).result())
    let error = #expect(throws: ReelError.self) { try ArchiveWriter.require(reread, label: "copy", matches: written) }
    #expect(error?.message.contains("copy: read back from the disk, it is not what was written") == true)
  }
}
