import Foundation
import ReelCore
import ReelJournal
import Testing

@Suite struct BookmarkListTests {
  /// Bookmarks come from the catalog once ingested and from the journal before, so the
  /// list is whole at any moment, and it matches what `reel timeline` shows.
  @Test func listsBookmarksFromTheCatalogAndTheJournalNotYetIngested() throws {
    let sandbox = ReelSandbox()
    try sandbox.reel("init")
    try sandbox.reel("volume", "create", "disk", "--size", "64K")
    let empty = try sandbox.reel("bookmark", "list", "disk")
    #expect(empty.status == 0 && empty.stdout.contains("no bookmarks"), "\(empty.stderr)")

    // The bookmark is seq 2: creating one writes a flush first.
    let created = try sandbox.reel("bookmark", "disk", "before upgrade")
    #expect(created.status == 0, "\(created.stderr)")
    #expect(try sandbox.reel("ingest").status == 0)

    let list = try sandbox.reel("volume", "list", "--json")
    let volumes = try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as! [[String: Any]]
    let volume = VolumeID(string: volumes[0]["id"] as! String)!
    let (writer, _) = try JournalWriter.open(directory: sandbox.store + "/volumes/disk/journal", volume: volume)
    try writer.append(.write(offset: 0, data: [UInt8](repeating: 7, count: 512)))
    try writer.append(.bookmark("after upgrade"))
    try writer.close()

    let text = try sandbox.reel("bookmark", "list", "disk")
    #expect(text.status == 0, "\(text.stderr)")
    let lines = text.stdout.split(separator: "\n")
    #expect(lines.count == 2)
    #expect(lines.first?.hasSuffix("seq 2  before upgrade") == true, "\(text.stdout)")
    #expect(lines.last?.hasSuffix("seq 4  after upgrade") == true, "\(text.stdout)")

    let json = try sandbox.reel("bookmark", "list", "disk", "--json")
    let entries = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as! [[String: Any]]
    #expect(entries.map { $0["label"] as? String } == ["before upgrade", "after upgrade"])
    #expect(entries.map { $0["seq"] as? Int } == [2, 4])
    #expect(entries.allSatisfy { Timestamp(rfc3339: $0["time"] as? String ?? "") != nil })

    // Listing ingests nothing: the catalog still ends at the first bookmark.
    let timeline = try sandbox.json(try sandbox.reel("timeline", "disk", "--json").stdout)
    #expect(
      (timeline["bookmarks"] as! [[String: Any]]).map { $0["label"] as? String } == ["before upgrade", "after upgrade"])

    let missing = try sandbox.reel("bookmark", "list", "nope")
    #expect(missing.status == 66, "\(missing.stderr)")
  }
}
