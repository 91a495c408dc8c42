import Foundation
import ReelArchive
import ReelCore
import ReelIO

/// What repairing a damaged copy of an archive from its own parity came to.
package struct MendOutcome: Sendable {
  /// The repaired file passed every check the archive carries: it can be imported.
  package var whole: Bool
  /// Every damaged range, with its one sentence (where, how long, repaired or not).
  package var ranges: [(offset: UInt64, length: UInt64, sentence: String)]
  /// How much of the parity's margin the worst stripe used, e.g. "3 of 12 parity shards".
  package var margin: String?
  /// Archive bytes its parity could not rebuild (empty when whole).
  package var lost: [(offset: UInt64, length: UInt64)] = []
  /// The SHA-256 (hex) of the repaired file, hashed as the repair wrote it.
  package var sha256: String?
}

/// Rehydration's way to a damaged archive: its bytes from the medium into a private file
/// beside the store (zeros where the medium could not be read), repaired from the parity
/// inside the archive (archive format 4) into a second file, which is imported instead.
package enum ArchiveMending {
  /// The staged and repaired files of one archive, removed when dropped.
  package final class Staged {
    /// The bytes as read: the copy staged here, or the supply's own file.
    let damagedPath: String
    /// The damaged file is the staged copy (removed with it), not the supply's own.
    private let ownsDamaged: Bool
    package let repairedPath: String
    /// Beyond repair: the bytes before PARITY with every stripe that could be rebuilt rebuilt.
    let partlyRepairedPath: String
    /// The best copy to salvage frames from.
    var salvageable: String {
      FileManager.default.fileExists(atPath: partlyRepairedPath) ? partlyRepairedPath : damagedPath
    }

    /// `damaged`: the file on this machine that already holds the archive's bytes; nil:
    /// they are copied into `folder` first.
    init(folder: String, archiveID: String, damaged: String? = nil) {
      // Not `.reel.tar`: the incoming folder's archives are offered by that suffix. The
      // ID names a file only when it is a UUID (it may come from a catalog on media).
      let name = UUID(uuidString: archiveID) != nil ? archiveID.lowercased() : UUID().uuidString.lowercased()
      damagedPath = damaged ?? folder + "/.mend-\(name).damaged"
      ownsDamaged = damaged == nil
      repairedPath = folder + "/.mend-\(name).repaired"
      partlyRepairedPath = folder + "/.mend-\(name).partly-repaired"
    }

    deinit {
      if ownsDamaged { unlink(damagedPath) }
      unlink(repairedPath)
      unlink(partlyRepairedPath)
    }
  }

  /// Copies the offer's bytes from the supply into `folder` (private, fsynced) unless the
  /// supply holds them in a file here, then repairs them into `folder` (a scratch copy,
  /// not synced: it is imported at once and removed). The outcome is nil when the archive
  /// carries no parity to repair it with; the damaged bytes are there either way (what
  /// authenticates in them can still be salvaged).
  static func mend(
    _ offer: ArchiveOffer, from supply: any ArchiveSupply, in folder: String
  ) throws -> (staged: Staged, outcome: MendOutcome?) {
    let staged: Staged
    if let local = supply.localFile(of: offer) {
      try Durable.makeDirectory(folder)
      staged = Staged(folder: folder, archiveID: offer.archiveID, damaged: local)
      unlink(staged.repairedPath)
      unlink(staged.partlyRepairedPath)
    } else {
      staged = try stage(archiveID: offer.archiveID, in: folder) { try supply.open(offer) }
    }
    return (
      staged,
      try repair(
        input: staged.damagedPath, output: staged.repairedPath, bestEffort: staged.partlyRepairedPath, durable: false)
    )
  }

  /// The same for any stream of an archive's bytes (a copy read back from media).
  package static func mend(
    archiveID: String, in folder: String, open: () throws -> any ArchiveByteSource
  ) throws -> (staged: Staged, outcome: MendOutcome)? {
    let staged = try stage(archiveID: archiveID, in: folder, open: open)
    guard let outcome = try repair(input: staged.damagedPath, output: staged.repairedPath) else { return nil }
    return (staged, outcome)
  }

  /// The archive's bytes as read, in a private file in `folder` (zeros where unreadable).
  static func stage(archiveID: String, in folder: String, open: () throws -> any ArchiveByteSource) throws -> Staged {
    try Durable.makeDirectory(folder)
    let staged = Staged(folder: folder, archiveID: archiveID)
    unlink(staged.damagedPath)
    unlink(staged.repairedPath)
    unlink(staged.partlyRepairedPath)
    let file = try PosixFile.createNew(staged.damagedPath)
    var source = try open()
    let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
    defer { buffer.deallocate() }
    var offset: UInt64 = 0
    while true {
      try Interrupt.check()
      let count = try source.read(into: buffer)
      if count == 0 { break }
      try file.write(UnsafeRawBufferPointer(rebasing: buffer[0..<count]), at: offset)
      offset += UInt64(count)
    }
    try file.sync()
    return staged
  }

  /// The archive's own repair (ReelArchive's `ArchiveParity`, which accepts a result only
  /// when it equals the SHA-256 its parity recorded); nil for archives without parity.
  static func repair(input: String, output: String, bestEffort: String? = nil, durable: Bool = true) throws
    -> MendOutcome?
  {
    let report: ParityRepairReport
    do {
      report = try ArchiveParity.repair(input: input, output: output, bestEffort: bestEffort, durable: durable)
    } catch let error as ReelError where error.kind == .notFound {
      return nil
    }
    return MendOutcome(
      whole: report.whole && FileManager.default.fileExists(atPath: output),
      ranges: zip(report.ranges, report.sentences).map { ($0.offset, $0.length, $1) },
      margin: report.damaged ? report.margin : nil,
      lost: report.ranges.filter { !$0.repaired }.map { ($0.offset, $0.length) }, sha256: report.outputSHA256)
  }

  /// The manifest of an archive file whose head is damaged, read from a repaired copy in
  /// a private temporary folder (removed afterwards); nil when its parity cannot repair it.
  static func manifest(ofDamaged path: String) throws -> ArchiveManifest? {
    let folder = NSTemporaryDirectory() + "/reel-mend-\(UUID().uuidString.lowercased())"
    try Durable.makeDirectory(folder)
    defer { try? FileManager.default.removeItem(atPath: folder) }
    let output = folder + "/repaired"
    guard let outcome = try repair(input: path, output: output), outcome.whole else { return nil }
    return try ArchiveVerifier.readManifest(path: output)
  }
}
