import Foundation
import ReelCore
import ReelJournal
import ReelTestSupport
import Testing

@Suite(.serialized) struct BookmarkTests {
  @Test func bookmarksWhileServedAreCrashConsistentAndUnique() throws {
    let store = try TestStore()
    try store.createVolume("vm", size: "8M")
    let server = try ServerProcess(store: store, volumes: ["vm"])
    try runChecked(
      try tool("qemu-io"), ["-f", "raw", "-t", "writeback", store.uri("vm"), "-c", "write -P 0x33 0 1M"])
    let first = try store.reelCommand(["bookmark", "vm", "before upgrade", "--json"])
    try #require(first.succeeded, "\(first.stderr)")
    let json = try #require(try JSONSerialization.jsonObject(with: Data(first.stdout.utf8)) as? [String: Any])
    #expect(json["through_server"] as? Bool == true)
    let seq = try #require((json["seq"] as? NSNumber)?.uint64Value)

    let again = try store.reelCommand(["bookmark", "vm", "before upgrade"])
    #expect(again.status == 73)
    #expect(again.stderr.contains("already has a bookmark \"before upgrade\""))
    for bad in ["", "latest", "seq:4", "2026-01-01T00:00:00Z", "two\nlines", String(repeating: "x", count: 201)] {
      let refused = try store.reelCommand(["bookmark", "vm", bad])
      #expect(refused.status == 64, "label \(bad.debugDescription) should be refused: \(refused.stderr)")
    }
    #expect(server.stop() == 0)

    let records = try store.records("vm")
    let bookmark = try #require(records.first { $0.kind == .bookmark })
    #expect(bookmark.seq == seq)
    #expect(bookmark.label == "before upgrade")
    // The flush made durable before the bookmark covers the write acknowledged earlier.
    #expect(records.last { $0.seq < seq }?.kind == .flush)
    #expect(records.contains { $0.kind == .write && $0.seq < seq })
  }

  @Test func bookmarksWhenNotServedGoStraightToTheJournal() throws {
    let store = try TestStore()
    try store.createVolume("idle", size: "8M")
    let result = try store.reelCommand(["bookmark", "idle", "nightly", "--json"])
    try #require(result.succeeded, "\(result.stderr)")
    #expect(result.stdout.contains("\"through_server\":false"))
    let duplicate = try store.reelCommand(["bookmark", "idle", "nightly"])
    #expect(duplicate.status == 73)
    let plain = try store.reelCommand(["bookmark", "idle", "weekly"])
    #expect(plain.stdout.hasPrefix("Bookmark weekly at seq "))
    let journal = try store.journal("idle")
    #expect(journal.segments.allSatisfy { $0.summary != nil })
    #expect(try journal.summarize().bookmarks.map(\.label) == ["nightly", "weekly"])

    // Serving afterwards starts from the bookmarks and refuses their labels too.
    let server = try ServerProcess(store: store, volumes: ["idle"])
    let served = try store.reelCommand(["bookmark", "idle", "nightly"])
    #expect(served.status == 73)
    #expect(server.stop() == 0)
  }

  @Test func aLockedJournalWithoutControlSocketIsExplained() throws {
    let store = try TestStore()
    try store.createVolume("vm", size: "8M")
    let server = try ServerProcess(store: store, volumes: ["vm"])
    defer { server.stop() }
    try FileManager.default.removeItem(atPath: store.layout.volumeDirectory("vm") + "/control.sock")
    let result = try store.reelCommand(["bookmark", "vm", "lost"])
    #expect(result.status == 73)
    #expect(result.stderr.contains("does not answer"), "\(result.stderr)")
    #expect(result.stderr.contains("pid \(server.pid)"), "\(result.stderr)")
  }

  /// Another process holds the journal but no server answers on the control socket: the
  /// error says so (told apart by the lock's errno, not by the words of a message).
  @Test func aJournalHeldByAProcessThatDoesNotAnswerIsNamed() throws {
    let store = try TestStore()
    try store.createVolume("held", size: "1M")
    let lock = open(store.layout.journalDirectory("held") + "/writer.lock", O_RDWR | O_CREAT, 0o600)
    try #require(lock >= 0)
    defer { close(lock) }
    try #require(flock(lock, LOCK_EX) == 0)
    let refused = try store.reelCommand(["bookmark", "held", "while-held"])
    #expect(refused.status == 73)
    #expect(refused.stderr.contains("is open in another process"), "\(refused.stderr)")
    #expect(refused.stderr.contains("does not answer on"), "\(refused.stderr)")
  }
}
