import Foundation
import GRDB
import ReelCore
import ReelTestSupport
import Testing

@testable import ReelStore

/// `Catalog.lastRecord`: the point of an instant, found by binary search over the
/// record_time key (v8 keeps no index by time), with gaps in the seqs as prune leaves them.
@Suite struct RecordTimeSearchTests {
  @Test func theNewestRecordAtOrBeforeAnInstantIsFoundAcrossGaps() throws {
    let folder = TemporaryDirectory("record-time")
    let catalog = try Catalog(path: folder.path + "/catalog.sqlite")
    // Seqs 1…400 minus pruned ranges, times strictly increasing by a varying step.
    var records: [(seq: Int64, time: Int64)] = []
    var time: Int64 = 1_000
    for seq in Int64(1)...400 where !(50..<120).contains(seq) && !(300..<301).contains(seq) && seq % 7 != 3 {
      time += 1 + seq % 5
      records.append((seq, time))
    }
    try catalog.database.write { db in
      try Catalog.numberVolume(db, "volume-a")
      try Catalog.numberVolume(db, "volume-b")
      for record in records {
        try db.execute(
          sql: "INSERT INTO record_time (volume, seq, time_ns, kind) VALUES (\(Catalog.volumeNumber), ?, ?, 1)",
          arguments: ["volume-a", record.seq, record.time])
      }
      // Another volume's records around the same times must not be found.
      try db.execute(
        sql: "INSERT INTO record_time (volume, seq, time_ns, kind) VALUES (\(Catalog.volumeNumber), 500, 1500, 1)",
        arguments: ["volume-b"])
    }
    try catalog.database.read { db in
      for probe in Int64(990)...(time + 3) {
        let expected = records.last { $0.time <= probe }
        let found = try Catalog.lastRecord(db, volume: "volume-a", atOrBefore: probe)
        #expect(found?.seq == expected?.seq && found?.time == expected?.time, "time \(probe)")
      }
      #expect(try Catalog.lastRecord(db, volume: "volume-c", atOrBefore: .max) == nil)
      #expect(try Catalog.lastRecord(db, volume: "volume-b", atOrBefore: 1499) == nil)
      #expect(try Catalog.lastRecord(db, volume: "volume-b", atOrBefore: 1500)?.seq == 500)
    }
  }
}

/// A catalog a newer Reel migrated is refused with a clear error and left as it is.
@Suite struct NewerCatalogTests {
  @Test func aCatalogWithSchemaChangesThisReelDoesNotKnowIsRefusedAndLeftAlone() throws {
    let folder = TemporaryDirectory("newer-catalog")
    let path = folder.path + "/catalog.sqlite"
    _ = try Catalog(path: path)
    let queue = try DatabaseQueue(path: path)
    try queue.write { db in
      try db.execute(sql: "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')")
    }
    try queue.close()
    let before = try Data(contentsOf: URL(fileURLWithPath: path))
    let refusal = #expect(throws: ReelError.self) { try Catalog(path: path) }
    #expect(refusal?.kind == .incompatible)
    #expect(refusal?.message.contains("v99-from-the-future") == true, "\(String(describing: refusal))")
    #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
  }
}
