import Foundation
import ReelCore
import Testing

@testable import ReelObjectStore

/// Reel's own reader of S3 replies: what S3 services send is read, everything else is
/// refused with a message naming the problem and where it is.
@Suite struct S3XMLReaderTests {
  func parse(_ text: String) throws -> S3XMLElement { try S3XMLElement.parse(Array(text.utf8), what: "test reply") }

  /// The refusal of `bytes`, which must be a protocol violation naming the reply.
  func refusal(_ bytes: [UInt8]) -> String {
    do {
      let root = try S3XMLElement.parse(bytes, what: "test reply")
      Issue.record("accepted <\(root.name)> from \(String(decoding: bytes, as: UTF8.self).debugDescription)")
      return ""
    } catch let error as ReelError {
      #expect(error.kind == .protocolViolation)
      #expect(error.message.contains("test reply"))
      #expect(error.remedy == "check that --s3-endpoint names an S3-compatible service")
      return error.message
    } catch {
      Issue.record("\(error)")
      return ""
    }
  }

  /// A ListObjectsV2 reply as AWS documents it, with the owner and checksum fields it adds.
  static let listObjectsV2 = """
    <?xml version="1.0" encoding="UTF-8"?>
    <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
        <Name>reel-set</Name>
        <Prefix>set/</Prefix>
        <KeyCount>2</KeyCount>
        <MaxKeys>2</MaxKeys>
        <IsTruncated>true</IsTruncated>
        <Contents>
            <Key>set/archives/000001-a &amp; b.reel.tar</Key>
            <LastModified>2026-12-05T10:18:44.000Z</LastModified>
            <ETag>&quot;f4453be520dc5b503c9138ab3c013717&quot;</ETag>
            <ChecksumAlgorithm>CRC32C</ChecksumAlgorithm>
            <Size>1048576</Size>
            <Owner><ID>75aa57f09aa0c8caeab4f8c24e99d10f8e7faeebf76c078efc7c6caea54ba06a</ID></Owner>
            <StorageClass>STANDARD</StorageClass>
        </Contents>
        <Contents>
            <Key>set/catalog.json</Key>
            <LastModified>2026-12-05T10:18:45.000Z</LastModified>
            <ETag>"0cc175b9c0f1b6a831c399e269772661-2"</ETag>
            <Size>2048</Size>
            <StorageClass>STANDARD</StorageClass>
        </Contents>
        <ContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</ContinuationToken>
        <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwN=</NextContinuationToken>
    </ListBucketResult>
    """

  @Test func aListObjectsV2ReplyReadsAsS3SendsIt() throws {
    let root = try parse(Self.listObjectsV2)
    #expect(root.name == "ListBucketResult")
    #expect(root.children("Contents").count == 2)
    #expect(root.child("Contents")?.child("Owner")?.value("ID")?.count == 64)
    let (objects, next) = try S3Replies.objects(Array(Self.listObjectsV2.utf8), prefix: "set/", source: "listing")
    #expect(objects.map(\.key) == ["set/archives/000001-a & b.reel.tar", "set/catalog.json"])
    #expect(objects.map(\.size) == [1_048_576, 2048])
    #expect(next == "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwN=")
  }

  @Test func errorAndMultipartRepliesRead() throws {
    let error = try parse(
      """
      <?xml version="1.0" encoding="UTF-8"?>
      <Error><Code>NoSuchKey</Code><Message>The resource you requested does not exist</Message>\
      <Resource>/reel-set/set/catalog.json</Resource><RequestId>4442587FB7D0A2F9</RequestId></Error>
      """)
    #expect(error.name == "Error" && error.value("Code") == "NoSuchKey")
    #expect(error.value("Resource") == "/reel-set/set/catalog.json")
    let initiated = try parse(
      """
      <?xml version="1.0" encoding="UTF-8"?>
      <InitiateMultipartUploadResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
        <Bucket>reel-set</Bucket>
        <Key>set/archives/000002-x.reel.tar</Key>
        <UploadId>VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA</UploadId>
      </InitiateMultipartUploadResult>
      """)
    #expect(initiated.name == "InitiateMultipartUploadResult")
    #expect(initiated.value("UploadId") == "VXBsb2FkIElEIGZvciA2aWWpbmcncyBteS1tb3ZpZS5tMnRzIHVwbG9hZA")
    #expect(initiated.value("Key") == "set/archives/000002-x.reel.tar")
  }

  @Test func namespacesAttributesAndPrefixes() throws {
    let root = try parse(
      """
      <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/" xmlns:s3='urn:x' s3:flag = "a&amp;b"\t>\
      <s3:Name>b</s3:Name ><Grantee xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="CanonicalUser"/>\
      </ListBucketResult>
      """)
    #expect(root.name == "ListBucketResult")
    #expect(root.children.map(\.name) == ["Name", "Grantee"])
    #expect(root.value("Name") == "b")
    #expect(root.child("Grantee")?.text == "" && root.child("Grantee")?.children.isEmpty == true)
    // The end tag must repeat the prefix: <s3:Name> is not closed by </Name>.
    #expect(refusal(Array("<r><s3:Name>b</Name></r>".utf8)).contains("</Name> closing <s3:Name> at byte 13"))
  }

