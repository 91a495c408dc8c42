import Foundation
import ReelCore

/// `manifest.json` of a sealed archive, format version 2 (docs/archive-format.md): what the
/// archive holds, readable without the key. Authenticated by `manifest.hmac`.
public struct ArchiveManifest: Codable, Sendable, Equatable {
  public static let formatName = "reel-archive"
  public static let currentVersion = 2

  public var format: String
  public var formatVersion: Int
  /// Lower-case UUID of this archive.
  public var archiveID: ArchiveID
  /// The archive whose history this one continues; nil for the first of a chain.
  public var parentID: ArchiveID?
  /// The first archive's ID, shared by every archive of the chain.
  public var chainID: ArchiveID
  /// 0 for the first archive of a chain, then 1, 2, …
  public var chainIndex: Int
  public var createdAt: String
  public var writer: String
  public var volume: Volume
  public var range: Range
  public var bookmarks: [Bookmark]
  public var members: [Member]
  public var compression: Compression
  public var cipher: Cipher
  public var keys: [WrappedKey]
  public var contents: Contents

  public struct Volume: Codable, Sendable, Equatable {
    public var name: String
    public var id: String
    public var size: UInt64
    public var blockSize: Int
    public var storeBlockSize: Int
    public var created: String
  }

  /// The journal window: records `fromSeq < seq <= untilSeq`. The first archive of a chain
  /// also carries the volume's state as of `fromSeq` (its base). The manifest's spelling of
  /// an `ArchiveSpan`'s window (times as RFC 3339 text), with what the window holds.
  public struct Range: Codable, Sendable, Equatable {
    public var fromSeq: Seq
    public var untilSeq: Seq
    public var fromTime: String
    public var untilTime: String
    public var records: Int
    public var bytesWritten: UInt64

    /// What the window holds, for people: "seq 5…9", or for a first archive holding only
    /// the state it starts from, "the state at seq 0".
    public var seqs: String {
      untilSeq > fromSeq ? "seq \(fromSeq + 1)…\(untilSeq)" : "the state at seq \(fromSeq)"
    }
  }

  /// A bookmark as the manifest spells it: the time as RFC 3339 text, read without the key
  /// and compared as written.
  public struct Bookmark: Codable, Sendable, Equatable {
    public var label: String
    public var seq: Seq
    public var time: String

    public init(_ bookmark: ReelCore.Bookmark) {
      label = bookmark.label
      seq = bookmark.seq
      time = bookmark.time.rfc3339
    }
  }

  /// A tar member other than README.txt's followers `manifest.json`, `manifest.hmac` and
  /// `SHA256SUMS`.
  public struct Member: Codable, Sendable, Equatable {
    public var name: String
    /// `readme`, `index` or `pack`.
    public var role: String
    public var size: UInt64
    public var sha256: String
  }

  public struct Compression: Codable, Sendable, Equatable {
    public var algorithm: String
    public var level: Int
    public var frameSize: Int
    /// log2 of the largest match distance a decoder needs (format version 2; absent in 1).
    public var windowLog: Int?
  }

  public struct Cipher: Codable, Sendable, Equatable {
    public var algorithm: String
    public var nonce: String
    public var associatedData: String
    public var keyDerivation: String
  }

  public struct WrappedKey: Codable, Sendable, Equatable {
    /// Fingerprint of the master key that wraps the data key.
    public var fingerprint: String
    public var wrap: String
    /// Base64 of the 40-byte RFC 3394 wrapping of the 32-byte data key.
    public var wrappedKey: String
  }

  public struct Contents: Codable, Sendable, Equatable {
    /// True when the archive carries the volume's state as of `fromSeq` (first of a chain).
    public var base: Bool
    public var blockVersions: Int
    public var chunks: Int
    public var chunkBytes: UInt64
    public var storedBytes: UInt64
    public var frames: Int
  }
}
