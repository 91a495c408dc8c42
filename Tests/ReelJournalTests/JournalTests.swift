import Foundation
import ReelCore
import ReelTestSupport
import Testing

@testable import ReelJournal

/// A mixed history: writes of several sizes, trims, zeroes, flushes and bookmarks.
func sampleEntries(_ count: Int) -> [JournalEntry] {
  (0..<count).map { index in
    switch index % 7 {
    case 0, 1, 2: .write(offset: UInt64(index) * 4096, data: pattern(index, count: 512 * (1 + index % 5)))
    case 3: .trim(offset: UInt64(index) * 4096, length: 8192)
    case 4: .writeZeroes(offset: UInt64(index) * 512, length: 4096, flags: .forceUnitAccess)
    case 5: .flush
    default: .bookmark("point \(index) ✓")
    }
  }
}

func expectMatches(_ records: [JournalRecord], _ entries: [JournalEntry], firstSeq: Seq = 1) {
  #expect(records.count == entries.count)
  for (index, (record, entry)) in zip(records, entries).enumerated() {
    #expect(record.seq == firstSeq + Seq(index))
    #expect(record.kind == entry.kind)
    #expect(record.flags == entry.flags)
    #expect(record.offset == entry.offset)
    #expect(record.length == entry.length)
    #expect(record.payload == entry.payload)
  }
}

@Suite struct JournalRoundTripTests {
  let volume = VolumeID()

  @Test func appendSyncCloseAndReadBack() throws {
    let dir = TemporaryDirectory()
    let entries = sampleEntries(60)
    let (writer, report) = try JournalWriter.open(directory: dir.path, volume: volume)
    #expect(report.lastSeq == 0 && report.tornTail == nil)
    var seqs: [Seq] = []
    for entry in entries { seqs.append(try writer.append(entry).seq) }
    #expect(seqs == Array(1...60))
    try writer.sync()
    #expect(writer.lastDurableSeq == 60)
    try writer.close()
    let records = try readAll(dir.path, volume)
    expectMatches(records, entries)
    #expect(records.last(where: { $0.kind == .bookmark })?.label == "point 55 ✓")
    let summary = try JournalReader(directory: dir.path, volume: volume).summarize()
    #expect(summary.recordCount == 60 && summary.segmentCount == 1 && !summary.openSegment)
    #expect(summary.bookmarks.count == entries.filter { $0.kind == .bookmark }.count)
  }

  /// The placement handed out while appending points at the payload, in whatever
  /// segment it went to, and stays readable after the writer moved on; writeback kicks
  /// every few KiB change nothing that is read back.
  @Test func placementsPointAtPayloadsAcrossRotationsAndWriteback() throws {
    let dir = TemporaryDirectory()
    var options = JournalOptions()
    options.segmentSizeLimit = 16 << 10
    options.writebackBytes = 4096
    let entries = sampleEntries(200)
    let (writer, _) = try JournalWriter.open(directory: dir.path, volume: volume, options: options)
    var placed: [(seq: Seq, placement: RecordPlacement)] = []
    for entry in entries {
      let appended = try writer.append(entry) { record, placement in placed.append((record.seq, placement)) }
      #expect(placed.last?.seq == appended.seq)
    }
    try writer.close()
    #expect(placed.map(\.seq) == Array(1...200))
    #expect(Set(placed.map { ObjectIdentifier($0.placement.file) }).count > 5, "the records span several segments")
    for (index, entry) in entries.enumerated() where !entry.payload.isEmpty {
      let placement = placed[index].placement
      #expect(try placement.file.read(at: placement.payloadOffset, count: entry.payload.count) == entry.payload)
    }
    expectMatches(try readAll(dir.path, volume), entries)
  }

