import CBlkid
import Foundation
import ReelCore
import ReelIO

/// What libblkid recognised in one region of a volume.
struct ProbedSignature: Sendable, Equatable {
  /// As libblkid names it: `ext4`, `xfs`, `swap`, `crypto_LUKS`, `jbd`…
  var type: String
  var label: String?
  var uuid: String?
  /// The superblock's checksum does not match (libblkid reports it only because asked to).
  var badChecksum: Bool
}

/// libblkid over a volume that is not a file: libblkid reads a descriptor, so the regions
/// probing looks at (the first 2 MiB and last 1 MiB of the volume and of each region probed)
/// are copied into a sparse in-memory file the size of the volume. Nothing else is read.
final class VolumeProbe {
  static let headBytes: UInt64 = 2 << 20
  static let tailBytes: UInt64 = 1 << 20
  private static let copyUnit: UInt64 = 64 << 10

  private let source: any VolumeSource
  private let memory: PosixFile
  /// Indices of the `copyUnit`-sized pieces already in `memory`.
  private var copied: Set<UInt64> = []

  init(_ source: any VolumeSource) throws {
    self.source = source
    memory = try PosixFile.anonymousMemory(name: "reel-probe")
    try memory.truncate(to: source.size)
    try copyEnds(offset: 0, size: source.size)
  }

  /// The partition table's entries (logical MBR partitions included, the extended
  /// container left out); empty when the volume has no partition table.
  func partitions() throws -> [VolumePartition] {
    try copyExtendedBootRecords()
    let probe = try Self.newProbe(memory.descriptor, offset: 0, size: source.size)
    defer { blkid_free_probe(probe) }
    blkid_probe_enable_superblocks(probe, 0)
    blkid_probe_enable_partitions(probe, 1)
    blkid_probe_set_partitions_flags(probe, BLKID_PARTS_ENTRY_DETAILS)
    guard let list = blkid_probe_get_partitions(probe) else { return [] }
    var result: [VolumePartition] = []
    for index in 0..<max(0, blkid_partlist_numof_partitions(list)) {
      guard let entry = blkid_partlist_get_partition(list, index), blkid_partition_is_extended(entry) == 0
      else { continue }
      let typeString = blkid_partition_get_type_string(entry).map { String(cString: $0) }
      let typeByte = blkid_partition_get_type(entry)
      result.append(
        VolumePartition(
          number: Int(blkid_partition_get_partno(entry)),
          start: UInt64(max(0, blkid_partition_get_start(entry))) * 512,
          size: UInt64(max(0, blkid_partition_get_size(entry))) * 512,
          type: typeString ?? (typeByte != 0 ? "0x" + String(typeByte, radix: 16) : nil),
          name: blkid_partition_get_name(entry).map { String(cString: $0) },
          uuid: blkid_partition_get_uuid(entry).map { String(cString: $0) }))
    }
    for index in result.indices {
      let partition = result[index]
      guard partition.size > 0, partition.start < source.size else { continue }
      let size = min(partition.size, source.size - partition.start)
      result[index].fileSystem = try signature(offset: partition.start, size: size)?.type
    }
    return result
  }

  /// The file system (or other signature) in `offset..<offset+size`, nil when libblkid
  /// recognises nothing. When several signatures compete, an ext2/3/4 one wins (mkfs of
  /// another type over an old ext4 can leave its backup superblocks, not the reverse).
  func signature(offset: UInt64, size: UInt64) throws -> ProbedSignature? {
    try copyEnds(offset: offset, size: size)
    let probe = try Self.newProbe(memory.descriptor, offset: offset, size: size)
    defer { blkid_free_probe(probe) }
    blkid_probe_enable_partitions(probe, 0)
    blkid_probe_enable_superblocks(probe, 1)
    blkid_probe_set_superblocks_flags(
      probe, BLKID_SUBLKS_LABEL | BLKID_SUBLKS_UUID | BLKID_SUBLKS_TYPE | BLKID_SUBLKS_BADCSUM)
    var status = blkid_do_safeprobe(probe)
    if status == -2 {
      try Self.onlyExtTypes(probe)
      status = blkid_do_safeprobe(probe)
      if status != 0 {
        throw ReelError(
          .corrupt, "several file-system signatures compete at \(ByteSize.describe(offset)) into the volume",
          remedy: "look with `wipefs -n` on a restored image of this point; reel reads ext2/3/4 only")
      }
    }
    guard status == 0 else {
      if status < 0 { throw ReelError(.io, "libblkid could not probe the volume at \(offset)") }
      return nil
    }
    guard let type = Self.value(probe, "TYPE") else { return nil }
    return ProbedSignature(
      type: type, label: Self.value(probe, "LABEL"), uuid: Self.value(probe, "UUID"),
      badChecksum: Self.value(probe, "SBBADCSUM") != nil)
  }

