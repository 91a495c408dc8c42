import Foundation
import ReelCore

/// One page of a listing as a reply gives it, every entry checked: keys inside the asked
/// prefix, sizes and part numbers that are numbers in range, a way on when the page says
/// it is truncated. `source` names the reply in errors ("http://host listing s3://bucket").
package enum S3Replies {
  /// ListObjectsV2: the objects and the continuation token (nil on the last page).
  package static func objects(_ body: [UInt8], prefix: String, source: String) throws -> (
    objects: [S3ObjectInfo], next: String?
  ) {
    let root = try document(body, root: "ListBucketResult", source: source)
    var objects: [S3ObjectInfo] = []
    for entry in root.children("Contents") {
      guard let key = entry.value("Key"), !key.isEmpty, key.hasPrefix(prefix),
        let size = entry.value("Size").flatMap(UInt64.init)
      else {
        throw ReelError(.protocolViolation, "\(source): an entry outside \"\(prefix)\" or without a key or size")
      }
      objects.append(
        S3ObjectInfo(
          key: key, size: size, etag: S3Names.unquoted(entry.value("ETag") ?? ""),
          lastModified: S3Time.parse(iso: entry.value("LastModified")), metadata: [:]))
    }
    guard root.value("IsTruncated") == "true" else { return (objects, nil) }
    guard let next = root.value("NextContinuationToken"), !next.isEmpty, next.utf8.count <= 4096 else {
      throw ReelError(.protocolViolation, "\(source): a truncated listing with no continuation token")
    }
    return (objects, next)
  }

  /// ListParts: the parts and the marker of the next page (nil on the last page, or when
  /// the marker would not move past `after`).
  package static func parts(_ body: [UInt8], after: Int, source: String) throws -> (parts: [S3Part], next: Int?) {
    let root = try document(body, root: "ListPartsResult", source: source)
    var parts: [S3Part] = []
    for entry in root.children("Part") {
      guard let number = entry.value("PartNumber").flatMap(Int.init), (1...s3MaximumParts).contains(number),
        let size = entry.value("Size").flatMap(UInt64.init), size <= UInt64(S3Settings.maximumPartSize),
        let etag = entry.value("ETag"), !etag.isEmpty
      else {
        throw ReelError(
          .protocolViolation, "\(source): a part without a number in 1…\(s3MaximumParts), a size or an ETag")
      }
      // Listed by servers that keep part checksums; a malformed one is left out, not believed.
      let crc32c = entry.value("ChecksumCRC32C").flatMap { S3Names.isCRC32C($0) ? $0 : nil }
      parts.append(S3Part(number: number, etag: S3Names.unquoted(etag), size: size, crc32c: crc32c))
    }
    guard root.value("IsTruncated") == "true" else { return (parts, nil) }
    guard let next = root.value("NextPartNumberMarker").flatMap(Int.init), next > after, next <= s3MaximumParts else {
      throw ReelError(.protocolViolation, "\(source): a truncated part listing with no way to continue")
    }
    return (parts, next)
  }

  /// ListMultipartUploads: the uploads and the markers of the next page.
  package static func uploads(_ body: [UInt8], prefix: String, source: String) throws -> (
    uploads: [S3PendingUpload], next: (key: String, upload: String)?
  ) {
    let root = try document(body, root: "ListMultipartUploadsResult", source: source)
    var uploads: [S3PendingUpload] = []
    for entry in root.children("Upload") {
      guard let key = entry.value("Key"), !key.isEmpty, key.hasPrefix(prefix), let id = entry.value("UploadId"),
        !id.isEmpty
      else {
        throw ReelError(.protocolViolation, "\(source): an upload outside \"\(prefix)\" or without an ID")
      }
      uploads.append(S3PendingUpload(key: key, uploadID: id, initiated: S3Time.parse(iso: entry.value("Initiated"))))
    }
    guard root.value("IsTruncated") == "true" else { return (uploads, nil) }
    guard let key = root.value("NextKeyMarker"), !key.isEmpty else {
      throw ReelError(.protocolViolation, "\(source): a truncated upload listing with no way to continue")
    }
    return (uploads, (key, root.value("NextUploadIdMarker") ?? ""))
  }

  static func document(_ body: [UInt8], root name: String, source: String) throws -> S3XMLElement {
    let root = try S3XMLElement.parse(body, what: "reply to \(source)")
    guard root.name == name else {
      throw ReelError(.protocolViolation, "\(source) answered with <\(root.name)>, not <\(name)>")
    }
    return root
  }
}
