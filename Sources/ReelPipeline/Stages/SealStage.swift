import Foundation
import ReelArchive
import ReelCodec
import ReelCore
import ReelStore

extension StageKind {
  package static let seal = StageKind(rawValue: "seal")
}

/// Seals each volume's history up to its cut into a verified archive.
struct SealStage: PipelineStage {
  static let kind = StageKind.seal
  static let parameters = [
    ParameterSpec("member-size", .size, "largest pack member (default 4G)"),
    ParameterSpec("new-chain", .boolean, "start a new chain with a full base"),
    ParameterSpec(
      "format", .choice(["1", "2"]),
      "archive format: 2 (default) chunks compressed in 8 MiB groups; 1 the store's chunks as they are, ~5% larger, faster to seal and rehydrate"
    ),
    ParameterSpec(
      "parity",
      .integer(minimum: ParityGeometry.percentRange.lowerBound, maximum: ParityGeometry.percentRange.upperBound),
      "Reed–Solomon parity in percent of each archive (default 5, 0 = none; format version 4)"),
  ]
  static let needsKey = true

  let memberLimit: UInt64
  let newChain: Bool
  let formatVersion: Int
  let parityPercent: Int

  init(_ definition: StageDefinition) {
    memberLimit = definition.size("member-size") ?? ArchiveFormat.defaultMemberLimit
    newChain = definition.boolean("new-chain") ?? false
    formatVersion = definition.string("format").flatMap { Int($0) } ?? SealRequest.defaultFormatVersion
    parityPercent = definition.integer("parity") ?? ParityGeometry.defaultPercent
  }

  func run(_ context: PipelineContext) throws -> StageOutcome {
    var outcome = StageOutcome()
    let live = context.live
    for volume in context.volumes {
      let descriptor = try context.store.layout.descriptor(of: volume)
      let fixed = context.state.cutPoint(volume: volume)
      if fixed == .nothingToCut {
        outcome.lines.append("\(volume): nothing to seal")
        continue
      }
      let cut = fixed?.seq
      let sealed = try live.sealedSeq(of: descriptor)
      if context.dryRun {
        let window =
          cut == sealed
          ? "the state at seq \(sealed)"
          : "seq \(sealed + 1)…" + (cut.map { String($0) } ?? "the newest flush or bookmark")
        outcome.lines.append("\(volume): would seal \(window) into \(context.archiveDirectory)")
        continue
      }
      let keys = try context.keys()
      if let adopted = try adoptOrphans(volume: volume, descriptor: descriptor, context: context, keys: keys) {
        outcome.lines.append(adopted)
      }
      // The sealed seq alone cannot tell: it is 0 both before and after a first archive
      // that holds only the state at seq 0.
      if let cut, let last = try live.lastSealedArchive(of: descriptor), last.untilSeq >= cut {
        let archive = try live.sealedArchives(of: descriptor).first { $0.untilSeq == cut }
        outcome.lines.append(
          "\(volume): already sealed through seq \(cut)" + (archive.map { " (\($0.fileName))" } ?? ""))
        continue
      }
      context.progress("sealing \(volume)")
      var request = SealRequest(
        volume: volume, until: cut.map { .seq($0) }, outputDirectory: context.archiveDirectory, masterKeys: keys,
        memberLimit: memberLimit, newChain: newChain, formatVersion: formatVersion)
      request.parityPercent = parityPercent
      switch try Sealer.seal(request, live: live) {
      case .sealed(let archive):
        outcome.items += 1
        outcome.bytes += archive.size
        let range = archive.manifest.range
        outcome.lines.append(
          "\(volume): sealed \(range.seqs) → \((archive.path as NSString).lastPathComponent) (\(ByteSize.describe(archive.size)), read back and verified)"
        )
        context.event("sealed \(volume) through seq \(range.untilSeq)")
      case .nothingToSeal(_, _, let reason):
        outcome.lines.append("\(volume): nothing sealed — \(reason)")
      }
    }
    outcome.message = "\(outcome.items) archive(s) sealed"
    return outcome
  }

  /// An archive a killed seal renamed into place but never recorded: if it continues the
  /// volume's sealed history exactly and verifies with the key, it is recorded now rather
  /// than sealed a second time.
  func adoptOrphans(volume: String, descriptor: VolumeDescriptor, context: PipelineContext, keys: [SymmetricKey])
    throws -> String?
  {
    let live = context.live
    let folder = context.archiveDirectory
    let names = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).filter {
      $0.hasSuffix(ArchiveFormat.fileSuffix) && !$0.hasPrefix(".")
    }.sorted()
    guard !names.isEmpty else { return nil }
    var known = Set(try live.sealedArchives(of: descriptor).map(\.id))
    var adopted: [String] = []
    for name in names {
      let path = folder + "/" + name
      guard let manifest = try? ArchiveVerifier.readManifest(path: path),
        manifest.volume.id == descriptor.id.description, !known.contains(manifest.archiveID)
      else { continue }
      let last = try live.lastSealedArchive(of: descriptor)
      let bounds = try live.historyBounds(of: descriptor)
      let expectedFrom = max(last?.untilSeq ?? bounds.retainedFrom, bounds.retainedFrom)
      guard manifest.range.fromSeq == expectedFrom, manifest.parentID == nil || manifest.parentID == last?.id,
        manifest.range.untilSeq <= bounds.ingested
      else { continue }
      let verification = try ArchiveVerifier.verify(path: path, masterKeys: keys)
      guard verification.problems.isEmpty else { continue }
      try live.recordSealed(
        SealedArchiveRecord(
          manifest: manifest, fromTime: try live.time(of: manifest.range.fromSeq, in: descriptor),
          untilTime: try live.time(of: manifest.range.untilSeq, in: descriptor), fileName: name, path: path,
          size: verification.structure.totalBytes, sha256: verification.structure.sha256,
          created: Timestamp(rfc3339: manifest.createdAt) ?? .now(), verified: .now()))
      known.insert(manifest.archiveID)
      adopted.append(name)
      context.event("adopted \(name)")
    }
    return adopted.isEmpty
      ? nil
      : "\(volume): recorded \(adopted.joined(separator: ", ")) (sealed and verified by a killed run, never recorded)"
  }
}