  @Test func entitiesCharacterReferencesCDATAAndLineEnds() throws {
    let root = try parse(
      "<a>&lt;&gt;&amp;&quot;&apos; &#65;&#x42;&#x0063;&#128512;&#x1F600;&#xe9;"
        + "<![CDATA[<b>&amp;]]]]><![CDATA[>]]>x\r\ny\rz</a>")
    #expect(root.text == "<>&\"' ABc😀😀é<b>&amp;]]>x\ny\nz")
    #expect(root.children.isEmpty)
    // Text around children is the element's own, in order, white space included.
    let mixed = try parse("<a> one <b>two</b> three <c/>four</a>")
    #expect(mixed.text == " one  three four")
    #expect(mixed.value("b") == "two")
    #expect(try parse("<a><![CDATA[]]></a>").text == "")
  }

  @Test func prologCommentsAndTrailingWhiteSpace() throws {
    let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
    let text = """
      <?xml version='1.0' encoding='utf-8' standalone="yes" ?>
      <!-- S3 sends none; skipped where XML allows them -->
      <a><!----><b>1</b><!-- x - y -->2</a>
      <!-- after -->\n\t\r\n
      """
    let root = try S3XMLElement.parse(bom + Array(text.utf8), what: "test reply")
    #expect(root.name == "a" && root.text == "2" && root.value("b") == "1")
    #expect(try parse("<a/>").name == "a")
    #expect(try parse("<?xml version=\"1.0\"?><a/>  \n").name == "a")
  }

  /// Each refusal says what and where (a byte offset into the reply).
  @Test(arguments: [
    ("", "nothing at byte 0"),
    ("  \n", "no root element at byte 3"),
    ("hello", "text before the root element at byte 0"),
    ("<!DOCTYPE r [<!ENTITY a \"b\">]><r>&a;</r>", "a DTD, which no S3 reply has (nor its entities) at byte 0"),
    ("<r><!DOCTYPE r></r>", "a DTD, which no S3 reply has (nor its entities) at byte 3"),
    ("<r><!ELEMENT r></r>", "a markup declaration, which no S3 reply has at byte 3"),
    ("<?m?><r/>", "a processing instruction, which no S3 reply has at byte 0"),
    ("<r><?php x?></r>", "a processing instruction, which no S3 reply has at byte 3"),
    ("<r/><?m?>", "a processing instruction, which no S3 reply has at byte 4"),
    (" <?xml version=\"1.0\"?><r/>", "a processing instruction, which no S3 reply has at byte 1"),
    ("<?xml?><r/>", "an XML declaration without a version at byte 0"),
    ("<?xml version=\"2.0\"?><r/>", "XML version 2.0 at byte 6"),
    ("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><r/>", "the encoding ISO-8859-1, not UTF-8 at byte 20"),
    ("<?xml version=\"1.0\" bogus=\"1\"?><r/>", "a setting bogus the XML declaration cannot have at byte 20"),
    ("<?xml version=\"1.0\"", "cut short inside the XML declaration at byte 0"),
    ("<r>&foo;</r>", "the unknown entity &foo; at byte 3"),
    ("<r a=\"&foo;\"/>", "the unknown entity &foo; at byte 6"),
    ("<r>&amp</r>", "no ';' after &amp at byte 3"),
    ("<r>& x;</r>", "no name for an entity reference at byte 4"),
    ("<r>&#0;</r>", "a character reference to U+0, not a character XML allows at byte 3"),
    ("<r>&#x1;</r>", "a character reference to U+1, not a character XML allows at byte 3"),
    ("<r>&#xD800;</r>", "a character reference to U+D800, not a character XML allows at byte 3"),
    ("<r>&#xFFFE;</r>", "a character reference to U+FFFE, not a character XML allows at byte 3"),
    ("<r>&#x110000;</r>", "a character reference to U+110000, not a character XML allows at byte 3"),
    ("<r>&#99999999999999999999;</r>", "a character reference to U+110000, not a character XML allows at byte 3"),
    ("<r>&#;</r>", "a malformed character reference at byte 3"),
    ("<r>&#x41</r>", "a malformed character reference at byte 3"),
    ("<r>&#12a;</r>", "a malformed character reference at byte 3"),
    ("<unclosed>", "cut short inside <unclosed> at byte 10"),
    ("<a><ns:b>text", "cut short inside <ns:b> at byte 13"),
    ("<a></b>", "</b> closing <a> at byte 3"),
    ("<a><b></a></b>", "</a> closing <b> at byte 6"),
    ("<a/><b/>", "a second root element at byte 4"),
    ("<a/>x", "more after the root element at byte 4"),
    ("<a/></a>", "more after the root element at byte 4"),
    ("< a/>", "no name for an element at byte 1"),
    ("<1a/>", "no name for an element at byte 1"),
    ("<a:/>", "a colon where an element cannot have one at byte 2"),
    ("<:a/>", "a colon where an element cannot have one at byte 1"),
    ("<a:b:c/>", "a colon where an element cannot have one at byte 4"),
    ("<a\u{D7}/>", "no space before an attribute of <a> at byte 2"),
    ("<a b=\"<\"/>", "'<' inside the value of attribute b at byte 6"),
    ("<a b=c/>", "a value of attribute b not in quotes at byte 5"),
    ("<a b/>", "no '=' after attribute b at byte 4"),
    ("<a b=\"1\"c=\"2\"/>", "no space before an attribute of <a> at byte 8"),
    ("<a b=\"1\" b='2'/>", "attribute b twice in <a> at byte 9"),
    ("<a b=\"1/>", "cut short inside the value of attribute b at byte 5"),
    ("<a / >", "'/' not followed by '>' in <a> at byte 3"),
    ("<a></a b>", "no '>' after </a at byte 7"),
    ("<a>x]]>y</a>", "']]>' in text at byte 4"),
    ("<a><![CDATA[x</a>", "cut short inside a CDATA section at byte 3"),
    ("<a><!-- x -- y --></a>", "'--' inside a comment at byte 10"),
    ("<a><!-- x ---></a>", "'--' inside a comment at byte 10"),
    ("<a><!-- x </a>", "cut short inside a comment at byte 3"),
    ("<a>\u{1}</a>", "holds control character 0x01 at byte 3"),
    ("<a>\u{0}</a>", "holds control character 0x00 at byte 3"),
    ("<a>\u{FFFF}</a>", "holds U+FFFF at byte 3, not a character XML allows"),
  ])
  func malformedRepliesAreRefusedSayingWhereAndWhy(reply: String, problem: String) {
    let message = refusal(Array(reply.utf8))
    #expect(message.contains(problem), "\(reply.debugDescription): \(message)")
  }

