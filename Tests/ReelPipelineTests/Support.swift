import Foundation
import GRDB
import ReelArchive
import ReelCodec
import ReelCore
import ReelIO
import ReelJournal
import ReelMedia
import ReelPipeline
import ReelStore
import ReelTestSupport

/// A store with two volumes whose journals span several closed segments, a key file, a
/// virtual tape library and a pipeline file, all in a fresh temporary folder; the built
/// `reel` runs against it. The workload is the same for the same seed, so two sandboxes
/// can be compared after different histories of kills.
final class PipelineSandbox: @unchecked Sendable {
  private let folder = TemporaryDirectory("reel-pipeline")
  var root: String { folder.path }
  var store: String { root + "/store" }
  var key: String { root + "/master.reelkey" }
  var library: String { root + "/vtl" }
  var offsite: String { root + "/offsite" }
  var archives: String { store + "/archives" }
  let volumes = ["alpha", "beta"]

  init(seed: UInt64 = 7, sessions: Int = 3) throws {
    let store = try Store.initialize(StoreLayout(root: self.store)).store
    var random = seed
    func next() -> UInt64 {
      random &+= 0x9E37_79B9_7F4A_7C15
      var z = random
      z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
      z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
      return z ^ (z >> 31)
    }
    for name in volumes {
      let descriptor = try Volumes.create(in: store, name: name, size: 8 << 20)
      var options = JournalOptions()
      options.segmentSizeLimit = 192 << 10
      for session in 0..<sessions {
        let (writer, _) = try JournalWriter.open(
          directory: store.layout.journalDirectory(name), volume: descriptor.id, options: options)
        for write in 0..<12 {
          let data = (0..<(32 << 10)).map { _ in UInt8(truncatingIfNeeded: next() % 7) }
          let offset = (next() % 240) * 32 << 10
          _ = try writer.append(.write(offset: offset, data: data))
          if write % 4 == 3 { _ = try writer.append(.flush) }
        }
        _ = try writer.append(.bookmark("session-\(session)"))
        try writer.close()
      }
    }
    try FileManager.default.createDirectory(atPath: library, withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: offsite, withIntermediateDirectories: true)
    try check(reel(["key", "create", "--out", key]))
    for (folder, names) in [(library, ["c1", "c2"]), (offsite, ["o1"])] {
      for name in names {
        try check(
          reel([
            "media", "label", "vtape:\(folder)/\(name).vtape", "--name", name.uppercased(), "--capacity", "64M",
          ]))
      }
    }
  }

  var environment: [String: String] {
    [
      "REEL_STORE": store, "REEL_KEY": key, "REEL_PASSPHRASE": "correct horse", "REEL_KDF_MEMORY_KIB": "1024",
      "REEL_VTL": library, "REEL_OFFSITE_VTL": offsite,
    ]
  }

  @discardableResult
  func reel(_ arguments: [String], environment extra: [String: String] = [:]) throws -> CommandResult {
    try run(reelExecutable, arguments, environment: environment.merging(extra) { $1 })
  }

  func check(_ run: CommandResult) throws {
    guard run.status == 0, !run.killed else {
      throw ReelError(.io, "reel failed (\(run.status)): \(run.output)")
    }
  }

  /// Writes a pipeline file into the sandbox and returns its path.
  func pipeline(_ name: String, _ text: String) throws -> String {
    let path = root + "/" + name + ".yaml"
    try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    return path
  }

  static let nightly = """
    pipeline: nightly
    media-set: primary
    stages:
      - stage: cut
      - stage: seal
      - stage: verify
      - stage: export
        to:
          - vtape:${REEL_VTL}
      - stage: verify-on-media
      - stage: record-catalog
      - stage: prune-journal
        copies: 1
    """

  /// Cut, seal and export to the library, nothing else.
  var exportOnly: String {
    """
    pipeline: export-only
    media-set: primary
    stages:
      - stage: cut
      - stage: seal
      - stage: export
        to: [vtape:\(library)]
    """
  }

