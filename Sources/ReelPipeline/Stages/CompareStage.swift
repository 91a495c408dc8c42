import Foundation
import ReelCodec
import ReelCore
import ReelIO
import ReelStore

extension StageKind {
  package static let compare = StageKind(rawValue: "compare")
}

/// Restores the latest point of each volume from the drill's scratch store and compares it
/// with the live store (the second half of a DR drill).
struct CompareStage: PipelineStage {
  static let kind = StageKind.compare
  static let parameters = [
    ParameterSpec("keep-scratch", .boolean, "keep the scratch store and restored images (default false)")
  ]

  static func placementProblems(_ stage: StageDefinition, after earlier: [StageDefinition], mediaSet: String?)
    -> [(message: String, fix: String)]
  {
    guard !earlier.contains(where: { $0.kind == .rehydrate }) else { return [] }
    return [
      (
        "stage \"\(stage.name)\" (compare) needs a rehydrate stage before it",
        "add `- stage: rehydrate` before it"
      )
    ]
  }

  let keepScratch: Bool

  init(_ definition: StageDefinition) {
    keepScratch = definition.boolean("keep-scratch") ?? false
  }

  func run(_ context: PipelineContext) throws -> StageOutcome {
    var outcome = StageOutcome()
    if context.dryRun {
      outcome.lines.append(
        "would restore the latest rehydrated point of each volume and compare it with the live store")
      outcome.message = "compare planned"
      return outcome
    }
    guard let scratch = context.state.scratchStore else {
      throw ReelError(.notFound, "no scratch store: the rehydrate stage did not run in this run")
    }
    let scratchStore = try Store.open(StoreLayout(root: scratch))
    var mismatches: [String] = []
    let missing = RehydrateStage.notRehydrated(context)
    for volume in scratchStore.layout.volumeNames() where !missing.contains(volume) {
      guard let latest = context.state.latestRehydrated(volume: volume) else {
        outcome.partial = true
        outcome.lines.append("\(volume): nothing restorable in the scratch store")
        continue
      }
      let image = scratch + "/restored-\(volume).img"
      context.progress("restoring \(volume) at seq \(latest) from the scratch store")
      let restored = try Restore.run(
        store: scratchStore, volume: volume, at: .seq(latest), output: image, overwrite: true)
      let restoredHash = try SHA256Digest.hash(fileAt: image).hex
      context.event("restored \(volume) at seq \(latest)")
      context.progress("reading \(volume) at seq \(latest) from the live store")
      let liveHash: String
      do {
        liveHash = try hashView(VolumeView(live: context.live, volume: volume, at: .seq(latest)))
      } catch let error as ReelError {
        outcome.partial = true
        outcome.lines.append(
          "\(volume): restored seq \(latest) but cannot read it from the live store: \(error.message)")
        continue
      }
      outcome.items += 1
      outcome.bytes += restored.size
      if restoredHash == liveHash {
        outcome.lines.append(
          "\(volume): restored seq \(latest) (\(restored.resolved.time.rfc3339)), \(ByteSize.describe(restored.size)), sha256 \(restoredHash.prefix(16))… = live store"
        )
      } else {
        mismatches.append(
          "\(volume) at seq \(latest): restored sha256 \(restoredHash.prefix(16))…, live store \(liveHash.prefix(16))…")
      }
    }
    if !keepScratch {
      try? FileManager.default.removeItem(atPath: scratch)
      outcome.lines.append("scratch store \(scratch) removed")
    } else {
      outcome.lines.append("scratch store kept at \(scratch)")
    }
    if !mismatches.isEmpty {
      throw ReelError(
        .corrupt, "the drill's restore differs from the live store: " + mismatches.joined(separator: "; "),
        remedy: "run `reel verify` on the archives and `reel store check --read-data`; keep the media")
    }
    if !missing.isEmpty { throw RehydrateStage.notRehydratedError(missing, comparedAlike: outcome.items) }
    outcome.message = "\(outcome.items) volume(s) restored and identical to the live store"
    return outcome
  }

  func hashView(_ view: VolumeView) throws -> String {
    let hasher = SHA256Hasher()
    var offset: UInt64 = 0
    while offset < view.size {
      let length = Int(min(UInt64(4 << 20), view.size - offset))
      let bytes = try view.read(offset: offset, length: length)
      bytes.withUnsafeBytes { hasher.update($0) }
      offset += UInt64(length)
    }
    return hasher.finish().hex
  }
}
