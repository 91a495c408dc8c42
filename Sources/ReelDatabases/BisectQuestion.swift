import ReelCodec
import ReelCore
import ReelFiles

/// What a question answered at one point: the bytes that are compared (kept as their
/// SHA-256) and a short text for people. Two answers are the same when their digests are.
package struct BisectAnswer: Sendable, Equatable {
  package var digest: SHA256Digest
  /// One line, at most about 100 characters: "count(*) = 300", "file, 1234 bytes".
  package var summary: String
  /// True when the question could not be answered there (the answer is the error).
  package var failed: Bool

  /// An answer whose identity is `bytes` (hashed) and whose text is `summary`.
  package init(bytes: [UInt8], summary: String, failed: Bool = false) {
    let hasher = SHA256Hasher()
    hasher.update(bytes)
    digest = hasher.finish()
    self.summary = BisectAnswer.shortened(summary)
    self.failed = failed
  }

  /// The answer of a point where asking failed: the error is the answer. Its identity is
  /// the kind of error and its message without the point's own name, so that one cause at
  /// two points is one answer.
  package init(error: ReelError) {
    let message = BisectAnswer.withoutPlace(error.message)
    self.init(
      bytes: Array("error\0\(error.kind.rawValue)\0\(message)".utf8), summary: "error: " + message, failed: true)
  }

  package static func == (left: BisectAnswer, right: BisectAnswer) -> Bool { left.digest == right.digest }

  /// The digest's first 12 hex digits, enough to tell answers apart in a listing.
  package var shortDigest: String { String(digest.description.prefix(12)) }

  static func shortened(_ text: String, limit: Int = 100) -> String {
    let oneLine = text.split(whereSeparator: \.isNewline).joined(separator: " ⏎ ")
    guard oneLine.count > limit else { return oneLine }
    return oneLine.prefix(limit - 1) + "…"
  }

  /// Reading errors name the point ("volume vm at seq:42 holds…", "(volume vm at seq 42,
  /// …)"); the listing already says where each answer was asked.
  static func withoutPlace(_ message: String) -> String {
    var text = message
    for pattern in [#" \(volume [^ ]+ at seq [0-9]+, [^)]*\)"#, #" at seq:[0-9]+"#] {
      while let range = text.range(of: pattern, options: .regularExpression) {
        text.removeSubrange(range)
      }
    }
    return text
  }
}

/// A question `reel bisect` asks of the volume at each point it evaluates.
package protocol BisectQuestion {
  /// What is asked, for the listing: "content of /var/mail/alice", "SELECT count(*) …".
  var description: String { get }
  /// The answer in the file system at one point. Errors a point can cause (a file system or
  /// database unreadable there) are thrown as `ReelError`s; `Bisect` turns them into answers
  /// except at the start of the range.
  func answer(at point: FilesAtPoint) throws -> BisectAnswer
  /// The command that shows the answer as of `seq`, e.g. `reel files get vm --at seq:41 /x
  /// --to DIR`, printed for "as of just before".
  func command(volume: String, seq: Seq) -> String
}

/// Quotes `text` for a POSIX shell when it needs it, so a printed command can be pasted.
package func shellQuoted(_ text: String) -> String {
  let plain = text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_./:=@%+,".contains($0)) }
  if plain && !text.isEmpty { return text }
  return "'" + text.replacingOccurrences(of: "'", with: #"'\''"#) + "'"
}
