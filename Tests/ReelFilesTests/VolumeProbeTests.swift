import Foundation
import ReelCore
import ReelFiles
import ReelStore
import ReelTestSupport
import Testing

@Suite("finding the file system on a volume: partitions and bad input")
struct VolumeProbeTests {
  /// A disk image of `size` MiB with the file-system images written at their partitions.
  static func disk(_ store: ImageStore, _ name: String, mebibytes: Int, table: [String], images: [(String, Int)]) throws
    -> String
  {
    let path = store.folder + "/" + name + ".disk"
    try runChecked(tool("truncate"), ["-s", "\(mebibytes)M", path])
    try runChecked(tool("sgdisk"), table + [path])
    for (image, startMiB) in images {
      try runChecked(
        tool("dd"), ["if=" + image, "of=" + path, "bs=1M", "seek=\(startMiB)", "conv=notrunc,sparse", "status=none"])
    }
    return path
  }

  static func error(_ body: () throws -> Any) -> ReelError? {
    do {
      _ = try body()
      return nil
    } catch {
      return error as? ReelError
    }
  }

  @Test("GPT: ext4 in partition 2 is found alone, chosen by number, and partitions are listed")
  func gptPartitionTwo() throws {
    let store = try ImageStore()
    let tree = try SampleTree.make(in: store.folder, special: false)
    let image = try store.makeImage("part", size: "16M", from: tree.root, options: ["-L", "datafs"])
    // 1: 2 MiB at 1 MiB, never formatted; 2: 16 MiB at 3 MiB.
    let disk = try Self.disk(
      store, "gpt", mebibytes: 20,
      table: ["-n", "1:1M:+2M", "-c", "1:empty-one", "-n", "2:3M:+16M", "-t", "2:8300", "-c", "2:data"],
      images: [(image, 3)])
    let volume = try store.volume("gpt", from: disk)

    let partitions = try VolumeFiles.partitions(of: volume)
    #expect(partitions.map(\.number) == [1, 2])
    #expect(partitions.map(\.start) == [1 << 20, 3 << 20])
    #expect(partitions.map(\.size) == [2 << 20, 16 << 20])
    #expect(partitions.map(\.name) == ["empty-one", "data"])
    #expect(partitions[1].type?.lowercased() == "0fc63daf-8483-4772-8e79-3d69d8477de4")
    #expect(partitions.map(\.fileSystem) == [nil, "ext4"])
    #expect(partitions.allSatisfy { $0.uuid?.count == 36 })

    for chosen in [nil, 2] {
      let files = try VolumeFiles.open(volume, partition: chosen)
      #expect(files.info.partition == 2 && files.info.offset == 3 << 20 && files.info.size == 16 << 20)
      #expect(files.info.label == "datafs")
      try TreeComparison(source: tree.root, files: files, expectCreationTime: true).expectSame()
    }

    let empty = Self.error { try VolumeFiles.open(volume, partition: 1) }
    #expect(
      empty?.kind == .notFound && empty?.message.contains("partition 1 of volume gpt") == true,
      "\(String(describing: empty))")
    let missing = Self.error { try VolumeFiles.open(volume, partition: 3) }
    #expect(missing?.kind == .notFound, "\(String(describing: missing))")
    #expect(missing?.message.contains("no partition 3") == true, "\(String(describing: missing))")
    #expect(missing?.message.contains("2: 16 MiB at 3 MiB, ext4 \"data\"") == true, "\(String(describing: missing))")
    #expect(missing?.remedy?.contains("--partition N") == true)
  }

  @Test("MBR: two ext file systems; without --partition the error lists both, with it each reads")
  func mbrTwoFileSystems() throws {
    let store = try ImageStore()
    let first = store.folder + "/first"
    let second = store.folder + "/second"
    for (folder, text) in [(first, "one"), (second, "two")] {
      try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
      try SampleTree.write(Array(text.utf8), to: folder + "/which")
    }
    let imageOne = try store.makeImage("one", type: "ext2", size: "4M", from: first)
    let imageTwo = try store.makeImage("two", type: "ext4", size: "4M", from: second)
    // sgdisk writes GPT; --gpttombr turns its partitions into a plain MBR (no GPT left).
    let disk = try Self.disk(
      store, "mbr", mebibytes: 10, table: ["-n", "1:1M:+4M", "-n", "2:5M:+4M", "--gpttombr=1:2"],
      images: [(imageOne, 1), (imageTwo, 5)])
    let volume = try store.volume("mbr", from: disk)
    let partitions = try VolumeFiles.partitions(of: volume)
    #expect(partitions.map(\.number) == [1, 2])
    #expect(partitions.map(\.fileSystem) == ["ext2", "ext4"])
    #expect(partitions.map(\.type) == ["0x83", "0x83"])

    let ambiguous = Self.error { try VolumeFiles.open(volume) }
    #expect(ambiguous?.kind == .usage, "\(String(describing: ambiguous))")
    #expect(ambiguous?.message.contains("1: 4 MiB at 1 MiB, ext2") == true, "\(String(describing: ambiguous))")
    #expect(ambiguous?.remedy == "choose one with --partition N")
    for (number, text) in [(1, "one"), (2, "two")] {
      let files = try VolumeFiles.open(volume, partition: number)
      let which = try #require(try files.lookup(FileName("which"), in: files.rootInode))
      #expect(try files.read(which.inode, offset: 0, length: 100) == Array(text.utf8))
      #expect(files.info.type == (number == 1 ? "ext2" : "ext4"))
    }
  }

  @Test("MBR logical partition: the chain of extended boot records is followed (partition 5)")
  func mbrLogicalPartition() throws {
    let store = try ImageStore()
    let source = store.folder + "/logical"
    try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: false)
    try SampleTree.write(Array("inside an extended partition".utf8), to: source + "/where")
    let image = try store.makeImage("logical", size: "4M", from: source)
    let disk = store.folder + "/extended.disk"
    try runChecked(tool("truncate"), ["-s", "12M", disk])
    // MBR: one extended partition (0x05) over sectors 6144..<22528; its boot record at
    // sector 6144 (3 MiB: outside the 2 MiB head and 1 MiB tail probing always copies)
    // holds one Linux partition starting 2048 sectors further on (4 MiB).
    func entry(type: UInt8, start: UInt32, sectors: UInt32) -> [UInt8] {
      [0, 0, 0, 0, type, 0, 0, 0] + withUnsafeBytes(of: start.littleEndian, Array.init)
        + withUnsafeBytes(of: sectors.littleEndian, Array.init)
    }
    func bootRecord(_ entries: [UInt8]) -> [UInt8] {
      [UInt8](repeating: 0, count: 446) + entries + [UInt8](repeating: 0, count: 64 - entries.count) + [0x55, 0xAA]
    }
    try patch(disk, at: 0, bootRecord(entry(type: 0x05, start: 6144, sectors: 16384)))
    try patch(disk, at: 6144 * 512, bootRecord(entry(type: 0x83, start: 2048, sectors: 8192)))
    try runChecked(
      tool("dd"), ["if=" + image, "of=" + disk, "bs=1M", "seek=4", "conv=notrunc,sparse", "status=none"])
    let volume = try store.volume("extended", from: disk)
    let partitions = try VolumeFiles.partitions(of: volume)
    #expect(partitions.map(\.number) == [5], "\(partitions)")
    #expect(partitions.first?.start == 4 << 20 && partitions.first?.fileSystem == "ext4", "\(partitions)")
    let files = try VolumeFiles.open(volume)
    #expect(files.info.partition == 5)
    let file = try #require(try files.lookup(FileName("where"), in: files.rootInode))
    #expect(try files.read(file.inode, offset: 0, length: 100) == Array("inside an extended partition".utf8))
  }

  @Test("a volume of zeros: no file system, and no partition to choose")
  func zeros() throws {
    let store = try ImageStore()
    let path = store.folder + "/zeros.img"
    try runChecked(tool("truncate"), ["-s", "8M", path])
    let volume = try store.volume("zeros", from: path)
    #expect(try VolumeFiles.partitions(of: volume).isEmpty)
    let none = Self.error { try VolumeFiles.open(volume) }
    #expect(none?.kind == .notFound && none?.message.contains("volume zeros") == true, "\(String(describing: none))")
    let partition = Self.error { try VolumeFiles.open(volume, partition: 1) }
    #expect(partition?.kind == .notFound && partition?.message.contains("no partition table") == true)
  }

  @Test("swap is named as what libblkid found, with the kernel mount as the way to read it")
  func unsupportedType() throws {
    let store = try ImageStore()
    let path = store.folder + "/swap.img"
    try runChecked(tool("truncate"), ["-s", "8M", path])
    try runChecked(tool("mkswap"), [path])
    let volume = try store.volume("swapvol", from: path)
    let error = Self.error { try VolumeFiles.open(volume) }
    #expect(error?.kind == .incompatible, "\(String(describing: error))")
    #expect(error?.message.contains("holds a swap file system") == true, "\(String(describing: error))")
    #expect(error?.remedy?.contains("reel serve swapvol --at") == true, "\(String(describing: error))")
    #expect(error?.remedy?.contains("--read-only") == true)
  }

  @Test("a damaged superblock is corrupt, not a crash: bad checksum, and impossible geometry without one")
  func damagedSuperblock() throws {
    let store = try ImageStore()
    // ext4 (metadata_csum): one flipped byte of the volume name breaks the checksum.
    let checksummed = try store.makeImage("csum", size: "8M")
    try patch(checksummed, at: 1024 + 0x78, [0x41])
    // ext2 (no checksum): s_log_block_size of 20 is no block size at all.
    let plain = try store.makeImage("plain", type: "ext2", size: "8M")
    try patch(plain, at: 1024 + 0x18, [20, 0, 0, 0])
    for (name, image) in [("csum", checksummed), ("plain", plain)] {
      let volume = try store.volume(name, from: image)
      let error = Self.error { try VolumeFiles.open(volume) }
      #expect(error?.kind == .corrupt, "\(name): \(String(describing: error))")
      #expect(error?.message.contains("volume \(name)") == true, "\(String(describing: error))")
    }
  }

  func patch(_ path: String, at offset: UInt64, _ bytes: [UInt8]) throws {
    let handle = try #require(FileHandle(forUpdatingAtPath: path))
    try handle.seek(toOffset: offset)
    try handle.write(contentsOf: Data(bytes))
    try handle.close()
  }
}
