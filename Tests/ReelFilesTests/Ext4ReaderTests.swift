import Foundation
import ReelCore
import ReelFiles
import ReelStore
import ReelTestSupport
import Testing

@Suite("ext2/3/4 read through a volume in the store")
struct Ext4ReaderTests {
  struct Variant: Sendable, CustomTestStringConvertible {
    let type: String
    let options: [String]
    let creationTime: Bool
    var testDescription: String { ([type] + options).joined(separator: " ") }
  }

  static let variants: [Variant] = [
    Variant(type: "ext4", options: [], creationTime: true),
    Variant(type: "ext4", options: ["-O", "^extent,^64bit"], creationTime: true),
    Variant(type: "ext4", options: ["-O", "inline_data"], creationTime: true),
    Variant(type: "ext4", options: ["-b", "1024"], creationTime: true),
    Variant(type: "ext4", options: ["-O", "64bit,huge_file", "-I", "1024"], creationTime: true),
    Variant(type: "ext4", options: ["-O", "^metadata_csum,^dir_index"], creationTime: true),
    Variant(type: "ext3", options: [], creationTime: true),
    Variant(type: "ext2", options: ["-I", "128", "-O", "^filetype"], creationTime: false),
  ]

  @Test("every file, folder, link and attribute of the source folder reads back", arguments: variants)
  func treeReadsBack(_ variant: Variant) throws {
    let store = try ImageStore()
    let tree = try SampleTree.make(in: store.folder)
    let image = try store.makeImage("fs", type: variant.type, from: tree.root, options: variant.options)
    let files = try VolumeFiles.open(try store.volume("fs", from: image))
    #expect(files.info.type == variant.type)
    #expect(files.info.partition == nil && files.info.offset == 0 && files.info.size == 16 << 20)
    #expect(files.info.blockSize == (variant.options.contains("-b") ? 1024 : 4096))
    #expect(files.info.replayedTransactions == 0)
    try TreeComparison(source: tree.root, files: files, expectCreationTime: variant.creationTime).expectSame()

    let sparse = try #require(try files.lookup(FileName(tree.sparsePath), in: files.rootInode))
    #expect(try files.dataRanges(of: sparse.inode) == tree.sparseRanges)
    let allocated = try files.attributes(of: sparse.inode).allocatedBytes
    #expect(allocated >= 16384 && allocated < 64 << 10, "\(allocated)")
    // Reads across the holes, in pieces.
    let whole = try TreeComparison.sourceBytes(Array((tree.root + "/sparse").utf8))
    for (offset, length) in [(0, 4096), (4000, 10000), ((1 << 20) - 100, 5000), ((3 << 20) - 10, 100)] {
      #expect(
        try files.read(sparse.inode, offset: UInt64(offset), length: length)
          == Array(whole[offset..<min(whole.count, offset + length)]))
    }
    // Straight into a buffer that held other bytes: the holes come out as zeros.
    for (offset, length) in [(0, 4 << 20), (4000, 2 << 20), ((1 << 20) - 100, 5000)] {
      let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: length, alignment: 16)
      defer { buffer.deallocate() }
      buffer.initializeMemory(as: UInt8.self, repeating: 0xA5)
      let got = try files.read(sparse.inode, offset: UInt64(offset), into: buffer)
      #expect(got == min(length, whole.count - offset))
      #expect(Array(buffer[0..<got]) == Array(whole[offset..<(offset + got)]))
    }
    #expect(try files.read(sparse.inode, offset: 3 << 20, length: 10) == [])
    #expect(try files.read(sparse.inode, offset: (3 << 20) - 1, length: 10).count == 1)
    #expect(try files.lookup(FileName("no-such-name"), in: files.rootInode) == nil)
  }

  @Test("a folder of 3,000 entries, indexed (htree) by e2fsck -D, lists and looks up every name")
  func bigDirectory() throws {
    let store = try ImageStore()
    let tree = try SampleTree.make(in: store.folder, bigDirectory: 3000, special: false)
    let image = try store.makeImage("big", size: "24M", from: tree.root, options: ["-N", "4096"])
    // -D rebuilds folders with an htree index, as the kernel makes them past one block.
    let fsck = try run(tool("e2fsck"), ["-fyD", image])
    #expect(fsck.status <= 1, "\(fsck.output)")
    #expect(try store.debugfs(image, ["stat /many"]).contains("Flags: 0x81000"), "not indexed")
    let files = try VolumeFiles.open(try store.volume("big", from: image))
    try TreeComparison(source: tree.root, files: files, expectCreationTime: true).expectSame()
    let many = try #require(try files.lookup(FileName("many"), in: files.rootInode))
    let entries = try files.entries(of: many.inode)
    #expect(entries.count == 3000)
    for entry in entries.shuffled().prefix(200) {
      #expect(try files.lookup(entry.name, in: many.inode) == entry)
    }
  }

  @Test("unwritten extents read as zeros and are not data; times keep nanoseconds and dates past 2038")
  func unwrittenExtentsAndTimes() throws {
    let store = try ImageStore()
    let source = store.folder + "/source"
    try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: false)
    try SampleTree.write(pattern(8192, seed: 9), to: source + "/file")
    let image = try store.makeImage("times", from: source)
    // Blocks 2..9 allocated unwritten past the written two, then a hole to i_size. Times
    // with their extra words set by hand: nanoseconds << 2 | epoch bits.
    _ = try store.debugfs(
      image, write: true,
      [
        "fallocate /file 2 9", "sif /file size 81920",
        "sif /file mtime 100", "sif /file mtime_extra \((123_456_789 << 2) | 1)",
        "sif /file atime 0x80000000", "sif /file atime_extra \(999_999_999 << 2)",
        "sif /file crtime 1700000000", "sif /file crtime_extra \(5 << 2)",
        "sif /file uid 0x11170", "sif /file gid 0x22280",
      ])
    #expect(try store.debugfs(image, ["ex /file"]).contains("Uninit"))
    let files = try VolumeFiles.open(try store.volume("times", from: image))
    let file = try #require(try files.lookup(FileName("file"), in: files.rootInode))
    let bytes = try files.read(file.inode, offset: 0, length: 100_000)
    #expect(bytes.count == 81920)
    #expect(Array(bytes[0..<8192]) == pattern(8192, seed: 9))
    #expect(bytes[8192...].allSatisfy { $0 == 0 })
    #expect(try files.dataRanges(of: file.inode) == [0..<8192])
    let attributes = try files.attributes(of: file.inode)
    #expect(attributes.size == 81920)
    #expect(attributes.modificationTime == FileTime(seconds: 100 + (1 << 32), nanoseconds: 123_456_789))
    // 0x80000000 as signed 32 bits is before 1970, unless the epoch bits say otherwise.
    #expect(attributes.accessTime == FileTime(seconds: -(1 << 31), nanoseconds: 999_999_999))
    #expect(attributes.creationTime == FileTime(seconds: 1_700_000_000, nanoseconds: 5))
    #expect(attributes.uid == 0x11170 && attributes.gid == 0x22280)
    #expect(attributes.allocatedBytes == 10 * 4096)
  }

  @Test("inode numbers that are not files, and reads of the wrong kind, are clear errors")
  func wrongInodes() throws {
    let store = try ImageStore()
    let source = store.folder + "/source"
    try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: false)
    try SampleTree.write(Array("x".utf8), to: source + "/file")
    let image = try store.makeImage("small", size: "8M", from: source)
    let files = try VolumeFiles.open(try store.volume("small", from: image))
    let file = try #require(try files.lookup(FileName("file"), in: files.rootInode))
    for inode: UInt64 in [0, 1 << 30, 2000] {
      #expect(throws: ReelError.self) { try files.attributes(of: inode) }
      do {
        _ = try files.attributes(of: inode)
      } catch let error as ReelError {
        #expect(error.kind == .notFound, "\(error)")
      }
    }
    #expect(throws: ReelError.self) { try files.entries(of: file.inode) }
    #expect(throws: ReelError.self) { try files.read(files.rootInode, offset: 0, length: 10) }
    #expect(throws: ReelError.self) { try files.symlinkTarget(of: file.inode) }
  }

  @Test("encrypted files and folders (fscrypt) are refused by name; their attributes still read")
  func encrypted() throws {
    let store = try ImageStore()
    let source = store.folder + "/source"
    try FileManager.default.createDirectory(atPath: source + "/folder", withIntermediateDirectories: true)
    try SampleTree.write(pattern(5000, seed: 30), to: source + "/file")
    try SampleTree.write(pattern(10, seed: 31), to: source + "/folder/inside")
    let image = try store.makeImage("crypt", from: source)
    // EXT4_ENCRYPT_FL on top of what each inode has (extents; the folder is not indexed).
    _ = try store.debugfs(image, write: true, ["sif /file flags 0x80800", "sif /folder flags 0x80800"])
    let files = try VolumeFiles.open(try store.volume("crypt", from: image))
    let file = try #require(try files.lookup(FileName("file"), in: files.rootInode))
    let folder = try #require(try files.lookup(FileName("folder"), in: files.rootInode))
    #expect(try files.attributes(of: file.inode).size == 5000)
    for attempt in [
      { _ = try files.read(file.inode, offset: 0, length: 10) }, { _ = try files.entries(of: folder.inode) },
    ] {
      do {
        try attempt()
        Issue.record("an encrypted inode was read")
      } catch let error as ReelError {
        #expect(error.kind == .incompatible && error.message.contains("encrypted"), "\(error)")
      }
    }
  }

  @Test("many threads reading at once get the same bytes (libext2fs is called under one lock)")
  func concurrentReads() throws {
    let store = try ImageStore()
    let tree = try SampleTree.make(in: store.folder, special: false)
    let image = try store.makeImage("threads", from: tree.root)
    let files = try VolumeFiles.open(try store.volume("threads", from: image))
    let comparison = TreeComparison(source: tree.root, files: files)
    let paths = try comparison.walk().filter { $0.value.kind == .regular }
    let expected = try paths.mapValues { _ in [UInt8]() }.keys.reduce(into: [[UInt8]: [UInt8]]()) { result, path in
      result[path] = try TreeComparison.sourceBytes(Array(tree.root.utf8) + [0x2F] + path)
    }
    let failures = Locked<[String]>([])
    DispatchQueue.concurrentPerform(iterations: 8) { worker in
      for (path, entry) in paths.shuffled() {
        do {
          // Odd piece sizes so reads mix the cache, direct reads and block edges.
          var content: [UInt8] = []
          let piece = 4096 * (worker + 1) + 1000 * worker
          while true {
            let bytes = try files.read(entry.inode, offset: UInt64(content.count), length: piece)
            content += bytes
            if bytes.count < piece { break }
          }
          if content != expected[path] { failures.withLock { $0.append(String(decoding: path, as: UTF8.self)) } }
        } catch {
          failures.withLock { $0.append("\(error)") }
        }
      }
    }
    #expect(failures.withLock { $0 }.isEmpty, "\(failures.withLock { $0 })")
  }
}
