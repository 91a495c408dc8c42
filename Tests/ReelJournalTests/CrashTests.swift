import Foundation
import ReelCore
import ReelTestSupport
import Testing

@testable import ReelJournal

/// The built helper executables sit next to the test bundle.
func builtExecutable(_ name: String) -> String {
  var directory = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
  if directory.path.hasSuffix(".xctest/Contents/MacOS") {
    directory = directory.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
  }
  return directory.appendingPathComponent(name).path
}

@Suite struct JournalCrashTests {
  /// Kills a writer process with SIGKILL after it reports N durable syncs, several times
  /// over the same journal: every seq it reported durable must be there, intact.
  @Test(arguments: [3, 17, 40])
  func killedWriterLosesNothingSynced(killAfterSyncs: Int) throws {
    let dir = TemporaryDirectory()
    let volume = VolumeID()
    var lastReported: Seq = 0
    for round in 0..<3 {
      let process = Process()
      process.executableURL = URL(fileURLWithPath: builtExecutable("JournalCrashWriter"))
      process.arguments = [dir.path, volume.description, String(1 + round * 3)]
      let output = Pipe()
      process.standardOutput = output
      try process.run()
      defer {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
      }
      var buffered = ""
      var syncs = 0
      while syncs < killAfterSyncs {
        let data = output.fileHandleForReading.availableData
        if data.isEmpty { break }
        buffered += String(decoding: data, as: UTF8.self)
        while let newline = buffered.firstIndex(of: "\n") {
          let line = buffered[..<newline]
          buffered = String(buffered[buffered.index(after: newline)...])
          if line.hasPrefix("durable "), let seq = Seq(line.dropFirst(8)) {
            lastReported = max(lastReported, seq)
            syncs += 1
          }
        }
      }
      kill(process.processIdentifier, SIGKILL)
      process.waitUntilExit()
      #expect(process.terminationReason == .uncaughtSignal)
      #expect(syncs >= killAfterSyncs, "writer stopped early in round \(round)")

      let (writer, report) = try JournalWriter.open(directory: dir.path, volume: volume)
      #expect(report.lastSeq >= lastReported)
      try writer.close()
      var seen: Seq = 0
      try JournalReader(directory: dir.path, volume: volume).forEachRecord { record in
        seen += 1
        #expect(record.seq == seen)
        let words = 64 * (1 + Int(record.seq % 16))
        let expected = [UInt64](repeating: record.seq.littleEndian, count: words).withUnsafeBytes { Array($0) }
        #expect(record.payload == expected, "payload of seq \(record.seq)")
        return true
      }
      #expect(seen == report.lastSeq)
      lastReported = report.lastSeq
    }
  }

  @Test func secondWriterOnTheSameJournalIsRefused() throws {
    let dir = TemporaryDirectory()
    let volume = VolumeID()
    let (writer, _) = try JournalWriter.open(directory: dir.path, volume: volume)
    let error = #expect(throws: ReelError.self) { try JournalWriter.open(directory: dir.path, volume: volume) }
    #expect(error?.message.contains("being written by another process (pid \(getpid()))") == true)
    try writer.close()
    let (again, _) = try JournalWriter.open(directory: dir.path, volume: volume)
    try again.close()
  }
}
