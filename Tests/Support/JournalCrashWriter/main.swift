// Test helper: appends write records to a journal as fast as it can, syncing every
// N records and printing "durable SEQ" after each sync, until it is killed. The crash
// test kills it with SIGKILL at random moments and checks that every printed seq survives.
// Payload of record `seq`: (512 × (1 + seq % 16)) bytes, each 8-byte word = seq.
import Foundation
import ReelCore
import ReelJournal

let arguments = CommandLine.arguments
guard arguments.count == 4, let volume = VolumeID(string: arguments[2]), let syncEvery = Int(arguments[3]) else {
  FileHandle.standardError.write(Data("usage: JournalCrashWriter DIR VOLUME-UUID SYNC-EVERY\n".utf8))
  exit(64)
}
var options = JournalOptions()
options.segmentSizeLimit = 256 * 1024
let (writer, _) = try JournalWriter.open(directory: arguments[1], volume: volume, options: options)
var count = 0
while true {
  let next = writer.lastAppendedSeq + 1
  let words = 64 * (1 + Int(next % 16))
  let payload = [UInt64](repeating: next.littleEndian, count: words).withUnsafeBytes { Array($0) }
  try writer.append(.write(offset: (next % 1024) * 4096, data: payload))
  count += 1
  if count % syncEvery == 0 {
    try writer.sync()
    FileHandle.standardOutput.write(Data("durable \(writer.lastDurableSeq)\n".utf8))
  }
}
