import Foundation
import ReelCore
import ReelIO
import ReelJournal

/// A bookmark that was written.
package struct BookmarkResult: Sendable, Equatable {
  package var volume: String
  package var label: String
  package var seq: Seq
  package var time: Timestamp
  /// True when the running `reel serve` wrote it; false when it was written directly.
  package var throughServer: Bool
}

/// Named, crash-consistent points in a volume's journal.
package enum Bookmarks {
  static let maximumLabelBytes = 200

  /// Writes bookmark `label` into `volume`'s journal: through the control socket of the
  /// `reel serve` that has the volume, or directly when no server has it.
  package static func create(layout: StoreLayout, volume: String, label: String) throws -> BookmarkResult {
    try validate(label: label)
    let descriptor = try layout.descriptor(of: volume)
    let controlPath = layout.volumeDirectory(volume) + "/" + ControlProtocol.socketName
    if let record = try throughServer(controlPath: controlPath, label: label) {
      return BookmarkResult(volume: volume, label: label, seq: record.seq, time: record.time, throughServer: true)
    }
    let directory = layout.journalDirectory(volume)
    let journal = try JournalWriter.openWithoutServer(
      directory: directory, volume: descriptor.id, name: volume, controlSocket: controlPath)
    var result: BookmarkResult?
    var failure: Error?
    do {
      let existing = try JournalReader(directory: directory, volume: descriptor.id).summarize().bookmarks
      guard !existing.contains(where: { $0.label == label }) else { throw duplicate(label, volume: volume) }
      try journal.append(.flush)
      try journal.sync()
      let record = try journal.appendDurably(.bookmark(label))
      result = BookmarkResult(volume: volume, label: label, seq: record.seq, time: record.time, throughServer: false)
    } catch {
      failure = error
    }
    try journal.close()
    if let failure { throw failure }
    return result!
  }

  /// Labels are 1 to 200 UTF-8 bytes on one line, and must read back as a bookmark when
  /// given as a point (`--at LABEL`), so `latest`, `seq:N` and times are refused.
  package static func validate(label: String) throws {
    let bytes = label.utf8.count
    guard bytes >= 1, bytes <= maximumLabelBytes else {
      throw ReelError(
        .usage,
        "a bookmark label must be 1 to \(maximumLabelBytes) bytes of UTF-8; \"\(label.prefix(40))\" has \(bytes)",
        remedy: "choose a shorter label")
    }
    guard !label.contains(where: { $0 == "\n" || $0 == "\r" || $0 == "\0" }) else {
      throw ReelError(.usage, "a bookmark label must be a single line", remedy: "remove the line breaks from the label")
    }
    // A label that reads as a mistyped time would never be found by `--at LABEL`.
    let read = try? Point.parse(label)
    guard let read, read.form == .bookmark, read.point == .bookmark(label) else {
      throw ReelError(
        .usage, "\"\(label)\" would be read as \(read.map(\.point.description) ?? "a time"), not as a bookmark label",
        remedy:
          "choose a label that is not `latest`, `seq:N`, a time, a relative time such as -10m or \"2 hours ago\", or starting with `bookmark:`"
      )
    }
  }

  static func duplicate(_ label: String, volume: String) -> ReelError {
    ReelError(
      .alreadyExists, "volume \(volume) already has a bookmark \"\(label)\"",
      remedy: "choose another label; `reel timeline \(volume)` lists the existing ones")
  }

  /// Asks the server over the control socket; nil when no server listens there.
  private static func throughServer(controlPath: String, label: String) throws -> (seq: Seq, time: Timestamp)? {
    guard
      let line = try ControlProtocol.ask(
        "BOOKMARK \(label)\n", at: controlPath, unanswered: "check the server's log; it may be shutting down",
        interrupted: "while writing the bookmark")
    else { return nil }
    return try ControlProtocol.parseReply(line)
  }

}
