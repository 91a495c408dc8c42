import Foundation
import ReelCore

/// Tape files 2 and 3 of a parity cartridge (two copies): which data cartridges its parity
/// covers and, for each, the tape files of its stream, so a lost one can be written again
/// file for file (docs/tape-format.md, "Parity cartridges").
package struct ParityMap: Codable, Sendable, Equatable {
  package static let formatName = "reel-parity-map"
  package static let currentVersion = 1
  package static let schemeName = "reed-solomon-cauchy-gf256"

  /// One data cartridge of the group and its stream when the parity was written.
  package struct Member: Codable, Sendable, Equatable {
    /// The data shard it is: its sequence less the group's first sequence.
    package var index: Int
    package var cartridgeID: String
    package var label: String
    package var sequence: Int
    /// The data block size its label gives, for reading its records back.
    package var dataBlockSize: Int
    package var length: UInt64
    package var sha256: String
    package var files: [StreamFile]
  }

  package var format: String = formatName
  package var formatVersion: Int = currentVersion
  package var mediaSet: CartridgeCatalog.MediaSet
  package var parityCartridgeID: String
  package var parityLabel: String
  package var group: Int
  /// k: data cartridges per group; one parity shard (m = 1).
  package var parityOf: Int
  package var scheme: String = schemeName
  package var shardSize: Int
  package var members: [Member]
  /// Bytes of parity in tape file 1: the longest member stream, rounded up to shards.
  package var parityLength: UInt64
  package var paritySHA256: String
  package var written: String

  /// The names of the group's cartridges, for messages.
  package var memberLabels: [String] { members.sorted { $0.index < $1.index }.map(\.label) }

  package func json() throws -> [UInt8] {
    try catalogEncoder.encode(self).map { $0 } + [0x0A]
  }

  /// Decodes and range-checks a map read from media: nothing in it is trusted as a size,
  /// offset or count before it passes.
  package static func decode(_ bytes: some Collection<UInt8>, describing what: String) throws -> ParityMap {
    let map: ParityMap
    do {
      map = try JSONDecoder().decode(ParityMap.self, from: trimmedJSON(bytes))
    } catch {
      throw ReelError(.corrupt, "\(what): the parity map is not readable JSON (\(error))")
    }
    guard map.format == formatName else { throw ReelError(.corrupt, "\(what): not a \(formatName)") }
    guard map.formatVersion == currentVersion, map.scheme == schemeName else {
      throw ReelError(
        .incompatible, "\(what): parity map version \(map.formatVersion) (\(map.scheme)) is not supported",
        remedy: "use a newer Reel")
    }
    try map.validate(describing: what)
    return map
  }

  private func validate(describing what: String) throws {
    func refuse(_ problem: String) -> ReelError {
      ReelError(
        .corrupt, "\(what): the parity map \(problem)",
        remedy: "the parity cartridge is damaged; write it again with reel export (its data cartridges at hand)")
    }
    guard ParityRole.groupSizes.contains(parityOf), (1..<(1 << 20)).contains(group) else {
      throw refuse("has a group or group size out of range")
    }
    guard shardSize == ParityCartridge.shardSize, parityLength % UInt64(shardSize) == 0, parityLength < 1 << 50,
      paritySHA256.count == 64
    else { throw refuse("has a parity length or shard size out of range") }
    try UntrustedNames.requireUUID(mediaSet.id, "media set ID", in: what)
    try UntrustedNames.requireUUID(parityCartridgeID, "parity cartridge ID", in: what)
    guard members.count <= parityOf, Set(members.map(\.index)).count == members.count else {
      throw refuse("lists more cartridges than its group holds")
    }
    for member in members {
      try UntrustedNames.requireUUID(member.cartridgeID, "cartridge ID", in: what)
      guard (0..<parityOf).contains(member.index), MediaLabel.isValidName(member.label),
        member.sequence == (group - 1) * parityOf + member.index + 1, member.length <= parityLength,
        member.dataBlockSize >= 512, member.dataBlockSize < 1 << 24, member.files.count < 1 << 24
      else { throw refuse("entry for \(member.label) is out of range") }
      try StreamFile.validate(member.files, length: member.length, describing: "\(what), cartridge \(member.label)")
    }
  }
}
