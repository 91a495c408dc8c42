import ReelCore

/// One entry of a volume's partition table (GPT or MBR), as libblkid reads it.
package struct VolumePartition: Sendable, Equatable {
  /// 1-based, as `--partition N` and Linux's `sdX N` count.
  package var number: Int
  /// Where the partition starts on the volume, in bytes.
  package var start: UInt64
  package var size: UInt64
  /// GPT: the partition type GUID; MBR: the type byte as `0x83`.
  package var type: String?
  /// GPT only: the partition's name.
  package var name: String?
  /// GPT: the partition's unique GUID; MBR: the disk identifier with the number (`1234abcd-02`).
  package var uuid: String?
  /// The file system libblkid finds inside (`ext4`, `xfs`, `swap`…), nil when none.
  package var fileSystem: String?

  package init(
    number: Int, start: UInt64, size: UInt64, type: String? = nil, name: String? = nil, uuid: String? = nil,
    fileSystem: String? = nil
  ) {
    self.number = number
    self.start = start
    self.size = size
    self.type = type
    self.name = name
    self.uuid = uuid
    self.fileSystem = fileSystem
  }

  /// One line for error messages and listings: `2: 63 MiB at 1 MiB, ext4 "data"`.
  package var summary: String {
    var text = "\(number): \(ByteSize.describe(size)) at \(ByteSize.describe(start)), "
    text += fileSystem ?? "no file system found"
    if let name, !name.isEmpty { text += " \"\(name)\"" }
    return text
  }
}
