import Foundation
import ReelCore
import ReelJournal

public struct RestoreReport: Sendable {
  public var volume: String
  public var resolved: ResolvedPoint
  public var output: String
  public var recordsApplied: UInt64
  public var bytesApplied: UInt64
  public var size: UInt64
}

/// Rebuilds a volume as of a point by replaying its journal over its base. (The live
/// store will replace the replay with indexed reads; the result must stay identical.)
public enum Restore {
  public static func run(
    store: Store, volume name: String, at point: Point, output: String, overwrite: Bool = false
  ) throws -> RestoreReport {
    let layout = store.layout
    let descriptor = try layout.descriptor(of: name)
    let journal = try JournalReader(directory: layout.journalDirectory(name), volume: descriptor.id)
    let resolved = try PointResolver.resolve(point, volume: descriptor, journal: journal)
    if FileManager.default.fileExists(atPath: output) && !overwrite {
      throw ReelError(
        .alreadyExists, "\(output) already exists; nothing was written",
        remedy: "choose another --output, or add --force to replace it")
    }
    let temporary = output + ".reel-partial-\(getpid())"
    do {
      let file = try PosixFile(path: temporary, flags: O_RDWR | O_CREAT | O_TRUNC)
      if descriptor.hasBase {
        try copySparse(from: layout.baseImagePath(name), to: file)
      }
      try file.truncate(to: descriptor.size)
      var report = RestoreReport(
        volume: name, resolved: resolved, output: output, recordsApplied: 0, bytesApplied: 0, size: descriptor.size)
      if resolved.seq > 0 {
        try journal.forEachRecord { record in
          guard record.seq <= resolved.seq else { return false }
          try apply(record, to: file, size: descriptor.size, path: output)
          report.recordsApplied += 1
          if record.kind == .write { report.bytesApplied += record.length }
          return true
        }
      }
      try file.sync()
      try Durable.rename(temporary, to: output)
      return report
    } catch {
      unlink(temporary)
      throw error
    }
  }

  /// Applies one journal record to an image of `size` bytes.
  public static func apply(_ record: JournalRecord, to file: PosixFile, size: UInt64, path: String) throws {
    switch record.kind {
    case .write, .trim, .writeZeroes:
      guard record.offset <= size, record.length <= size - record.offset else {
        throw ReelError(
          .corrupt,
          "journal record seq \(record.seq) reaches past the end of the volume (offset \(record.offset), length \(record.length), size \(size))"
        )
      }
      if record.kind == .write {
        try record.payload.withUnsafeBytes { try file.write($0, at: record.offset) }
      } else {
        try file.punchHole(offset: record.offset, length: record.length)
      }
    case .flush, .bookmark:
      break
    }
  }

  static func copySparse(from path: String, to destination: PosixFile) throws {
    let source = try PosixFile.openForReading(path)
    let chunk = 1 << 20
    var buffer = [UInt8](repeating: 0, count: chunk)
    var offset: UInt64 = 0
    while true {
      let got = try buffer.withUnsafeMutableBytes { try source.read(into: $0, at: offset) }
      if got == 0 { break }
      if buffer[0..<got].contains(where: { $0 != 0 }) {
        try buffer.withUnsafeBytes { try destination.write(UnsafeRawBufferPointer(rebasing: $0[0..<got]), at: offset) }
      }
      offset += UInt64(got)
    }
  }
}
