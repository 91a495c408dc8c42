import Foundation
import ReelCore

/// `manifest.json` of a sealed archive, format version 2 (docs/archive-format.md): what the
/// archive holds, readable without the key. Authenticated by `manifest.hmac`.
package struct ArchiveManifest: Codable, Sendable, Equatable {
  package static let formatName = "reel-archive"
  package static let currentVersion = 2

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