  func json(_ text: String) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] ?? [:]
  }

  func openStore() throws -> Store { try Store.open(StoreLayout(root: store)) }

  /// Segment file names of each volume's journal.
  func segments() -> [String: [String]] {
    var result: [String: [String]] = [:]
    for volume in volumes {
      result[volume] =
        ((try? FileManager.default.contentsOfDirectory(atPath: store + "/volumes/\(volume)/journal")) ?? [])
        .filter { $0.hasSuffix(".rjs") }.sorted()
    }
    return result
  }

  /// Each volume's segments with the seq range they hold, before anything was pruned.
  func segmentRanges() throws -> [String: [(name: String, first: Seq, last: Seq)]] {
    let layout = StoreLayout(root: store)
    var result: [String: [(name: String, first: Seq, last: Seq)]] = [:]
    for volume in volumes {
      result[volume] = try layout.journalReader(of: volume).segments.map {
        (($0.path as NSString).lastPathComponent, $0.header.firstSeq, $0.summary?.lastSeq ?? .max)
      }
    }
    return result
  }

  /// What a finished nightly run leaves, without the random archive IDs: archives by
  /// range, their files, copies by range and cartridge, journal segments, sealed seqs.
  func state() throws -> [String] {
    let store = try openStore()
    let live = LiveStore(store: store)
    var lines: [String] = []
    for volume in volumes {
      let descriptor = try store.layout.descriptor(of: volume)
      lines.append("\(volume) sealed_seq \(try live.sealedSeq(of: descriptor))")
      for archive in try live.sealedArchives(of: descriptor) {
        let copies = try store.catalog.archiveCopies(archiveID: archive.id)
        lines.append(
          "\(volume) archive \(archive.fromSeq)-\(archive.untilSeq) chain#\(archive.chainIndex) verified=\(archive.verified != nil) copies=\(copies.map { "\($0.mediaSet)/\($0.cartridgeLabel)" }.sorted())"
        )
      }
    }
    let files = ((try? FileManager.default.contentsOfDirectory(atPath: archives)) ?? []).map { name -> String in
      // volume-from-until-id.reel.tar → volume-from-until
      let parts = name.split(separator: "-")
      return parts.count >= 4 && !name.hasPrefix(".") ? parts.dropLast().joined(separator: "-") : name
    }.sorted()
    lines.append("archive files \(files)")
    for (volume, names) in segments().sorted(by: { $0.key < $1.key }) { lines.append("\(volume) segments \(names)") }
    let checks = try store.catalog.mediaChecks()
    lines.append("media checks ok=\(checks.filter(\.ok).count) failed=\(checks.filter { !$0.ok }.count)")
    return lines
  }

  /// Every deleted segment's records are held by verified archives with `copies` verified copies.
  func prunedSegmentsAreProtected(_ before: [String: [(name: String, first: Seq, last: Seq)]], copies: Int) throws
    -> [String]
  {
    let store = try openStore()
    let live = LiveStore(store: store)
    var problems: [String] = []
    let present = segments()
    for volume in volumes {
      let descriptor = try store.layout.descriptor(of: volume)
      let archives = try live.sealedArchives(of: descriptor)
      let deleted = (before[volume] ?? []).filter { !(present[volume] ?? []).contains($0.name) }
      if let newest = before[volume]?.last, deleted.contains(where: { $0.name == newest.name }) {
        problems.append("\(volume): the newest segment was deleted")
      }
      for segment in deleted {
        var covered = segment.first - 1
        for archive in archives.sorted(by: { $0.fromSeq < $1.fromSeq }) where archive.fromSeq <= covered {
          guard archive.untilSeq > covered else { continue }
          let count = try store.catalog.verifiedCopyCount(archiveID: archive.id)
          if archive.verified == nil || count < copies {
            problems.append("\(volume) \(segment.name): archive \(archive.fileName) has \(count) copies")
          }
          covered = archive.untilSeq
        }
        if covered < segment.last { problems.append("\(volume) \(segment.name): seq \(covered + 1)… not sealed") }
      }
      // No gap: the remaining segments are a suffix of the original ones.
      let names = (before[volume] ?? []).map(\.name)
      let remaining = present[volume] ?? []
      if Array(names.suffix(remaining.count)) != remaining {
        problems.append("\(volume): the journal has a gap: \(remaining)")
      }
    }
    return problems
  }

  /// Every file under the sandbox with its size and SHA-256, for "nothing changed".
  func fingerprint() -> [String] {
    var lines: [String] = []
    let enumerator = FileManager.default.enumerator(atPath: root)
    while let name = enumerator?.nextObject() as? String {
      let path = root + "/" + name
      var isFolder: ObjCBool = false
      _ = FileManager.default.fileExists(atPath: path, isDirectory: &isFolder)
      if isFolder.boolValue {
        lines.append(name + "/")
      } else {
        let bytes = Array(FileManager.default.contents(atPath: path) ?? Data())
        lines.append("\(name) \(bytes.count) \(SHA256Digest.hash(bytes).hex)")
      }
    }
    return lines.sorted()
  }
}
