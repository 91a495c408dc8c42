import Foundation
import ReelCore
import ReelJournal
import ReelTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// `reel serve` started and stopped over and over, each time after a write: every stop,
/// by SIGTERM or SIGINT, must exit 0 with every thread joined (a thread left unwinding
/// once crashed the exit about one stop in 30; scripts/serve-cycles.sh runs 1000).
@Suite(.serialized) struct ServeCyclesTests {
  @Test func everyStopAfterAWriteExitsCleanly() throws {
    let store = try TestStore()
    try store.createVolume("vm", size: "4M")
    var statuses: [Int32] = []
    for cycle in 0..<20 {
      let server = try ServerProcess(store: store, volumes: ["vm"])
      try runChecked(
        try tool("qemu-io"), ["-f", "raw", store.uri("vm"), "-c", "write -P \(cycle + 1) \(cycle * 4096) 4k"])
      let status = server.stop(cycle % 2 == 0 ? SIGTERM : SIGINT)
      #expect(status == 0, "cycle \(cycle): exit status \(status)\n\(server.log)")
      statuses.append(status)
    }
    #expect(statuses.allSatisfy { $0 == 0 })
    let writes = try store.records("vm").filter { $0.kind == .write }
    #expect(writes.count == 20)
    #expect(writes.map(\.offset) == (0..<20).map { UInt64($0 * 4096) })
  }
}