  /// A reader opened from a seq opens the segment holding it and those after, and reads
  /// the same records from there as a reader of the whole journal; a segment missing by
  /// name before it is still refused.
  @Test func aReaderFromASeqOpensOnlyTheSegmentsFromTheOneHoldingIt() throws {
    let dir = TemporaryDirectory()
    var options = JournalOptions()
    options.segmentSizeLimit = 8 << 10
    let (writer, _) = try JournalWriter.open(directory: dir.path, volume: volume, options: options)
    for entry in sampleEntries(300) { try writer.append(entry) }
    try writer.close()
    let whole = try JournalReader(directory: dir.path, volume: volume)
    #expect(whole.segments.count > 10, "the records span many segments")
    for fromSeq in [1, 2, 77, 150, 151, 299, 300, 301, 1000] as [Seq] {
      let partial = try JournalReader(directory: dir.path, volume: volume, fromSeq: fromSeq)
      let holding = whole.segments.lastIndex { $0.header.firstSeq <= fromSeq } ?? 0
      #expect(partial.segments.map(\.number) == whole.segments[holding...].map(\.number), "from seq \(fromSeq)")
      var fromWhole: [Seq] = []
      try whole.forEachRecord(fromSeq: fromSeq) { record in
        fromWhole.append(record.seq)
        return true
      }
      var fromPartial: [Seq] = []
      try partial.forEachRecord(fromSeq: fromSeq) { record in
        fromPartial.append(record.seq)
        return true
      }
      #expect(fromPartial == fromWhole, "from seq \(fromSeq)")
    }
    unlink(whole.segments[1].path)
    let error = #expect(throws: ReelError.self) { try JournalReader(directory: dir.path, volume: volume, fromSeq: 299) }
    #expect(error?.message.contains("is missing between") == true)
  }

  @Test func reopenContinuesSeqInANewSegment() throws {
    let dir = TemporaryDirectory()
    let first = sampleEntries(10)
    let (writer, _) = try JournalWriter.open(directory: dir.path, volume: volume)
    for entry in first { try writer.append(entry) }
    try writer.close()
    let (again, report) = try JournalWriter.open(directory: dir.path, volume: volume)
    #expect(report.lastSeq == 10 && report.closedSegment == nil)
    #expect(try again.append(.flush).seq == 11)
    try again.close()
    #expect(segmentFiles(dir.path).count == 2)
    let records = try readAll(dir.path, volume)
    #expect(records.map(\.seq) == Array(1...11))
  }

  @Test func readFromSeqAndFromTime() throws {
    let dir = TemporaryDirectory()
    let clock = ManualClock()
    var options = JournalOptions()
    options.clock = { clock.read() }
    options.segmentSizeLimit = 4096
    let (writer, _) = try JournalWriter.open(directory: dir.path, volume: volume, options: options)
    var times: [Timestamp] = []
    for entry in sampleEntries(40) { times.append(try writer.append(entry).time) }
    try writer.close()
    let reader = try JournalReader(directory: dir.path, volume: volume)
    var fromSeq: [Seq] = []
    try reader.forEachRecord(fromSeq: 25) {
      fromSeq.append($0.seq); return true
    }
    #expect(fromSeq == Array(25...40))
    var fromTime: [Seq] = []
    try reader.forEachRecord(fromTime: times[30]) {
      fromTime.append($0.seq); return true
    }
    #expect(fromTime == Array(31...40))
  }

  @Test func concurrentAppendersShareSyncs() throws {
    let dir = TemporaryDirectory()
    let (writer, _) = try JournalWriter.open(directory: dir.path, volume: volume)
    let threads = 4
    let perThread = 50
    DispatchQueue.concurrentPerform(iterations: threads) { thread in
      for index in 0..<perThread {
        let data = pattern(thread * 1000 + index, count: 700)
        _ = try! writer.append(.write(offset: UInt64(thread * 1000 + index) * 4096, data: data))
        if index % 5 == 0 { try! writer.sync() }
      }
    }
    try writer.sync()
    #expect(writer.lastDurableSeq == Seq(threads * perThread))
    try writer.close()
    let records = try readAll(dir.path, volume)
    #expect(records.map(\.seq) == Array(1...Seq(threads * perThread)))
    for record in records {
      let index = Int(record.offset / 4096)
      #expect(record.payload == pattern(index, count: 700))
    }
  }
}

