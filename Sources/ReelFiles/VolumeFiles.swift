import ReelCore
import ReelStore

/// Opening the file system inside a volume at one point.
///
/// Errors (`ReelError`, each naming the volume and what to do):
/// - `.notFound`: no file-system signature at all where one was looked for (a volume of
///   zeros, a partition never formatted, a superblock whose magic is gone), or no such
///   partition number;
/// - `.corrupt`: an ext2/3/4 file system was recognised but its superblock or group
///   descriptors do not read (bad checksum, impossible geometry);
/// - `.incompatible`: a file system Reel does not read (XFS, NTFS, btrfs, swap, LUKS…,
///   named as libblkid names it), or one that needs an external journal replayed;
/// - `.usage`: several partitions hold file systems and none was chosen.
package enum VolumeFiles {
  /// The types `Ext4FileSystem` reads, as libblkid names them.
  static let readableTypes: Set<String> = ["ext2", "ext3", "ext4"]

  /// The way that always works: the kernel.
  static let kernelRemedy =
    "serve the point read-only (`reel serve NAME --at POINT --read-only`) and mount it with the kernel, "
    + "e.g. `nbdfuse DIR nbd+unix:///NAME?socket=SOCKET` then `mount -o ro,loop DIR/nbd MOUNTPOINT`"

  /// Probes `source` (libblkid: the whole volume, or a GPT/MBR partition — 1-based
  /// `partition`, else the one partition that holds an ext2/3/4 file system), opens the
  /// file system read-only and replays its journal into memory.
  package static func open(_ source: any VolumeSource, partition: Int? = nil) throws -> any FileSystemReading {
    let probe = try VolumeProbe(source)
    let partitions = try probe.partitions()
    let volume = describe(source)
    let chosen: VolumePartition?
    if let partition {
      guard !partitions.isEmpty else {
        throw ReelError(
          .notFound, "\(volume) has no partition table, so it has no partition \(partition)",
          remedy: "leave out --partition: the file system fills the whole volume")
      }
      guard let found = partitions.first(where: { $0.number == partition }) else {
        throw ReelError(
          .notFound, "\(volume) has no partition \(partition); its partitions are:\n" + listing(partitions),
          remedy: "choose one with --partition N")
      }
      chosen = found
    } else if partitions.isEmpty {
      chosen = nil
    } else {
      chosen = try choose(among: partitions, volume: volume)
    }
    let offset = chosen?.start ?? 0
    let size = chosen.map { min($0.size, source.size - min($0.start, source.size)) } ?? source.size
    let place = chosen.map { "partition \($0.number) of \(volume)" } ?? volume
    guard let signature = try probe.signature(offset: offset, size: size) else {
      throw ReelError(
        .notFound, "\(place) holds no file system that libblkid recognises",
        remedy: partitions.isEmpty
          ? "check the point (--at): the volume may not have been formatted yet, or its superblock is gone"
          : "choose a partition that holds one with --partition N:\n" + listing(partitions))
    }
    guard readableTypes.contains(signature.type) else {
      throw ReelError(
        .incompatible, "\(place) holds a \(signature.type) file system, which reel cannot read (ext2/3/4 only)",
        remedy: kernelRemedy(for: source))
    }
    let device = BlockDevice(source: source, offset: offset, size: size)
    do {
      return try Ext4FileSystem(device: device, signature: signature, partition: chosen?.number)
    } catch var error as ReelError {
      error.message = "\(place): " + error.message
      throw error
    }
  }

  /// The partitions libblkid finds (none when the volume has no partition table), each
  /// with the file system inside it.
  package static func partitions(of source: any VolumeSource) throws -> [VolumePartition] {
    try VolumeProbe(source).partitions()
  }

  private static func choose(among partitions: [VolumePartition], volume: String) throws -> VolumePartition {
    let readable = partitions.filter { $0.fileSystem.map(readableTypes.contains) ?? false }
    if readable.count == 1 { return readable[0] }
    if readable.isEmpty {
      let formatted = partitions.filter { $0.fileSystem != nil }
      // One file system of another type: open it, to say which type it is.
      if formatted.count == 1 { return formatted[0] }
      throw ReelError(
        .notFound,
        "no partition of \(volume) holds an ext2/3/4 file system; its partitions are:\n"
          + listing(partitions),
        remedy: "choose a partition with --partition N, or check the point (--at)")
    }
    throw ReelError(
      .usage, "\(readable.count) partitions of \(volume) hold file systems:\n" + listing(partitions),
      remedy: "choose one with --partition N")
  }

  private static func listing(_ partitions: [VolumePartition]) -> String {
    partitions.map { "  " + $0.summary }.joined(separator: "\n")
  }

  private static func describe(_ source: any VolumeSource) -> String {
    guard let view = source as? VolumeView else { return "the volume" }
    return "volume \(view.descriptor.name) at \(view.resolved.point)"
  }

  private static func kernelRemedy(for source: any VolumeSource) -> String {
    guard let view = source as? VolumeView else { return kernelRemedy }
    return kernelRemedy.replacingOccurrences(
      of: "reel serve NAME --at POINT", with: "reel serve \(view.descriptor.name) --at \(view.resolved.point)")
  }
}
