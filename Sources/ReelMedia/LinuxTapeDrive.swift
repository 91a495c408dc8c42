import CLinux
import Foundation
import ReelCore
import ReelIO

#if canImport(Glibc)
  import Glibc
#endif

/// A real drive through the Linux st driver: a file descriptor, `MTIOCTOP` and
/// `MTIOCGET`, nothing more. Kept thin on purpose: it is the one part of the tape code
/// that cannot run here, so every decision lives above it, in code vtape tests exercise.
final class LinuxTapeDrive: TapeDrive {
  package let path: String
  package var name: String { "tape:\(path)" }
  private let file: PosixFile
  private let readOnly: Bool

  /// Opens the no-rewind device and proves it is a tape by asking for its status.
  package init(path: String) throws {
    self.path = path
    let base = (path as NSString).lastPathComponent
    if base.hasPrefix("st"), base.dropFirst(2).first?.isNumber == true {
      throw ReelError(
        .usage, "tape:\(path) rewinds on every close, so Reel would lose its position",
        remedy: "use the no-rewind device, tape:\(parentFolder(of: path))/n\(base)")
    }
    var readOnly = false
    do {
      file = try PosixFile(path: path, flags: O_RDWR)
    } catch let error as ReelError where error.kind == .io {
      file = try PosixFile(path: path, flags: O_RDONLY)
      readOnly = true
    }
    self.readOnly = readOnly
    var a = 0
    var b = 0
    var c = 0
    var d = 0
    guard reel_tape_status(file.descriptor, &a, &b, &c, &d) == 0 else {
      let reason = String(cString: strerror(errno))
      throw ReelError(
        .usage, "tape:\(path) is not a tape drive (MTIOCGET: \(reason))",
        remedy: "name an st no-rewind device such as tape:/dev/nst0; for a cartridge file use vtape:PATH")
    }
  }

  package func status() throws -> DriveStatus {
    var fileNumber = 0
    var blockNumber = 0
    var bits = 0
    var blockSize = 0
    guard reel_tape_status(file.descriptor, &fileNumber, &blockNumber, &bits, &blockSize) == 0 else {
      throw PosixFile.error(errno, "MTIOCGET", path)
    }
    // GMT_* bits of mt_gstat (linux/mtio.h): BOT 0x40000000, EOD 0x08000000, WR_PROT 0x04000000.
    return DriveStatus(
      fileNumber: fileNumber, blockNumber: blockNumber, blockSize: blockSize,
      writeProtected: readOnly || bits & 0x0400_0000 != 0, atBeginning: bits & 0x4000_0000 != 0,
      atEndOfData: bits & 0x0800_0000 != 0)
  }

  package func setBlockSize(_ bytes: Int) throws { try operation(MTSETBLK, bytes, "MTSETBLK") }
  package func rewind() throws { try operation(MTREW, 1, "MTREW") }
  package func spaceForward(files count: Int) throws { try operation(MTFSF, count, "MTFSF") }
  package func spaceBack(files count: Int) throws { try operation(MTBSF, count, "MTBSF") }
  package func seekEndOfData() throws { try operation(MTEOM, 1, "MTEOM") }

  package func writeFilemark() throws {
    guard !readOnly else { throw writeProtectedError() }
    try operation(MTWEOF, 1, "MTWEOF")
  }

  /// The st driver fails the write that reaches early warning with ENOSPC, without saying
  /// how much of it reached the tape, and lets later writes through until the physical
  /// end. So ENOSPC counts as end of media (the archive is abandoned) while the filemark
  /// and catalog that follow still go through.
  package func write(_ bytes: UnsafeRawBufferPointer) throws -> WriteOutcome {
    var done = 0
    while done < bytes.count {
      let n = Glibc.write(file.descriptor, bytes.baseAddress! + done, bytes.count - done)
      if n < 0 {
        switch errno {
        case EINTR: continue
        case ENOSPC:
          throw ReelError(
            .mediaFull, "\(name): early warning, end of tape near", remedy: "continue on another cartridge")
        case EROFS, EACCES: throw writeProtectedError()
        default: throw PosixFile.error(errno, "write", path)
        }
      }
      done += n
    }
    return .written
  }

  /// Read returns 0 at a filemark (and moves past it); at the end of data the st driver
  /// answers EIO or a second 0, told apart by the EOD bit of the status. EIO elsewhere is
  /// a media error: the drive has given up on that block and the next read goes on after
  /// it (untested here: no drive).
  package func read(into buffer: UnsafeMutableRawBufferPointer) throws -> TapeRead {
    while true {
      let n = Glibc.read(file.descriptor, buffer.baseAddress, buffer.count)
      if n > 0 { return .data(n) }
      if n < 0 && errno == EINTR { continue }
      let code = errno
      if try status().atEndOfData { return .endOfData }
      if n == 0 { return .filemark }
      if code == EIO { return .unreadable(bytes: nil) }
      throw PosixFile.error(code, "read", path)
    }
  }

  private func operation(_ code: Int32, _ count: Int, _ label: String) throws {
    guard reel_tape_operation(file.descriptor, code, Int32(count)) == 0 else {
      throw PosixFile.error(errno, label, path)
    }
  }
}
