import ReelCore
import ReelMedia
import Testing

/// `s3://BUCKET[/PREFIX]` parsing: the names S3 allows, prefixes of plain components that
/// no key can climb out of, and one spelling per address.
@Suite struct ObjectStoreAddressTests {
  @Test func bucketsAndPrefixesParseToOneSpelling() throws {
    let cases: [(String, String, String, String)] = [
      ("s3://backups", "backups", "", "s3://backups"),
      ("s3://backups/", "backups", "", "s3://backups"),
      ("s3://backups/site-a", "backups", "site-a/", "s3://backups/site-a"),
      ("s3://backups//site-a///nightly/", "backups", "site-a/nightly/", "s3://backups/site-a/nightly"),
      ("s3://my.bucket-01/Reel_2026.v1", "my.bucket-01", "Reel_2026.v1/", "s3://my.bucket-01/Reel_2026.v1"),
    ]
    for (text, bucket, prefix, spelled) in cases {
      let address = try MediaAddress(parsing: text)
      #expect(address == .objectStore(bucket: bucket, prefix: prefix), "\(text)")
      #expect(address.description == spelled)
      #expect(try MediaAddress(parsing: spelled) == address)
      #expect(address.isObjectStore)
    }
    #expect(try !MediaAddress(parsing: "dir:/srv/cold").isObjectStore)
  }

  @Test func namesS3AndReelRefuseAreRefusedSayingWhy() {
    let refused: [(String, String)] = [
      ("s3:backups", "does not start with s3://"),
      ("s3://", "is not a bucket name"),
      ("s3://ab", "is not a bucket name"),
      ("s3://Backups", "is not a bucket name"),
      ("s3://-backups", "is not a bucket name"),
      ("s3://back_ups", "is not a bucket name"),
      ("s3://" + String(repeating: "b", count: 64), "is not a bucket name"),
      ("s3://backups/../other", "\"..\" is not allowed"),
      ("s3://backups/a/./b", "\".\" is not allowed"),
      ("s3://backups/a b", "\"a b\" is not allowed"),
      ("s3://backups/caf\u{E9}", "is not allowed"),
      ("s3://backups/" + Array(repeating: "p", count: 17).joined(separator: "/"), "more than 16 components"),
    ]
    for (text, reason) in refused {
      #expect {
        try MediaAddress(parsing: text)
      } throws: { error in
        guard let error = error as? ReelError else { return false }
        return error.kind == .usage && error.message.contains(reason) && error.remedy?.contains("s3://BUCKET") == true
      }
    }
  }
}
