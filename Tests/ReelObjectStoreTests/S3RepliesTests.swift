import Foundation
import ReelCore
import Testing

@testable import ReelObjectStore

/// Listings are believed only after every entry is checked.
@Suite struct S3RepliesTests {
  func listing(_ contents: String, truncated: Bool = false, token: String? = nil) -> [UInt8] {
    let next = token.map { "<NextContinuationToken>\($0)</NextContinuationToken>" } ?? ""
    return Array(
      """
      <?xml version="1.0" encoding="UTF-8"?>
      <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><IsTruncated>\(truncated)</IsTruncated>\(contents)\(next)</ListBucketResult>
      """.utf8)
  }

  func entry(_ key: String, size: String = "10") -> String {
    "<Contents><Key>\(key)</Key><Size>\(size)</Size><ETag>\"e\"</ETag></Contents>"
  }

  @Test func aGoodPageAndItsToken() throws {
    let page = try S3Replies.objects(
      listing(entry("set/a") + entry("set/b", size: "0"), truncated: true, token: "t1"), prefix: "set/", source: "test")
    #expect(page.objects.map(\.key) == ["set/a", "set/b"])
    #expect(page.objects.map(\.size) == [10, 0])
    #expect(page.next == "t1")
    #expect(try S3Replies.objects(listing(""), prefix: "set/", source: "test").next == nil)
  }

  @Test func keysOutsideThePrefixBadSizesAndDeadEndsAreRefused() {
    for body in [
      listing(entry("other/a")),  // outside the prefix
      listing(entry("set/a", size: "-1")),
      listing(entry("set/a", size: "99999999999999999999999")),
      listing(entry("set/a", size: "ten")),
      listing("<Contents><Size>1</Size></Contents>"),  // no key
      listing(entry("set/a"), truncated: true),  // truncated, no token
      Array("<Error><Code>InternalError</Code></Error>".utf8),  // not a listing
    ] {
      #expect(throws: ReelError.self) { try S3Replies.objects(body, prefix: "set/", source: "test") }
    }
  }

  @Test func partListingsAreRangeChecked() throws {
    func parts(_ body: String, truncated: Bool = false, marker: String = "") -> [UInt8] {
      Array(
        "<ListPartsResult><IsTruncated>\(truncated)</IsTruncated>\(body)<NextPartNumberMarker>\(marker)</NextPartNumberMarker></ListPartsResult>"
          .utf8)
    }
    let good = try S3Replies.parts(
      parts("<Part><PartNumber>2</PartNumber><Size>5</Size><ETag>\"AB\"</ETag></Part>", truncated: true, marker: "2"),
      after: 0, source: "test")
    #expect(good.parts == [S3Part(number: 2, etag: "ab", size: 5)])
    #expect(good.next == 2)
    for body in [
      parts("<Part><PartNumber>0</PartNumber><Size>5</Size><ETag>x</ETag></Part>"),
      parts("<Part><PartNumber>10001</PartNumber><Size>5</Size><ETag>x</ETag></Part>"),
      parts("<Part><PartNumber>1</PartNumber><Size>6000000000</Size><ETag>x</ETag></Part>"),
      parts("<Part><PartNumber>1</PartNumber><Size>5</Size></Part>"),
      parts("", truncated: true, marker: "0"),  // a marker that does not move on
    ] {
      #expect(throws: ReelError.self) { try S3Replies.parts(body, after: 0, source: "test") }
    }
  }

  @Test func uploadListingsStayInsideThePrefix() throws {
    func uploads(_ body: String) -> [UInt8] {
      Array("<ListMultipartUploadsResult><IsTruncated>false</IsTruncated>\(body)</ListMultipartUploadsResult>".utf8)
    }
    let page = try S3Replies.uploads(
      uploads("<Upload><Key>set/a</Key><UploadId>u1</UploadId><Initiated>2026-12-05T10:00:00Z</Initiated></Upload>"),
      prefix: "set/", source: "test")
    #expect(page.uploads.map(\.uploadID) == ["u1"])
    #expect(page.uploads.first?.initiated != nil)
    #expect(throws: ReelError.self) {
      try S3Replies.uploads(
        uploads("<Upload><Key>x/a</Key><UploadId>u1</UploadId></Upload>"), prefix: "set/", source: "t")
    }
    #expect(throws: ReelError.self) {
      try S3Replies.uploads(uploads("<Upload><Key>set/a</Key></Upload>"), prefix: "set/", source: "t")
    }
  }
}
