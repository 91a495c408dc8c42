import Foundation
import ReelCore
import Testing

@testable import ReelObjectStore

@Suite struct S3NamesAndRepliesTests {
  let endpoint = try! S3Endpoint(url: "http://127.0.0.1:9000", region: "us-east-1", pathStyle: true)

  @Test func pathStyleURLsSortAndEncodeTheQuery() {
    let url = S3Names.url(
      endpoint: endpoint, bucket: "reel-set", key: "sets/a b+c/000002-x.reel.tar",
      query: [("uploads", ""), ("prefix", "a/b"), ("max-keys", "5")])
    #expect(url == "http://127.0.0.1:9000/reel-set/sets/a%20b%2Bc/000002-x.reel.tar?max-keys=5&prefix=a%2Fb&uploads=")
  }

  @Test func virtualHostedURLsPutTheBucketInTheHost() throws {
    let hosted = try S3Endpoint(url: "https://s3.eu-west-3.amazonaws.com", region: "eu-west-3", pathStyle: false)
    #expect(
      S3Names.url(endpoint: hosted, bucket: "reel-set", key: "catalog.json", query: [])
        == "https://reel-set.s3.eu-west-3.amazonaws.com/catalog.json")
    #expect(
      S3Names.url(endpoint: hosted, bucket: "reel-set", key: nil, query: [("list-type", "2")]).hasSuffix(
        ".com/?list-type=2"))
  }

  @Test func bucketKeyAndMetadataRules() {
    for good in ["abc", "reel-backups.site1", String(repeating: "a", count: 63)] {
      #expect(throws: Never.self) { try S3Names.checkBucket(good) }
    }
    for bad in ["ab", "Reel", "-abc", "abc.", "a..b", "a_b", String(repeating: "a", count: 64), "a/b"] {
      #expect(throws: ReelError.self) { try S3Names.checkBucket(bad) }
    }
    for bad in ["", "a/../b", "./a", "a\nb", String(repeating: "k", count: 1025)] {
      #expect(throws: ReelError.self) { try S3Names.checkKey(bad) }
    }
    #expect(throws: ReelError.self) { try S3Names.checkMetadata(name: "Reel_SHA", value: "x") }
    #expect(throws: ReelError.self) { try S3Names.checkMetadata(name: "reel-sha256", value: "line\nbreak") }
  }

  @Test func etagsLoseTheirQuotesAndMultipartETagsFollowS3() {
    #expect(S3Names.unquoted("\"F4453BE520DC5B503C9138AB3C013717\"") == "f4453be520dc5b503c9138ab3c013717")
    // MD5 of the two part MD5s' bytes, as `printf … | xxd -r -p | md5sum` gives.
    let parts = [
      S3Part(number: 2, etag: "0cc175b9c0f1b6a831c399e269772661", size: 1),
      S3Part(number: 1, etag: "900150983cd24fb0d6963f7d28e17f72", size: 3),
    ]
    #expect(S3Names.multipartETag(parts) == "5a97ffff06ef635f37d1459628ab50ee-2")
  }

  @Test func partsGrowOnlyWhereAFileWouldNeedMoreThanTenThousand() {
    let configured = 32 << 20
    #expect(S3FileUpload.partSize(forFileOf: 1 << 30, configured: configured) == 32 << 20)
    #expect(S3FileUpload.partSize(forFileOf: 10_000 * (32 << 20), configured: configured) == 32 << 20)
    // One byte more needs a 10 001st part of 32 MiB: parts of 33 MiB instead.
    #expect(S3FileUpload.partSize(forFileOf: 10_000 * (32 << 20) + 1, configured: configured) == 33 << 20)
    let fiveTiB: UInt64 = 5 << 40
    let grown = S3FileUpload.partSize(forFileOf: fiveTiB, configured: configured)
    #expect(grown % (1 << 20) == 0 && grown * 10_000 >= fiveTiB && (grown - (1 << 20)) * 10_000 < fiveTiB)
    #expect(grown <= UInt64(S3Settings.maximumPartSize))
  }

  /// CRC-32C as S3's checksum headers carry it: "123456789" is the standard check value.
  @Test func crc32cIsBase64OfTheBigEndianChecksum() {
    let check = Array("123456789".utf8).withUnsafeBytes { S3Names.crc32c($0) }
    #expect(check == Data([0xE3, 0x06, 0x92, 0x83]).base64EncodedString())
    #expect(S3Names.isCRC32C(check) && !S3Names.isCRC32C("4waSgw") && !S3Names.isCRC32C("not-base64"))
  }

  @Test func listingRepliesParseWithNamespaces() throws {
    let xml = """
      <?xml version="1.0" encoding="UTF-8"?>
      <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><IsTruncated>true</IsTruncated>
      <Contents><Key>p/a</Key><ETag>&#34;abc&#34;</ETag><Size>12</Size><LastModified>2026-12-05T10:18:44.123Z</LastModified></Contents>
      <NextContinuationToken>tok</NextContinuationToken></ListBucketResult>
      """
    let root = try S3XMLElement.parse(Array(xml.utf8), what: "listing")
    #expect(root.name == "ListBucketResult")
    #expect(root.value("IsTruncated") == "true")
    let entry = try #require(root.children("Contents").first)
    #expect(entry.value("Key") == "p/a")
    #expect(S3Names.unquoted(entry.value("ETag") ?? "") == "abc")
    #expect(S3Time.parse(iso: entry.value("LastModified")) != nil)
  }

  @Test func hostileRepliesAreRefused() throws {
    let bomb = """
      <?xml version="1.0"?>
      <!DOCTYPE r [<!ENTITY a "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa">
      <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
      <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
      <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
      <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
      <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">]>
      <r>&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;</r>
      """
    // A DTD is refused outright, and with it every entity it could define.
    #expect(throws: ReelError.self) { try S3XMLElement.parse(Array(bomb.utf8), what: "bomb") }
    let deep = String(repeating: "<a>", count: 100) + String(repeating: "</a>", count: 100)
    #expect(throws: ReelError.self) { try S3XMLElement.parse(Array(deep.utf8), what: "deep") }
    #expect(throws: ReelError.self) { try S3XMLElement.parse(Array("<unclosed>".utf8), what: "bad") }
    #expect(throws: ReelError.self) { try S3XMLElement.parse([], what: "empty") }
    // FoundationXML, which read replies before Reel's own reader, crashed on these (found by reel-fuzz).
    #expect(throws: ReelError.self) { try S3XMLElement.parse(Array("<?m?>".utf8), what: "instruction") }
    #expect(throws: ReelError.self) { try S3XMLElement.parse([0x3C, 0xF6, 0x65, 0x3E, 0x4E], what: "not UTF-8") }
    #expect(throws: ReelError.self) { try S3XMLElement.parse(Array("<a>\u{1}</a>".utf8), what: "control") }
    #expect(try S3XMLElement.parse(Array("<?xml version=\"1.0\"?>\n<a>é</a>".utf8), what: "declared").text == "é")
  }

  @Test func errorCodesBecomeErrorsThatSayWhatToDo() {
    func reply(_ status: Int, _ code: String) -> HTTPResponse {
      HTTPResponse(
        status: status, headers: [:],
        body: Array("<?xml version=\"1.0\"?><Error><Code>\(code)</Code><Message>m</Message></Error>".utf8))
    }
    let refused = S3Failure.error(
      reply(403, "SignatureDoesNotMatch"), doing: "listing", bucket: "b", key: nil, endpoint: endpoint)
    #expect(refused.kind == .wrongKey)
    #expect(refused.description.contains("AWS_SECRET_ACCESS_KEY"))
    let missing = S3Failure.error(
      reply(404, "NoSuchBucket"), doing: "listing", bucket: "nobucket", key: nil, endpoint: endpoint)
    #expect(missing.kind == .notFound)
    #expect(missing.description.contains("nobucket"))
    #expect(S3Failure.isTransient(reply(503, "SlowDown")))
    #expect(S3Failure.isTransient(reply(400, "RequestTimeout")))
    #expect(!S3Failure.isTransient(reply(403, "AccessDenied")))
    let unreachable = S3Failure.error(
      TransportFailure(kind: .unreachable, code: 7, detail: "Connection refused"), doing: "listing", bucket: "b",
      key: nil,
      endpoint: endpoint)
    #expect(unreachable.description.contains("is the server running"))
    let tls = S3Failure.error(
      TransportFailure(kind: .tls, code: 60, detail: "self-signed"), doing: "listing", bucket: "b", key: nil,
      endpoint: endpoint)
    #expect(tls.description.contains("--s3-ca-bundle"))
  }
}
