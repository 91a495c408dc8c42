// Drives Reel's modules directly for the scripts in benchmarks/. Not part of the product.
//   reel-bench journal DIR TOTAL WRITE SYNC-EVERY   append TOTAL bytes as WRITE-sized
//                                                   records, sync every SYNC-EVERY bytes
// Prints one line: `journal bytes=N seconds=S mbps=M`.
//   reel-bench workload STORE VOLUME SOURCE REPEAT SMALL-WRITES [SMALL-DATA-OUT]
//                                                   journal SOURCE's bytes as 1 MiB writes
//                                                   from offset 0, REPEAT times, then
//                                                   SMALL-WRITES random 4 KiB writes (their
//                                                   bytes also go to SMALL-DATA-OUT)
// Prints one line: `workload records=N bytes=B`.
import Foundation
import ReelCore
import ReelIO
import ReelJournal

func fail(_ message: String) -> Never {
  FileHandle.standardError.write(Data("reel-bench: \(message)\n".utf8))
  exit(64)
}

func seconds(since start: ContinuousClock.Instant) -> Double {
  let elapsed = ContinuousClock.now - start
  return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

let arguments = Array(CommandLine.arguments.dropFirst())
guard let command = arguments.first else { fail("usage: reel-bench journal DIR TOTAL WRITE SYNC-EVERY") }

switch command {
case "journal":
  guard arguments.count == 5, let total = try? ByteSize.parse(arguments[2]),
    let writeSize = try? ByteSize.parse(arguments[3]), let syncEvery = try? ByteSize.parse(arguments[4])
  else { fail("usage: reel-bench journal DIR TOTAL WRITE SYNC-EVERY") }
  // Incompressible data, as a real volume's writes mostly are; reused round robin.
  var generator = SystemRandomNumberGenerator()
  let pool = (0..<16).map { _ in (0..<Int(writeSize)).map { _ in UInt8.random(in: 0...255, using: &generator) } }
  let (writer, _) = try JournalWriter.open(directory: arguments[1], volume: VolumeID())
  let start = ContinuousClock.now
  var written: UInt64 = 0
  var sinceSync: UInt64 = 0
  var index = 0
  while written < total {
    try writer.append(.write(offset: written % (1 << 30), data: pool[index % pool.count]))
    index += 1
    written += writeSize
    sinceSync += writeSize
    if sinceSync >= syncEvery {
      try writer.sync()
      sinceSync = 0
    }
  }
  try writer.sync()
  let elapsed = seconds(since: start)
  try writer.close()
  print(String(format: "journal bytes=%llu seconds=%.3f mbps=%.1f", written, elapsed, Double(written) / elapsed / 1e6))
case "workload":
  guard arguments.count == 6 || arguments.count == 7, let repeats = Int(arguments[4]),
    let smallWrites = Int(arguments[5])
  else { fail("usage: reel-bench workload STORE VOLUME SOURCE REPEAT SMALL-WRITES [SMALL-DATA-OUT]") }
  let smallOut = arguments.count == 7 ? try PosixFile(path: arguments[6], flags: O_WRONLY | O_CREAT | O_TRUNC) : nil
  let layout = StoreLayout(root: arguments[1])
  let descriptor = try layout.descriptor(of: arguments[2])
  let source = try PosixFile.openForReading(arguments[3])
  let sourceSize = try source.size()
  let (writer, _) = try JournalWriter.open(directory: layout.journalDirectory(arguments[2]), volume: descriptor.id)
  var records = 0
  var bytes: UInt64 = 0
  for _ in 0..<repeats {
    var offset: UInt64 = 0
    while offset < min(sourceSize, descriptor.size) {
      let data = try source.read(at: offset, count: Int(min(1 << 20, min(sourceSize, descriptor.size) - offset)))
      try writer.append(.write(offset: offset, data: data))
      offset += UInt64(data.count)
      bytes += UInt64(data.count)
      records += 1
    }
    try writer.append(.flush)
    try writer.sync()
  }
  var generator = SystemRandomNumberGenerator()
  for index in 0..<smallWrites {
    let block = UInt64.random(in: 0..<(descriptor.size / 4096), using: &generator)
    // Like a file system's metadata updates: mostly the block as it was, a few bytes new.
    var data = try source.read(at: block * 4096 % max(sourceSize, 1), count: 4096)
    if data.count < 4096 { data += [UInt8](repeating: 0, count: 4096 - data.count) }
    for _ in 0..<16 { data[Int.random(in: 0..<4096, using: &generator)] = UInt8.random(in: 0...255, using: &generator) }
    try writer.append(.write(offset: block * 4096, data: data))
    try smallOut?.write(data, at: UInt64(index) * 4096)
    bytes += 4096
    records += 1
  }
  try writer.append(.bookmark("benchmark end"))
  try writer.close()
  print("workload records=\(records) bytes=\(bytes)")
default:
  fail("unknown benchmark \(command)")
}