@Suite struct JournalTimeAndRotationTests {
  let volume = VolumeID()

  @Test func clockSteppingBackKeepsTimeIncreasing() throws {
    let dir = TemporaryDirectory()
    let clock = ManualClock()
    var options = JournalOptions()
    options.clock = { clock.read() }
    let (writer, _) = try JournalWriter.open(directory: dir.path, volume: volume, options: options)
    let before = try writer.append(.flush).time
    clock.set(before.nanoseconds - 3_600_000_000_000)  // an NTP step an hour back
    let after = try (0..<5).map { _ in try writer.append(.flush).time }
    #expect(after.allSatisfy { $0 > before })
    #expect(zip(after, after.dropFirst()).allSatisfy { $0 < $1 })
    try writer.close()
    // Across a restart too: the clock is still behind the journal's last time.
    let (again, _) = try JournalWriter.open(directory: dir.path, volume: volume, options: options)
    let resumed = try again.append(.flush).time
    #expect(resumed > after.last!)
    try again.close()
    let times = try readAll(dir.path, volume).map(\.time)
    #expect(zip(times, times.dropFirst()).allSatisfy { $0 < $1 })
  }

  @Test func rotatesBySize() throws {
    let dir = TemporaryDirectory()
    var options = JournalOptions()
    options.segmentSizeLimit = 16 * 1024
    let (writer, _) = try JournalWriter.open(directory: dir.path, volume: volume, options: options)
    let entries = (0..<50).map { JournalEntry.write(offset: UInt64($0) * 4096, data: pattern($0, count: 4096)) }
    for entry in entries { try writer.append(entry) }
    try writer.close()
    let files = segmentFiles(dir.path)
    #expect(files.count >= 12)
    for file in files {
      let size = (try FileManager.default.attributesOfItem(atPath: file)[.size] as! NSNumber).uint64Value
      #expect(size <= options.segmentSizeLimit)
    }
    expectMatches(try readAll(dir.path, volume), entries)
  }

  @Test func rotatesByAge() throws {
    let dir = TemporaryDirectory()
    let clock = ManualClock(step: 0)
    var options = JournalOptions()
    options.clock = { clock.read() }
    options.segmentAgeLimit = .seconds(60)
    let (writer, _) = try JournalWriter.open(directory: dir.path, volume: volume, options: options)
    let start = clock.read().nanoseconds
    for minute in 0..<5 {
      clock.set(start + Int64(minute) * 61_000_000_000)
      try writer.append(.flush)
      try writer.append(.flush)
    }
    try writer.close()
    #expect(segmentFiles(dir.path).count == 5)
    #expect(try readAll(dir.path, volume).count == 10)
  }
}

@Suite struct JournalRecoveryTests {
  let volume = VolumeID()

  /// A journal left open (as by a crash) with `count` records; returns the offsets at
  /// which each record starts and the segment path.
  func openJournal(_ dir: String, count: Int) throws -> (segment: String, starts: [UInt64], entries: [JournalEntry]) {
    let entries = sampleEntries(count)
    let (writer, _) = try JournalWriter.open(directory: dir, volume: volume)
    for entry in entries { try writer.append(entry) }
    try writer.sync()
    let segment = segmentFiles(dir).last!
    var starts: [UInt64] = []
    var offset = UInt64(SegmentFormat.headerSize)
    for entry in entries {
      starts.append(offset)
      offset += UInt64(SegmentFormat.recordHeaderSize + entry.payload.count)
    }
    return (segment, starts, entries)
  }

