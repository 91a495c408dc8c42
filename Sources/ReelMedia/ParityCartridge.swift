import Foundation
import ReelCodec
import ReelCore
import ReelParity

/// A data cartridge of a parity group, at hand: its cartridge, label and newest catalog.
struct GroupMember {
  var cartridge: TapeCartridge
  var label: MediaLabel
  var catalog: CartridgeCatalog
}

/// RAIT: one parity cartridge per group of N data cartridges of a media set. Tape file 0
/// is its label, file 1 the Reed-Solomon parity (k = N, m = 1) over the group's streams
/// zero-padded to the longest, files 2 and 3 two copies of the `ParityMap`
/// (docs/tape-format.md, "Parity cartridges").
package enum ParityCartridge {
  /// Bytes of each stream per stripe, and the parity file's record size.
  package static let shardSize = 1 << 20

  /// Writes the group's parity afresh, recomputed from every data cartridge of the group
  /// (all must be at hand): the parity cartridge is rewritten whole from its label on.
  static func write(
    group: Int, members: [Int: GroupMember], parity: TapeCartridge, label: MediaLabel,
    mediaSet: CartridgeCatalog.MediaSet
  ) throws -> ParityMap {
    guard let of = label.parity?.of else { throw ReelError(.usage, "\(parity.address) is not a parity cartridge") }
    let codec = try ReedSolomon(dataShards: of, parityShards: 1)
    try parity.writeLabel(label)
    let readers = try members.mapValues { member in
      try CartridgeStreamReader(
        cartridge: member.cartridge, label: member.label,
        kinds: Dictionary(member.catalog.files.map { ($0.file, $0.kind.rawValue) }) { first, _ in first })
    }
    let drive = parity.drive
    try drive.setBlockSize(shardSize)
    let hasher = SHA256Hasher()
    var parityLength: UInt64 = 0
    var shards = [[UInt8]](repeating: [UInt8](repeating: 0, count: shardSize), count: of)
    while true {
      let before = readers.values.reduce(UInt64(0)) { $0 + $1.length }
      for (index, reader) in readers {
        try shards[index].withUnsafeMutableBytes { try reader.read(into: $0) }
      }
      guard readers.values.reduce(UInt64(0), { $0 + $1.length }) > before else { break }
      let block = codec.encode(data: shards, shardSize: shardSize)[0]
      hasher.update(block)
      do {
        _ = try block.withUnsafeBytes { try drive.write($0) }
      } catch let error as ReelError where error.kind == .mediaFull {
        throw ReelError(
          .mediaFull, "parity cartridge \(label.name) (\(parity.address)) is too small for group \(group)",
          remedy: "label a parity cartridge at least as large as the group's largest data cartridge")
      }
      parityLength += UInt64(shardSize)
    }
    try drive.writeFilemark()
    let map = ParityMap(
      mediaSet: mediaSet, parityCartridgeID: label.cartridgeID, parityLabel: label.name, group: group,
      parityOf: of, shardSize: shardSize,
      members: readers.keys.sorted().map { index in
        let member = members[index]!
        let reader = readers[index]!
        return ParityMap.Member(
          index: index, cartridgeID: member.label.cartridgeID, label: member.label.name,
          sequence: member.label.sequence, dataBlockSize: member.label.dataBlockSize, length: reader.length,
          sha256: reader.sha256(), files: reader.files)
      }, parityLength: parityLength, paritySHA256: hasher.finish().hex, written: Timestamp.now().rfc3339)
    let text = paddedToBlocks(try map.json(), blockSize: MediaLabel.blockSize)
    // Two copies: one bad record must not cost the map that makes the parity usable.
    try parity.writeTextFile(text)
    try parity.writeTextFile(text)
    // Read back, as every archive is: the map from the cartridge, the parity against its SHA-256.
    let readBack = try parity.parityCatalog(label, checkParity: true)
    guard readBack.files.count == 4, readBack.files[1].state == .complete else {
      throw ReelError(
        .io,
        "the parity read back from \(label.name) (\(parity.address)) differs from what was written"
          + (readBack.files.count > 1 ? ": \(readBack.files[1].note ?? "")" : ""),
        remedy: "the cartridge or drive is failing: label another parity cartridge and export again")
    }
    return map
  }

  /// The parity map of a parity cartridge: tape file 2, else its copy in file 3.
  static func readMap(_ parity: TapeCartridge, label: MediaLabel) throws -> ParityMap {
    let what = "parity cartridge \(label.name) (\(parity.address))"
    var problems: [String] = []
    for file in [2, 3] {
      do {
        try parity.position(atStartOf: file)
        guard let bytes = try parity.readWholeFile() else {
          problems.append("file \(file) is not JSON")
          continue
        }
        let map = try ParityMap.decode(bytes, describing: what)
        guard map.parityCartridgeID == label.cartridgeID, map.group == label.parity?.group,
          map.parityOf == label.parity?.of
        else {
          problems.append("the map in file \(file) belongs to another parity cartridge")
          continue
        }
        return map
      } catch {
        problems.append("file \(file): \(error)")
      }
    }
    throw ReelError(
      .corrupt, "\(what) has no readable parity map (\(problems.joined(separator: "; ")))",
      remedy: "its parity cannot be used; write it again with reel export, the group's data cartridges at hand")
  }

  /// Writes the lost member `missing` onto `target`, tape file for tape file, from the
  /// parity and every other member of the group the map lists.
  static func rebuild(
    _ missing: ParityMap.Member, map: ParityMap, others: [Int: GroupMember], parity: TapeCartridge,
    to target: TapeCartridge
  ) throws {
    let what = "cartridge \(missing.label) rebuilt from parity cartridge \(map.parityLabel)"
    let codec = try ReedSolomon(dataShards: map.parityOf, parityShards: 1)
    var readers: [Int: CartridgeStreamReader] = [:]
    for member in map.members where member.index != missing.index {
      guard let present = others[member.index] else {
        throw ReelError(
          .notFound, "cannot rebuild \(missing.label): \(member.label) of the same parity group is not at hand either",
          remedy: "one parity cartridge rebuilds one lost cartridge of its group")
      }
      // Bytes written after the parity are not in it: each stream is cut at its mapped length.
      readers[member.index] = try CartridgeStreamReader(
        cartridge: present.cartridge, label: present.label, kinds: [:], limit: member.length)
    }
    try parity.position(atStartOf: 1)
    try parity.drive.setBlockSize(0)
    let paritySource = TapeFileSource(drive: parity.drive, recordSize: shardSize, limit: map.parityLength)
    let writer = try CartridgeStreamWriter(cartridge: target, files: missing.files, describing: what)
    var stripe: UInt64 = 0
    while !writer.done {
      guard stripe * UInt64(shardSize) < map.parityLength else {
        throw ReelError(.corrupt, "\(what): the parity ends before the cartridge's stream does")
      }
      var shards = [[UInt8]?](repeating: nil, count: map.parityOf + 1)
      for index in 0..<map.parityOf where index != missing.index {
        var shard = [UInt8](repeating: 0, count: shardSize)
        if let reader = readers[index] { try shard.withUnsafeMutableBytes { try reader.read(into: $0) } }
        shards[index] = shard
      }
      var parityShard = [UInt8](repeating: 0, count: shardSize)
      let got = try parityShard.withUnsafeMutableBytes { try paritySource.readFully(into: $0) }
      guard got == shardSize else {
        throw ReelError(
          .corrupt, "\(what): parity cartridge \(map.parityLabel) ends after \(stripe) MiB of parity",
          remedy: "the parity cartridge is damaged or cut short; nothing rebuilt can be trusted")
      }
      shards[map.parityOf] = parityShard
      try codec.reconstruct(&shards, shardSize: shardSize)
      try shards[missing.index]!.withUnsafeBytes { try writer.write($0) }
      stripe += 1
    }
  }
}

