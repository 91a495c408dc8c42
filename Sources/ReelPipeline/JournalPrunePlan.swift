import Foundation
import ReelArchive
import ReelCore
import ReelIO
import ReelJournal
import ReelMedia
import ReelStore

/// What may happen to one journal segment when the journal is pruned.
struct JournalSegmentDecision: Sendable, Equatable {
  var number: UInt64
  var path: String
  var firstSeq: Seq
  /// Nil for the open segment (the writer's).
  var lastSeq: Seq?
  var size: UInt64
  var deletable: Bool
  /// Why it stays (or, when deletable, what holds its records).
  var reason: String
  /// False for a closed segment without records.
  var holdsRecords: Bool

  init(_ segment: SegmentFile, deletable: Bool = false, reason: String = "") {
    number = segment.number
    path = segment.path
    firstSeq = segment.header.firstSeq
    lastSeq = segment.summary?.lastSeq
    size = segment.size
    holdsRecords = segment.summary.map { $0.recordCount > 0 && $0.lastSeq >= segment.header.firstSeq } ?? true
    self.deletable = deletable
    self.reason = reason
  }
}

struct JournalPruneReport: Sendable, Equatable {
  var volume: String
  var sealedSeq: Seq
  var deleted: [JournalSegmentDecision]
  var kept: [JournalSegmentDecision]
  var bytesFreed: UInt64 { deleted.reduce(0) { $0 + $1.size } }
}

extension LiveStore {
  /// Decides, oldest segment first, which journal segments of a volume may go: only a
  /// closed segment that is not the newest, whose every record is sealed (seq ≤ sealed
  /// seq), held by archives that were verified and have at least `copies` verified copies
  /// on media (of `mediaSets`, when given). The first segment that must stay ends the
  /// list of deletable ones, so the journal never gets a gap.
  func journalPrunePlan(volume name: String, copies: Int, mediaSets: [String] = []) throws
    -> [JournalSegmentDecision]
  {
    let descriptor = try store.layout.descriptor(of: name)
    let reader = try JournalReader(directory: store.layout.journalDirectory(name), volume: descriptor.id)
    let sealed = try sealedSeq(of: descriptor)
    let archives = try sealedArchives(of: descriptor)
    let catalog = store.catalog
    // A copy whose newest keyed check on media failed does not count.
    let failed = Set(try catalog.mediaChecks().filter { !$0.ok }.map(\.key))
    var copyCounts: [String: Int] = [:]
    for copy in try catalog.archiveCopies() where mediaSets.isEmpty || mediaSets.contains(copy.mediaSet) {
      let key = MediaCheck(
        archiveID: copy.archiveID, cartridgeID: copy.cartridgeID, tapeFile: copy.tapeFile, checked: .now(), ok: true,
        detail: nil
      ).key
      if !failed.contains(key) { copyCounts[copy.archiveID, default: 0] += 1 }
    }
    var decisions: [JournalSegmentDecision] = []
    var blocked = false
    for (index, segment) in reader.segments.enumerated() {
      var decision = JournalSegmentDecision(segment)
      func keep(_ reason: String) {
        decision.reason = reason
        blocked = true
      }
      if blocked {
        decision.reason = "an older segment stays"
      } else if index == reader.segments.count - 1 {
        keep("newest segment (the writer's)")
      } else if let summary = segment.summary {
        if !decision.holdsRecords {
          decision.deletable = true
          decision.reason = "holds no records"
        } else if summary.lastSeq > sealed {
          keep("records up to seq \(summary.lastSeq) are not all sealed (sealed through seq \(sealed))")
        } else {
          let first = segment.header.firstSeq
          let holding = archives.filter { $0.fromSeq < summary.lastSeq && $0.untilSeq >= first }
          var covered = first - 1
          for archive in holding.sorted(by: { $0.fromSeq < $1.fromSeq }) where archive.fromSeq <= covered {
            covered = max(covered, archive.untilSeq)
          }
          if covered < summary.lastSeq {
            keep("no sealed archive in the catalog holds seq \(covered + 1)…\(summary.lastSeq)")
          } else if let unverified = holding.first(where: { $0.verified == nil }) {
            keep("archive \(unverified.fileName) is not verified")
          } else if let few = holding.first(where: { copyCounts[$0.id, default: 0] < copies }) {
            keep(
              "archive \(few.fileName) has \(copyCounts[few.id, default: 0]) verified cop\(copyCounts[few.id, default: 0] == 1 ? "y" : "ies") on media"
                + (mediaSets.isEmpty ? "" : " (\(mediaSets.joined(separator: ", ")))") + ", \(copies) required")
          } else {
            decision.deletable = true
            decision.reason = "held by " + holding.map(\.fileName).joined(separator: ", ")
          }
        }
      } else {
        keep("not closed")
      }
      decisions.append(decision)
    }
    return decisions
  }

  /// Deletes the segments `journalPrunePlan` allows: the store deletes, under its lock and
  /// oldest first, the segments holding nothing after the last record the plan found
  /// protected. `deleted` is told of each one once it is gone.
  func pruneJournal(
    volume name: String, copies: Int, mediaSets: [String] = [],
    deleted: (JournalSegmentDecision) throws -> Void = { _ in }
  ) throws -> JournalPruneReport {
    let descriptor = try store.layout.descriptor(of: name)
    let plan = try journalPrunePlan(volume: name, copies: copies, mediaSets: mediaSets)
    let deletable = plan.filter(\.deletable)
    let protected = deletable.filter(\.holdsRecords).compactMap(\.lastSeq).max() ?? 0
    var report = JournalPruneReport(
      volume: name, sealedSeq: try sealedSeq(of: descriptor), deleted: [], kept: plan.filter { !$0.deletable })
    try deleteJournalSegments(volume: name, through: protected) { segment in
      let decision =
        deletable.first { $0.number == segment.number }
        ?? JournalSegmentDecision(segment, deletable: true, reason: "holds no records")
      report.deleted.append(decision)
      try deleted(decision)
    }
    return report
  }
}
