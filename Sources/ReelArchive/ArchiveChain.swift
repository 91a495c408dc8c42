import Foundation
import ReelCore

/// Chain continuity across archives: each archive's parent must be present, cover the seqs
/// just before it, and belong to the same volume and chain.
package enum ArchiveChain {
  /// Problems with the chains `manifests` form; a parent not among them is looked up in
  /// `folders` (every `*.reel.tar` there) before it is called missing.
  package static func problems(of manifests: [ArchiveManifest], searching folders: [String] = [])
    -> [ArchiveProblem]
  {
    var known = Dictionary(manifests.map { ($0.archiveID, $0) }, uniquingKeysWith: { first, _ in first })
    var searched = false
    var problems: [ArchiveProblem] = []
    for manifest in manifests {
      guard let parentID = manifest.parentID else {
        if manifest.chainIndex != 0 || !manifest.contents.base || manifest.chainID != manifest.archiveID {
          problems.append(problem(manifest, "has no parent but is not the first archive of its chain"))
        }
        continue
      }
      if known[parentID] == nil && !searched {
        searched = true
        for folder in folders {
          for name in (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
          where name.hasSuffix(ArchiveFormat.fileSuffix) {
            if let found = try? ArchiveVerifier.readManifest(path: folder + "/" + name) {
              known[found.archiveID] = known[found.archiveID] ?? found
            }
          }
        }
      }
      guard let parent = known[parentID] else {
        problems.append(
          problem(
            manifest,
            "its parent archive \(parentID) (chain \(manifest.chainID), number \(manifest.chainIndex - 1), history up to seq \(manifest.range.fromSeq)) is missing; restores past seq \(manifest.range.fromSeq) need it"
          ))
        continue
      }
      if parent.volume.id != manifest.volume.id || parent.chainID != manifest.chainID
        || parent.chainIndex + 1 != manifest.chainIndex || parent.range.untilSeq != manifest.range.fromSeq
      {
        problems.append(
          problem(
            manifest,
            "does not continue its parent \(parentID): the parent ends at seq \(parent.range.untilSeq) (chain \(parent.chainID) number \(parent.chainIndex)), this starts after seq \(manifest.range.fromSeq)"
          ))
      }
    }
    return problems
  }

  private static func problem(_ manifest: ArchiveManifest, _ message: String) -> ArchiveProblem {
    ArchiveProblem(
      member: ArchiveFormat.fileName(
        volume: manifest.volume.name, fromSeq: manifest.range.fromSeq, untilSeq: manifest.range.untilSeq,
        archiveID: manifest.archiveID), offset: nil, message: message)
  }
}
