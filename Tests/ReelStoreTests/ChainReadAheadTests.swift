import Foundation
import ReelCore
import ReelTestSupport
import Testing

@testable import ReelStore

@Suite struct ChainReadAheadTests {
  /// A stand-in catalog: the chain of block b is one full version at seq b, and every
  /// block a fetch returned is counted.
  final class CountingCatalog: Sendable {
    let fetchedBlocks = Locked<[UInt64]>([])

    func fetch(_ range: Range<UInt64>) -> [[BlockVersion]] {
      fetchedBlocks.withLock { $0 += Array(range) }
      return range.map { [BlockVersion(block: $0, seq: Seq($0), full: true, chunk: nil, start: 0, length: 1)] }
    }
  }

  @Test func anInOrderReaderFetchesAWindowAtATimeAndGetsEveryBlocksOwnChain() throws {
    let ahead = ChainReadAhead()
    let catalog = CountingCatalog()
    let blockCount: UInt64 = 1000
    for block in 0..<blockCount {
      let chains = try ahead.chains(block..<(block + 1), blockCount: blockCount, fetch: catalog.fetch)
      #expect(chains.map { $0.map(\.block) } == [[block]])
    }
    let fetched = catalog.fetchedBlocks.withLock { $0 }
    // The first read has nothing before it; every later window is fetched once.
    #expect(fetched.count == Int(blockCount))
    #expect(Set(fetched).count == Int(blockCount))
  }

  @Test func scatteredReadsFetchOnlyWhatTheyAskFor() throws {
    let ahead = ChainReadAhead()
    let catalog = CountingCatalog()
    let blockCount: UInt64 = 100_000
    var rng = SplitMix(seed: 7)
    var asked = 0
    for _ in 0..<200 {
      // Far apart: never within the in-order slack of an earlier read.
      let block = UInt64(asked) * 400 + rng.next() % 100
      let chains = try ahead.chains(block..<(block + 2), blockCount: blockCount, fetch: catalog.fetch)
      #expect(chains.map { $0.map(\.block) } == [[block], [block + 1]])
      asked += 1
    }
    #expect(catalog.fetchedBlocks.withLock { $0.count } == 2 * asked)
  }

  @Test func readersInsideAWindowBeingFetchedWaitForItInsteadOfFetchingAgain() throws {
    let ahead = ChainReadAhead()
    let catalog = CountingCatalog()
    let blockCount: UInt64 = 4096
    // 8 threads take blocks in order from a shared counter, as a server's workers take a
    // sequential client's requests.
    let next = Locked<UInt64>(0)
    let failures = Locked(0)
    DispatchQueue.concurrentPerform(iterations: 8) { _ in
      while true {
        let block = next.withLock { value -> UInt64 in
          defer { value += 1 }
          return value
        }
        guard block < blockCount else { return }
        let chains = try? ahead.chains(block..<(block + 1), blockCount: blockCount, fetch: catalog.fetch)
        if chains?.first?.first?.block != block { failures.withLock { $0 += 1 } }
      }
    }
    #expect(failures.withLock { $0 } == 0)
    let fetched = catalog.fetchedBlocks.withLock { $0 }
    // Each block at most twice: the first reads, before any window exists, may overlap.
    #expect(fetched.count < Int(blockCount) + 8 * Int(ChainReadAhead.window))
  }

  @Test func forgottenWindowsAreFetchedAgain() throws {
    let ahead = ChainReadAhead()
    let catalog = CountingCatalog()
    _ = try ahead.chains(0..<1, blockCount: 1000, fetch: catalog.fetch)
    _ = try ahead.chains(1..<2, blockCount: 1000, fetch: catalog.fetch)
    let afterWindow = catalog.fetchedBlocks.withLock { $0.count }
    _ = try ahead.chains(2..<3, blockCount: 1000, fetch: catalog.fetch)
    #expect(catalog.fetchedBlocks.withLock { $0.count } == afterWindow)
    ahead.forget(2..<3)
    _ = try ahead.chains(3..<4, blockCount: 1000, fetch: catalog.fetch)
    #expect(catalog.fetchedBlocks.withLock { $0.count } > afterWindow)
  }

  /// A view holds the chains it fetched ahead; prune then moves the chunks they name to a
  /// new pack and deletes the old one. The same view still reads the right bytes.
  @Test func aViewWhoseWindowsWentStaleUnderPruneReadsWhereTheChunksAreNow() throws {
    let (fixture, last) = try StoreFixture.overwrittenThreeTimes()
    let view = try VolumeView(live: fixture.live, volume: fixture.name, at: .latest)
    let blockSize = 64 * 1024
    let blocks = Int(view.size) / blockSize
    /// Reads the blocks one at a time, from `first` on and round to the start.
    func readInOrder(from first: Int) throws -> [UInt8] {
      var bytes = [UInt8](repeating: 0, count: Int(view.size))
      for index in 0..<blocks {
        let block = (first + index) % blocks
        let got = try view.read(offset: UInt64(block * blockSize), length: blockSize)
        bytes.replaceSubrange((block * blockSize)..<((block + 1) * blockSize), with: got)
      }
      return bytes
    }
    // Block 0 is read alone; block 1 on come in one window.
    #expect(difference(try readInOrder(from: 0), fixture.model) == nil)
    let packsBefore = Set(fixture.packFiles.keys)
    _ = try fixture.live.prune(
      volume: fixture.name, keepWithin: .seconds(0), keepBookmarks: false, safetyMargin: .seconds(0),
      now: fixture.times[last]!)
    #expect(packsBefore.isDisjoint(with: Set(fixture.packFiles.keys)), "prune kept a pack: the window is not stale")
    // Block 2 is in the stale window: its chunks' pack is gone.
    #expect(difference(try readInOrder(from: 2), fixture.model) == nil)
  }
}
