import Foundation

/// An object as HEAD or a listing describes it.
package struct S3ObjectInfo: Sendable, Equatable {
  package var key: String
  package var size: UInt64
  /// Without quotes. A single PUT's is the body's MD5 in hex; a multipart object's is
  /// `MD5(part MD5s)-PARTS`.
  package var etag: String
  package var lastModified: Date?
  /// `x-amz-meta-*` headers, names lower-cased with the prefix stripped; empty in listings.
  package var metadata: [String: String]

  package init(key: String, size: UInt64, etag: String, lastModified: Date?, metadata: [String: String]) {
    self.key = key
    self.size = size
    self.etag = etag
    self.lastModified = lastModified
    self.metadata = metadata
  }
}

/// One uploaded part of a multipart upload.
package struct S3Part: Sendable, Equatable {
  /// 1 to 10 000.
  package var number: Int
  /// Without quotes: the part's MD5 in hex.
  package var etag: String
  package var size: UInt64
  /// The part's CRC-32C as S3 writes it (base64 of 4 bytes, big-endian), when the server
  /// checked one; CompleteMultipartUpload names it again.
  package var crc32c: String?

  package init(number: Int, etag: String, size: UInt64, crc32c: String? = nil) {
    self.number = number
    self.etag = etag
    self.size = size
    self.crc32c = crc32c
  }
}

/// A multipart upload begun and neither completed nor aborted.
package struct S3PendingUpload: Sendable, Equatable {
  package var key: String
  package var uploadID: String
  package var initiated: Date?

  package init(key: String, uploadID: String, initiated: Date?) {
    self.key = key
    self.uploadID = uploadID
    self.initiated = initiated
  }
}

/// S3 Object Lock retention of one object version.
package struct S3Retention: Sendable, Equatable {
  package enum Mode: String, Sendable {
    /// Users with s3:BypassGovernanceRetention may still shorten or delete.
    case governance = "GOVERNANCE"
    /// No one may delete the version before `until`, not even the account's root.
    case compliance = "COMPLIANCE"
  }

  package var mode: Mode
  package var until: Date

  package init(mode: Mode, until: Date) {
    self.mode = mode
    self.until = until
  }
}

/// The largest part number S3 accepts.
package let s3MaximumParts = 10_000
/// The largest object S3 takes (5 TiB).
package let s3MaximumObjectSize: UInt64 = 5 << 40
