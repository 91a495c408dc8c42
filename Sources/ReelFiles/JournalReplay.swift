import ReelCore

/// What replaying an ext3/ext4 journal (jbd2) would write home: for each file-system block
/// a committed transaction wrote and that was not revoked after, its newest content.
package struct JournalReplayResult: Sendable, Equatable {
  package var blocks: [UInt64: [UInt8]]
  package var transactions: Int

  package init(blocks: [UInt64: [UInt8]] = [:], transactions: Int = 0) {
    self.blocks = blocks
    self.transactions = transactions
  }
}

package enum JournalReplay {
  /// Reads the journal through `readBlock` (journal block N, N = 0 is the journal
  /// superblock; `blockCount` blocks of `blockSize` bytes) and returns what recovery would
  /// write, as e2fsck and the kernel do; never writes anything.
  package static func replay(
    blockSize: Int, blockCount: UInt64, readBlock: (UInt64) throws -> [UInt8]
  ) throws -> JournalReplayResult {
    // Being built on branch files-jbd2.
    throw ReelError(.incompatible, "jbd2 journal replay is not built yet")
  }
}
