import ReelCore

/// Where a drive is and what it knows, as `MTIOCGET` reports it.
package struct DriveStatus: Sendable, Equatable {
  /// Tape file number counted from the beginning of tape; -1 when the drive lost count.
  package var fileNumber: Int
  /// Block number within the file; -1 when unknown (after spacing back over a filemark).
  var blockNumber: Int
  /// 0 in variable-block mode.
  package var blockSize: Int
  package var writeProtected: Bool
  var atBeginning: Bool
  package var atEndOfData: Bool
}

/// What a read returned: one record of `n` bytes, a filemark (the drive is now past it),
/// the end of recorded data, or a media error: records the drive could not read, which it
/// moved past to the next record or filemark it can read, as a drive does after a media
/// error. `bytes` is what those records held when the drive can tell (vtape: from the
/// framing and the file's block size), nil when it cannot (a real drive's EIO).
package enum TapeRead: Sendable, Equatable {
  case data(Int)
  case filemark
  case endOfData
  case unreadable(bytes: Int?)
}

/// A write that succeeded past the early-warning point tells the writer to wrap up: there
/// is room left for a filemark and a catalog, not for another archive.
package enum WriteOutcome: Sendable, Equatable {
  case written
  case earlyWarning
}

/// A sequential drive as the Linux st driver presents one. Everything Reel does with tape
/// (labels, archives, catalogs, spanning) is written against this, so the virtual drive
/// that tests use runs the same code as a real one; only `LinuxTapeDrive` is untested.
///
/// Writes happen in fixed-block mode (`setBlockSize(n)`: a write of k·n bytes makes k
/// records of n bytes); reads happen in variable-block mode (`setBlockSize(0)`: one record
/// per read, into a buffer at least as large), which is how `dd bs=1M` reads a tape too.
/// Writing anywhere but at the end of data erases everything after that point.
protocol TapeDrive: AnyObject {
  /// How a person names the drive, e.g. `vtape:/srv/vtl/c1.vtape`.
  var name: String { get }
  func status() throws -> DriveStatus
  /// MTSETBLK; 0 selects variable-block mode.
  func setBlockSize(_ bytes: Int) throws
  /// MTREW
  func rewind() throws
  /// MTFSF: moves past the next `count` filemarks, to the start of a later file.
  func spaceForward(files count: Int) throws
  /// MTBSF: moves back over `count` filemarks, ending just before the last one crossed
  /// (at the end of the file it closes).
  func spaceBack(files count: Int) throws
  /// MTEOM: to the end of recorded data, where the next file is appended.
  func seekEndOfData() throws
  /// MTWEOF 1; also flushes what the drive buffered, like the st driver does.
  func writeFilemark() throws
  /// Writes whole blocks at the current position; throws `.mediaFull` at physical end.
  func write(_ bytes: UnsafeRawBufferPointer) throws -> WriteOutcome
  func read(into buffer: UnsafeMutableRawBufferPointer) throws -> TapeRead
}

extension TapeDrive {
  /// To the start of the last file before the end of data: MTEOM, MTBSF 2, MTFSF 1 (the
  /// classic dance; with a single file on tape, a rewind).
  func seekStartOfLastFile() throws -> Int {
    try seekEndOfData()
    let files = try status().fileNumber
    if files <= 1 {
      try rewind()
      return 0
    }
    try spaceBack(files: 2)
    try spaceForward(files: 1)
    return files - 1
  }

  func writeProtectedError() -> ReelError {
    ReelError(
      .io, "\(name) is write-protected: nothing was written",
      remedy: "use another cartridge, or clear the write protection (slide the tab; for vtape: "
        + "`write-protected: no` in the cartridge header) if writing to it is really meant")
  }
}
