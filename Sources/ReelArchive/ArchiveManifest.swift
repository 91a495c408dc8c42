import Foundation
import ReelCore
import ReelStore

/// `manifest.json` of a sealed archive, format version 3 (docs/archive-format.md): what the
/// archive holds, readable without the key. Authenticated by `manifest.hmac`.
package struct ArchiveManifest: Codable, Sendable, Equatable {
  package static let formatName = "reel-archive"
  package static let currentVersion = 4
  /// The pack layouts a seal can write (`reel seal --format`): 1 the store's records as
  /// they are, 2 raw records in 8 MiB zstd groups.
  package static let packLayouts = 1...2
  /// The first version that carries a volume's lineage (its origin, its rollbacks). A seal
  /// writes it only for archives that need it, so every other archive stays readable by
  /// Reels that read version 2.
  package static let lineageVersion = 3
  /// Version 3 plus a `PARITY` member after SHA256SUMS: Reed–Solomon parity over every
  /// byte before it (docs/archive-format.md, "Parity").
  package static let parityVersion = 4

  package var format: String
  package var formatVersion: Int
  /// Lower-case UUID of this archive.
  package var archiveID: ArchiveID
  /// The archive whose history this one continues; nil for the first of a chain.
  package var parentID: ArchiveID?
  /// The first archive's ID, shared by every archive of the chain.
  package var chainID: ArchiveID
  /// 0 for the first archive of a chain, then 1, 2, …
  package var chainIndex: Int
  package var createdAt: String
  package var writer: String
  package var volume: Volume
  package var range: Range
  package var bookmarks: [Bookmark]
  package var members: [Member]
  package var compression: Compression
  package var cipher: Cipher
  package var keys: [WrappedKey]
  package var contents: Contents
  /// Version 3: the pack layout of the archive's frames (1 or 2, as in those versions).
  package var packLayout: Int?
  /// Version 3, archives of a clone: the volume and point whose state the clone started
  /// from. A chain whose first archive names an origin restores only over the origin's
  /// history up to `seq`.
  package var origin: Origin?
  /// Version 3: the rollbacks in the window (journal records of kind 6), oldest first.
  package var rollbacks: [Rollback]?
  /// Version 4: the parity the archive carries in its `PARITY` member (the geometry is in
  /// PARITY itself, written after the manifest).
  package var parity: Parity?

  package struct Parity: Codable, Sendable, Equatable {
    package static let reedSolomonCauchy = "reed-solomon-cauchy-gf256"
    package var scheme: String
    package var percent: Int

    package init(scheme: String = Self.reedSolomonCauchy, percent: Int) {
      self.scheme = scheme
      self.percent = percent
    }
  }

  /// How pack frames are laid out: the version that introduced the layout (1 or 2).
  package var packFormat: Int { formatVersion >= Self.lineageVersion ? (packLayout ?? 2) : formatVersion }

  /// The origin of a clone, named by volume ID (renames never break the link), with the
  /// name and time it had when the archive was sealed, for people.
  package struct Origin: Codable, Sendable, Equatable {
    package var volumeID: String
    package var volumeName: String
    package var seq: Seq
    package var time: String

    package init(volumeID: String, volumeName: String, seq: Seq, time: String) {
      self.volumeID = volumeID
      self.volumeName = volumeName
      self.seq = seq
      self.time = time
    }

    /// "disk (id …) at seq 42 (2026-12-05T04:00:00Z)".
    package var description: String { "\(volumeName) (id \(volumeID)) at seq \(seq) (\(time))" }
  }

  /// A rollback record: at `seq` the volume's contents became those at `targetSeq`.
  package struct Rollback: Codable, Sendable, Equatable {
    package var seq: Seq
    package var targetSeq: Seq
    package var time: String

    package init(seq: Seq, targetSeq: Seq, time: String) {
      self.seq = seq
      self.targetSeq = targetSeq
      self.time = time
    }

    package init(_ rollback: RollbackEvent) {
      self.init(seq: rollback.seq, targetSeq: rollback.targetSeq, time: rollback.time.rfc3339)
    }
  }

  package struct Volume: Codable, Sendable, Equatable {
    package var name: String
    package var id: String
    package var size: UInt64
    package var blockSize: Int
    package var storeBlockSize: Int
    package var created: String
  }

  /// The journal window: records `fromSeq < seq <= untilSeq`. The first archive of a chain
  /// also carries the volume's state as of `fromSeq` (its base). The manifest's spelling of
  /// an `ArchiveSpan`'s window (times as RFC 3339 text), with what the window holds.
  package struct Range: Codable, Sendable, Equatable {
    package var fromSeq: Seq
    package var untilSeq: Seq
    package var fromTime: String
    package var untilTime: String
    package var records: Int
    package var bytesWritten: UInt64

    /// What the window holds, for people: "seq 5…9", or for a first archive holding only
    /// the state it starts from, "the state at seq 0".
    package var seqs: String {
      untilSeq > fromSeq ? "seq \(fromSeq + 1)…\(untilSeq)" : "the state at seq \(fromSeq)"
    }
  }

  /// A bookmark as the manifest spells it: the time as RFC 3339 text, read without the key
  /// and compared as written.
  package struct Bookmark: Codable, Sendable, Equatable {
    package var label: String
    package var seq: Seq
    package var time: String

    package init(_ bookmark: ReelCore.Bookmark) {
      label = bookmark.label
      seq = bookmark.seq
      time = bookmark.time.rfc3339
    }
  }

  /// A tar member other than README.txt's followers `manifest.json`, `manifest.hmac` and
  /// `SHA256SUMS`.
  package struct Member: Codable, Sendable, Equatable {
    package var name: String
    /// `readme`, `index` or `pack`.
    package var role: String
    package var size: UInt64
    package var sha256: String
  }

  package struct Compression: Codable, Sendable, Equatable {
    package var algorithm: String
    package var level: Int
    package var frameSize: Int
    /// log2 of the largest match distance a decoder needs (format version 2; absent in 1).
    package var windowLog: Int?
  }

  package struct Cipher: Codable, Sendable, Equatable {
    package var algorithm: String
    package var nonce: String
    var associatedData: String
    var keyDerivation: String
  }

  package struct WrappedKey: Codable, Sendable, Equatable {
    /// Fingerprint of the master key that wraps the data key.
    package var fingerprint: String
    package var wrap: String
    /// Base64 of the 40-byte RFC 3394 wrapping of the 32-byte data key.
    package var wrappedKey: String
  }

  package struct Contents: Codable, Sendable, Equatable {
    /// True when the archive carries the volume's state as of `fromSeq` (first of a chain).
    package var base: Bool
    package var blockVersions: Int
    package var chunks: Int
    package var chunkBytes: UInt64
    package var storedBytes: UInt64
    package var frames: Int
  }
}