extension TapeCartridge {
  /// What a parity cartridge holds, as a catalog lists it: its label, the parity and the
  /// two map copies; `checkParity` reads the parity whole against the map's SHA-256.
  func parityCatalog(_ label: MediaLabel, checkParity: Bool) throws -> CartridgeCatalog {
    var catalog = CartridgeCatalog(label: label, files: [TapeFileEntry(file: 0, kind: .label)])
    guard label.parity?.group != nil else { return catalog }
    let map: ParityMap
    do {
      map = try ParityCartridge.readMap(self, label: label)
    } catch let error as ReelError {
      catalog.files.append(TapeFileEntry(file: 1, kind: .parity, state: .damaged, note: error.message))
      return catalog
    }
    let note = "parity of group \(map.group): \(map.memberLabels.joined(separator: ", "))"
    var parity = TapeFileEntry(
      file: 1, kind: .parity, state: .complete, size: map.parityLength, sha256: map.paritySHA256, note: note)
    if checkParity {
      try position(atStartOf: 1)
      try drive.setBlockSize(0)
      let source = TapeFileSource(drive: drive, recordSize: ParityCartridge.shardSize)
      let hasher = SHA256Hasher()
      var total: UInt64 = 0
      var chunk = [UInt8](repeating: 0, count: ParityCartridge.shardSize)
      do {
        while true {
          let got = try chunk.withUnsafeMutableBytes { try source.read(into: $0) }
          if got == 0 { break }
          chunk.withUnsafeBytes { hasher.update(UnsafeRawBufferPointer(rebasing: $0[0..<got])) }
          total += UInt64(got)
        }
        if total != map.parityLength || hasher.finish().hex != map.paritySHA256 {
          parity.state = .damaged
          parity.note = "\(note); the parity differs from the SHA-256 its map recorded"
        }
      } catch let error as ReelError {
        parity.state = .damaged
        parity.note = "\(note); \(error.message)"
      }
    }
    catalog.mediaSet = map.mediaSet
    catalog.files += [
      parity, TapeFileEntry(file: 2, kind: .parityMap), TapeFileEntry(file: 3, kind: .parityMap),
    ]
    return catalog
  }
}