  @Test func bytesThatAreNotUTF8AreRefused() {
    for (bytes, offset) in [
      ([0x3C, 0xF6, 0x65, 0x3E, 0x4E], 1),  // Latin-1 in a name
      ([0x3C, 0x61, 0x3E, 0xC0, 0xAF, 0x3C, 0x2F, 0x61, 0x3E], 3),  // overlong "/"
      ([0x3C, 0x61, 0x3E, 0xED, 0xA0, 0x80, 0x3C, 0x2F, 0x61, 0x3E], 3),  // a surrogate
      ([0x3C, 0x61, 0x3E, 0xF4, 0x90, 0x80, 0x80, 0x3C, 0x2F, 0x61, 0x3E], 3),  // past U+10FFFF
      ([0x3C, 0x61, 0x3E, 0xE2, 0x82], 3),  // cut inside a character
    ] as [([UInt8], Int)] {
      #expect(refusal(bytes).contains("is not UTF-8 text (byte \(offset) is"))
    }
  }

  @Test func nestingElementCountAndSizeAreBounded() throws {
    func nested(_ depth: Int) -> String {
      String(repeating: "<a>", count: depth) + "x" + String(repeating: "</a>", count: depth)
    }
    #expect(try parse(nested(16)).name == "a")
    #expect(refusal(Array(nested(17).utf8)).contains("elements nested more than 16 deep at byte 48"))
    #expect(refusal(Array((String(repeating: "<a>", count: 16) + "<b/>").utf8)).contains("more than 16 deep"))
    let attributes = (0..<64).map { " a\($0)='\($0)'" }.joined()
    #expect(try parse("<r\(attributes)/>").name == "r")
    #expect(refusal(Array("<r\(attributes) b=''/>".utf8)).contains("more than 64 attributes in <r> at byte 0"))
    let many = "<r>" + String(repeating: "<e/>", count: 199_999) + "</r>"
    #expect(try parse(many).children.count == 199_999)
    #expect(
      refusal(Array(("<r>" + String(repeating: "<e/>", count: 200_000) + "</r>").utf8)).contains(
        "more than 200000 elements"))
    let large = [UInt8]("<r>".utf8) + [UInt8](repeating: 0x78, count: 16 << 20)
    #expect(refusal(large).contains("more than any S3 reply"))
    let longest = [UInt8]("<r>".utf8) + [UInt8](repeating: 0x78, count: (16 << 20) - 7) + [UInt8]("</r>".utf8)
    #expect(try S3XMLElement.parse(longest, what: "test reply").text.utf8.count == (16 << 20) - 7)
  }

  /// A reply cut short anywhere is refused, never read as a shorter document.
  @Test func everyTruncationOfAReplyIsRefused() {
    let bytes = Array(Self.listObjectsV2.utf8)
    for length in 0..<bytes.count {
      #expect(throws: ReelError.self, "\(length) bytes") {
        try S3XMLElement.parse(Array(bytes[..<length]), what: "cut reply")
      }
    }
  }
}
