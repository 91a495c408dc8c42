import ReelCore
import ReelFiles

/// `reel bisect --file PATH`: whether the path exists, its type, and its content (a
/// regular file's bytes, a folder's names and types, a link's target). Times, modes and
/// owners are not part of the answer: the question is when the content changed.
package struct BisectFileQuestion: BisectQuestion {
  package let path: String

  package init(path: String) {
    self.path = path
  }

  package var description: String { "content of \(path)" }

  package func answer(at point: FilesAtPoint) throws -> BisectAnswer {
    let state = try FileHistory.probe(Array(path.utf8), point.files)
    guard state.exists, let kind = state.kind else {
      return BisectAnswer(bytes: Array("absent".utf8), summary: "absent")
    }
    var identity = Array("\(kind.rawValue)\0".utf8)
    var summary: String
    switch kind {
    case .regular:
      summary = "file, \(state.size) bytes"
    case .directory:
      summary = "folder"
    case .symlink:
      summary = "symbolic link to \(FilePath.display(state.target ?? []))"
      identity += state.target ?? []
    default:
      summary = FileKinds.phrase(kind)
    }
    if let hash = state.contentHash {
      identity += hash.bytes
      summary += ", sha256 \(hash.description.prefix(12))"
    }
    return BisectAnswer(bytes: identity, summary: summary)
  }

  package func command(volume: String, seq: Seq) -> String {
    "reel files get \(shellQuoted(volume)) --at seq:\(seq) \(shellQuoted(path)) --to DIR"
  }
}