  private static func newProbe(_ descriptor: Int32, offset: UInt64, size: UInt64) throws -> OpaquePointer {
    guard let probe = blkid_new_probe() else { throw ReelError(.io, "libblkid could not start a probe") }
    guard blkid_probe_set_device(probe, descriptor, blkid_loff_t(offset), blkid_loff_t(size)) == 0 else {
      blkid_free_probe(probe)
      throw ReelError(.io, "libblkid could not probe \(size) bytes at \(offset)")
    }
    return probe
  }

  private static func onlyExtTypes(_ probe: OpaquePointer) throws {
    let names = ["ext4", "ext3", "ext2", "jbd"]
    var cStrings = names.map { strdup($0) }
    defer { cStrings.forEach { free($0) } }
    cStrings.append(nil)
    let status = cStrings.withUnsafeMutableBufferPointer {
      blkid_probe_filter_superblocks_type(probe, BLKID_FLTR_ONLYIN, $0.baseAddress!)
    }
    guard status == 0 else { throw ReelError(.io, "libblkid refused a type filter") }
  }

  private static func value(_ probe: OpaquePointer, _ name: String) -> String? {
    var data: UnsafePointer<CChar>? = nil
    var length = 0
    guard blkid_probe_lookup_value(probe, name, &data, &length) == 0, let data else { return nil }
    return String(cString: data)
  }

  private func copyEnds(offset: UInt64, size: UInt64) throws {
    try copy(offset..<(offset + min(size, Self.headBytes)))
    try copy((offset + size - min(size, Self.tailBytes))..<(offset + size))
  }

  /// Copies the pieces of `range` not yet in memory, each run of missing pieces in one
  /// read of the source; all-zero pieces stay holes.
  private func copy(_ range: Range<UInt64>) throws {
    guard !range.isEmpty else { return }
    let unit = Self.copyUnit
    let missing = ((range.lowerBound / unit)...((range.upperBound - 1) / unit)).filter { !copied.contains($0) }
    var index = 0
    while index < missing.count {
      var last = index
      while last + 1 < missing.count, missing[last + 1] == missing[last] + 1 { last += 1 }
      let start = missing[index] * unit
      let end = min(source.size, (missing[last] + 1) * unit)
      let bytes = try source.read(offset: start, length: Int(end - start))
      for piece in stride(from: 0, to: bytes.count, by: Int(unit)) {
        let slice = bytes[piece..<min(bytes.count, piece + Int(unit))]
        if slice.contains(where: { $0 != 0 }) { try memory.write(Array(slice), at: start + UInt64(piece)) }
      }
      copied.formUnion(missing[index...last])
      index = last + 1
    }
  }

  /// MBR logical partitions are found through a chain of boot records spread over the
  /// extended partition; libblkid follows it only if those sectors are in memory.
  private func copyExtendedBootRecords() throws {
    let master = try source.read(offset: 0, length: Int(min(512, source.size)))
    guard master.count == 512, master[510] == 0x55, master[511] == 0xAA else { return }
    for slot in 0..<4 {
      let entry = Array(master[(446 + slot * 16)..<(446 + slot * 16 + 16)])
      guard [0x05, 0x0F, 0x85].contains(entry[4]) else { continue }
      let extendedStart = UInt64(Self.little32(entry, 8))
      var next = extendedStart
      for _ in 0..<128 {
        let offset = next * 512
        guard offset + 512 <= source.size else { break }
        try copy(offset..<(offset + 512))
        let record = try source.read(offset: offset, length: 512)
        guard record[510] == 0x55, record[511] == 0xAA else { break }
        let link = Array(record[462..<478])
        guard [0x05, 0x0F, 0x85].contains(link[4]), Self.little32(link, 8) != 0 else { break }
        next = extendedStart + UInt64(Self.little32(link, 8))
      }
    }
  }

  private static func little32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
    (0..<4).reduce(UInt32(0)) { $0 | UInt32(bytes[at + $1]) << (8 * $1) }
  }
}