  @Test func tornTailCutAtEveryByteOfTheLastRecord() throws {
    let original = TemporaryDirectory()
    let (segment, starts, entries) = try openJournal(original.path, count: 8)
    let full = fileBytes(segment)
    let lastStart = Int(starts.last!)
    let scratch = TemporaryDirectory()
    for cut in lastStart..<full.count {
      let copy = scratch.path + "/j"
      try copyDirectory(original.path, copy)
      writeBytes(copy + "/" + (segment as NSString).lastPathComponent, Array(full[..<cut]))
      let (writer, report) = try JournalWriter.open(directory: copy, volume: volume)
      if cut == lastStart {
        #expect(report.tornTail == nil, "cut at \(cut)")
      } else {
        let torn = try #require(report.tornTail, "cut at \(cut)")
        #expect(torn.offset == UInt64(lastStart))
        #expect(torn.removedBytes == UInt64(cut - lastStart))
        #expect(fileBytes(torn.quarantinePath) == Array(full[lastStart..<cut]))
      }
      #expect(report.lastSeq == 7)
      #expect(try writer.append(.flush).seq == 8)
      try writer.close()
      let records = try readAll(copy, volume)
      expectMatches(Array(records.prefix(7)), Array(entries.prefix(7)))
      #expect(records.count == 8 && records.last?.kind == .flush)
    }
  }

  @Test func flippedBitInAClosedSegmentIsAlwaysDetected() throws {
    let dir = TemporaryDirectory()
    let entries = [JournalEntry.write(offset: 0, data: pattern(1, count: 64)), .bookmark("b"), .flush]
    let (writer, _) = try JournalWriter.open(directory: dir.path, volume: volume)
    for entry in entries { try writer.append(entry) }
    try writer.close()
    let segment = segmentFiles(dir.path)[0]
    let original = fileBytes(segment)
    for index in 0..<original.count {
      var damaged = original
      damaged[index] ^= UInt8(1 << (index % 8))
      writeBytes(segment, damaged)
      #expect(throws: ReelError.self, "bit flipped in byte \(index)") { try readAll(dir.path, volume) }
    }
    writeBytes(segment, original)
    #expect(try readAll(dir.path, volume).count == 3)
  }

  @Test func flippedBitBeforeTheTailOfAnOpenSegmentIsAnErrorNamingTheOffset() throws {
    let dir = TemporaryDirectory()
    let (segment, starts, _) = try openJournal(dir.path, count: 8)
    let original = fileBytes(segment)
    for record in 0..<7 {
      for probe in [0, 5, 20, 47, 48, 60] where Int(starts[record]) + probe < Int(starts[record + 1]) {
        var damaged = original
        damaged[Int(starts[record]) + probe] ^= 0x10
        writeBytes(segment, damaged)
        let error = #expect(throws: ReelError.self) { try JournalWriter.open(directory: dir.path, volume: volume) }
        #expect(error?.kind == .corrupt)
        #expect(error?.message.contains(segment) == true)
        #expect(error?.message.contains("offset \(starts[record])") == true, "\(error?.message ?? "")")
        // Recovery refused and changed nothing.
        #expect(fileBytes(segment) == damaged)
      }
    }
  }

  @Test func flippedBitInTheLastRecordOfAnOpenSegmentIsReportedAsTornTail() throws {
    let dir = TemporaryDirectory()
    let (segment, starts, _) = try openJournal(dir.path, count: 4)
    var damaged = fileBytes(segment)
    damaged[Int(starts[3]) + 20] ^= 1
    writeBytes(segment, damaged)
    let (writer, report) = try JournalWriter.open(directory: dir.path, volume: volume)
    #expect(report.tornTail?.offset == starts[3])
    #expect(report.tornTail?.reason.contains("checksum") == true)
    try writer.close()
    #expect(try readAll(dir.path, volume).count == 3)
  }

  @Test func readerTreatsAnIncompleteTailAsNotYetWritten() throws {
    let dir = TemporaryDirectory()
    let (segment, starts, _) = try openJournal(dir.path, count: 5)
    let full = fileBytes(segment)
    writeBytes(segment, Array(full[..<(Int(starts[4]) + 10)]))
    #expect(try readAll(dir.path, volume).count == 4)
  }
}

@Suite struct JournalBadInputTests {
  let volume = VolumeID()

