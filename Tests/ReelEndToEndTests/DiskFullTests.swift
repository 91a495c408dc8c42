import Foundation
import ReelCore
import ReelTestSupport
import Testing

/// The store on a small ext4 that fills up while a client writes: writes get ENOSPC, not
/// EIO; reads go on; once there is room, writes work again without a restart, and every
/// acknowledged write survives into the journal, the live image and a restore.
@Suite(.serialized) struct DiskFullTests {
  @Test func aFullDiskRefusesWritesWithENOSPCAndServingResumesOnceThereIsRoom() throws {
    let scratch = TemporaryDirectory("reel-disk-full")
    let kernel = try KernelMount(in: scratch.path)
    let image = scratch.path + "/small.ext4"
    try runChecked(try tool("truncate"), ["-s", "24M", image])
    // No blocks reserved for root: the server runs as root and must see the disk full.
    try runChecked(try tool("mkfs.ext4"), ["-q", "-F", "-m", "0", image])
    try kernel.mount(image)
    // Everything that keeps the file system busy ends inside, before it is unmounted.
    try withExtendedLifetime(kernel) { try fillAndRecover(on: kernel.mountPoint, scratch: scratch.path) }
  }

  func fillAndRecover(on mountPoint: String, scratch: String) throws {
    let store = try TestStore(root: mountPoint + "/store")
    try store.createVolume("vm", size: "16M")
    // Applying to the live image waits until 2.5 MiB are pending (then the writer applies);
    // the store's ingest waits for the stop, so only the journal and the image use the
    // disk meanwhile.
    let server = try ServerProcess(
      store: store, volumes: ["vm"],
      extra: ["--defer-live-image", "--live-image-lag", "2560K", "--ingest-interval", "3600"])
    let filler = mountPoint + "/filler"
    func qemu(_ commands: [String]) throws -> String {
      let result = try run(try tool("qemu-io"), ["-f", "raw", store.uri("vm")] + commands.flatMap { ["-c", $0] })
      return result.stdout + result.stderr
    }
    // ext4 reserves blocks for the metadata of delayed allocations and gives back what
    // writeback did not need, so the filler grows until a sync frees nothing more.
    func fill() throws {
      for _ in 0..<8 {
        var wrote = false
        for blockSize in ["1M", "4k"] {
          let dd = try run(
            try tool("dd"), ["if=/dev/zero", "of=\(filler)", "bs=\(blockSize)", "oflag=append", "conv=notrunc"])
          wrote = wrote || !dd.stderr.contains("0+0 records out")
        }
        try runChecked(try tool("sync"), [])
        if !wrote { return }
      }
    }
    func makeRoom() throws {
      try FileManager.default.removeItem(atPath: filler)
      try runChecked(try tool("sync"), [])
    }
    func expectReads(_ ranges: [(pattern: Int, offset: String)], _ when: String) throws {
      let output = try qemu(ranges.map { "read -P \($0.pattern) \($0.offset) 1M" })
      #expect(
        output.components(separatedBy: "read 1048576/1048576 bytes").count - 1 == ranges.count
          && !output.contains("failed"), "reads \(when):\n\(output)\n\(server.log)")
    }
    var model = [UInt8](repeating: 0, count: 16 << 20)
    func wrote(_ pattern: UInt8, at offset: Int, count: Int = 1 << 20) {
      model.replaceSubrange(offset..<(offset + count), with: repeatElement(pattern, count: count))
    }

    // Two writes, pending in the journal (2 MiB, below the limit).
    #expect(!(try qemu(["write -P 17 0 1M", "write -P 34 1M 1M"])).contains("failed"))
    wrote(17, at: 0)
    wrote(34, at: 1 << 20)

    // The disk fills up but for 1 MiB: enough for the journal to take a 512 KiB write
    // (2.5 MiB pending now), not for the image to take them all, so the next writer's
    // apply fails. It is told ENOSPC; what is pending stays readable (from the journal).
    let reserve = mountPoint + "/reserve"
    try runChecked(try tool("dd"), ["if=/dev/zero", "of=\(reserve)", "bs=1M", "count=1"])
    try fill()
    try FileManager.default.removeItem(atPath: reserve)
    try runChecked(try tool("sync"), [])
    #expect(!(try qemu(["write -P 51 4M 512k"])).contains("failed"), "\(server.log)")
    wrote(51, at: 4 << 20, count: 512 << 10)
    let refused = try qemu(["write -P 52 6M 512k"])
    #expect(refused.contains("No space left on device"), "\(refused)\n\(server.log)")
    #expect(server.log.contains("the live image cannot take journaled records"), "\(server.log)")
    try expectReads([(17, "0"), (34, "1M")], "while the image cannot take records")

    // Room again: the same write works, without a restart.
    try makeRoom()
    #expect(!(try qemu(["write -P 52 6M 512k"])).contains("failed"), "\(server.log)")
    wrote(52, at: 6 << 20, count: 512 << 10)
    #expect(server.log.contains("the live image takes journaled records again"))

    // Full again with little pending: now the journal itself refuses the record.
    try fill()
    let journalRefused = try qemu(["write -P 68 8M 1M"])
    #expect(journalRefused.contains("No space left on device"), "\(journalRefused)\n\(server.log)")
    try expectReads([(17, "0"), (34, "1M")], "while the journal is full")
    try makeRoom()
    #expect(!(try qemu(["write -P 68 8M 1M"])).contains("failed"), "\(server.log)")
    wrote(68, at: 8 << 20)
    try expectReads([(17, "0"), (34, "1M"), (68, "8M")], "after the disk had room again")

    // Nothing acknowledged is lost: the journal, the live image after a clean stop, and a
    // restore from the store all hold exactly the acknowledged writes.
    #expect(server.stop() == 0, "\(server.log)")
    let replayed = try store.replay("vm") == model
    #expect(replayed, "journal replay")
    let live = try #require(FileManager.default.contents(atPath: store.layout.liveImagePath("vm")))
    let liveMatches = Array(live) == model
    #expect(liveMatches, "live.img after the clean stop")
    let restored = scratch + "/restored.img"
    let restore = try store.reelCommand(["restore", "vm", "--at", "latest", "--output", restored])
    #expect(restore.succeeded, "\(restore.stderr)")
    let restoredMatches = Array(try #require(FileManager.default.contents(atPath: restored))) == model
    #expect(restoredMatches, "restore")
  }
}