  func closedJournal(_ dir: String, segments: Int) throws {
    for _ in 0..<segments {
      let (writer, _) = try JournalWriter.open(directory: dir, volume: volume)
      try writer.append(.flush)
      try writer.close()
    }
  }

  @Test func segmentOfAnotherVolume() throws {
    let dir = TemporaryDirectory()
    try closedJournal(dir.path, segments: 1)
    let other = VolumeID()
    let error = #expect(throws: ReelError.self) { try JournalReader(directory: dir.path, volume: other) }
    #expect(error?.kind == .incompatible)
    #expect(error?.message.contains("00000000000000000001.rjs") == true)
    #expect(error?.message.contains(volume.description) == true)
  }

  @Test func unknownFormatVersion() throws {
    let dir = TemporaryDirectory()
    try closedJournal(dir.path, segments: 1)
    let segment = segmentFiles(dir.path)[0]
    var bytes = fileBytes(segment)
    bytes[8] = 9
    writeBytes(segment, bytes)
    let error = #expect(throws: ReelError.self) { try JournalReader(directory: dir.path, volume: volume) }
    #expect(error?.kind == .incompatible)
    #expect(error?.message.contains("version 9") == true)
    #expect(error?.message.contains(segment) == true)
  }

  @Test func truncatedHeader() throws {
    let dir = TemporaryDirectory()
    try closedJournal(dir.path, segments: 1)
    let segment = segmentFiles(dir.path)[0]
    writeBytes(segment, Array(fileBytes(segment)[..<30]))
    let error = #expect(throws: ReelError.self) { try JournalReader(directory: dir.path, volume: volume) }
    #expect(error?.message.contains("truncated segment header") == true)
    #expect(error?.message.contains(segment) == true)
  }

  @Test func notASegment() throws {
    let dir = TemporaryDirectory()
    try closedJournal(dir.path, segments: 1)
    let segment = segmentFiles(dir.path)[0]
    writeBytes(segment, Array("hello, I am a text file that someone put here by mistake.......\n".utf8))
    let error = #expect(throws: ReelError.self) { try JournalReader(directory: dir.path, volume: volume) }
    #expect(error?.message.contains("not a Reel journal segment") == true)
  }

  @Test func segmentMissingFromTheMiddle() throws {
    let dir = TemporaryDirectory()
    try closedJournal(dir.path, segments: 3)
    let files = segmentFiles(dir.path)
    try FileManager.default.removeItem(atPath: files[1])
    let error = #expect(throws: ReelError.self) { try JournalReader(directory: dir.path, volume: volume) }
    #expect(error?.message.contains("00000000000000000002.rjs is missing") == true)
    #expect(throws: ReelError.self) { try JournalWriter.open(directory: dir.path, volume: volume) }
  }

  @Test func segmentReplacedFromAnotherHistory() throws {
    let dir = TemporaryDirectory()
    try closedJournal(dir.path, segments: 2)
    let elsewhere = TemporaryDirectory()
    // Same volume, but a history whose second segment starts at another seq.
    let (writer, _) = try JournalWriter.open(directory: elsewhere.path, volume: volume)
    for _ in 0..<3 { try writer.append(.flush) }
    try writer.close()
    let (second, _) = try JournalWriter.open(directory: elsewhere.path, volume: volume)
    try second.append(.flush)
    try second.close()
    let files = segmentFiles(dir.path)
    writeBytes(files[1], fileBytes(segmentFiles(elsewhere.path)[1]))
    let error = #expect(throws: ReelError.self) { try JournalReader(directory: dir.path, volume: volume) }
    #expect(error?.message.contains("starts at seq 4") == true)
  }

  @Test func oversizedPayloadIsRefused() throws {
    let dir = TemporaryDirectory()
    let (writer, _) = try JournalWriter.open(directory: dir.path, volume: volume)
    #expect(throws: ReelError.self) {
      try writer.append(.write(offset: 0, data: [UInt8](repeating: 1, count: SegmentFormat.maxPayload + 1)))
    }
    try writer.append(.flush)
    try writer.close()
  }
}
