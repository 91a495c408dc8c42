import Foundation
import ReelArchive
import ReelCodec
import ReelCore
import ReelIO
import ReelMedia
import ReelTestSupport

/// Seed inputs made by Reel itself: a tiny sealed archive, the cartridge `reel export`
/// writes it to, its catalog and label, the pipeline files shipped in pipelines/.
enum FuzzSeeds {
  /// A label block with fixed fields, as tape file 0 of the vtapes the catalog target builds.
  static func labelBlock() -> [UInt8] {
    (try? label().block(forTape: true)) ?? []
  }

  static func label(set: String? = nil) -> MediaLabel {
    MediaLabel(
      cartridgeID: "3f1c2a8e-5b6d-4e7f-8a9b-0c1d2e3f4a5b", name: "FUZZ1", mediaSet: set,
      mediaSetID: set.map { _ in "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d" }, sequence: set == nil ? 0 : 1,
      labeled: Timestamp(nanoseconds: 1_700_000_000_000_000_000))
  }

  /// Every target's seeds, written to `folder/<target>/<n>.bin`.
  static func build(into folder: String) throws {
    let fixture = try StoreFixture(size: 1 << 20, seed: 19)
    for index in 0..<6 {
      var data = [UInt8](repeating: 0, count: 16 << 10)
      for position in data.indices { data[position] = UInt8(truncatingIfNeeded: fixture.rng.next() % 7) }
      try fixture.append(.write(offset: UInt64(index) * 65536, data: data))
    }
    try fixture.append(.bookmark("fuzz"))
    let outcome = try Sealer.seal(
      SealRequest(volume: fixture.name, outputDirectory: folder + "/work/archives", masterKeys: [.random()]),
      live: fixture.live)
    guard case .sealed(let archive) = outcome else { throw ReelError(.usage, "nothing was sealed for the seeds") }
    let archiveBytes = try bytes(archive.path)

    // The manifest as the archive holds it.
    let reader = try TarReader(source: InMemoryArchiveSource(archiveBytes), label: archive.path)
    var manifest: [UInt8] = []
    while manifest.isEmpty, let member = try reader.next() {
      if member.name == "manifest.json" { manifest = try reader.readAll(limit: 1 << 20, name: member.name) }
    }

    // A cartridge as `reel export` leaves it.
    let cartridge = folder + "/work/seed.vtape"
    try VirtualTapeDrive.create(path: cartridge, capacity: 64 << 20)
    try MediaAddress(parsing: "vtape:" + cartridge).openOne().writeLabel(label())
    _ = try Exporter(mediaSet: "fuzz", targets: [.virtualTape(cartridge)], store: nil).export([archive.path])
    let catalog = try MediaAddress(parsing: "vtape:" + cartridge).openOne().readCatalog().json()

    let pipelines = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
      "../../../pipelines"
    ).standardized.path
    let yaml = try FileManager.default.contentsOfDirectory(atPath: pipelines).filter { $0.hasSuffix(".yaml") }.sorted()
      .map { try bytes(pipelines + "/" + $0) }

    let seeds: [String: [[UInt8]]] = [
      "tar": [withoutPadding(archiveBytes), Array(archiveBytes.prefix(16 << 10))],
      "manifest": [manifest],
      "label": [labelBlock(), Array(label(set: "weekly").text(forTape: false).utf8)],
      "catalog": [catalog],
      "vtape": [try bytes(cartridge)],
      "pipeline": yaml,
      "nbd": NBDFuzzing.seeds(),
      // The seal's default parity: the archive's last members, PARITY among them.
      "parity": [withoutPadding(archiveBytes)],
      "paritymap": [try parityMap()],
      "s3reply": s3Replies(),
    ]
    for (target, inputs) in seeds {
      try FileManager.default.createDirectory(atPath: folder + "/" + target, withIntermediateDirectories: true)
      for (index, input) in inputs.enumerated() {
        guard FileManager.default.createFile(atPath: folder + "/\(target)/\(index).bin", contents: Data(input)) else {
          throw ReelError(.io, "cannot write a seed into \(folder)")
        }
      }
    }
    try? FileManager.default.removeItem(atPath: folder + "/work")
  }

  /// A parity map as a parity cartridge holds it: two data cartridges, a label file each
  /// (written out here: the map's initializers belong to ReelMedia).
  static func parityMap() throws -> [UInt8] {
    let file: [String: Any] = [
      "file": 0, "kind": "label", "blockSize": 4096, "length": 4096, "offset": 0,
      "sha256": String(repeating: "a", count: 64), "content": Data(labelBlock()).base64EncodedString(),
    ]
    let members: [[String: Any]] = (0..<2).map { index in
      [
        "index": index, "cartridgeID": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6\(index)", "label": "D\(index)",
        "sequence": index + 1, "dataBlockSize": 4096, "length": 4096, "sha256": String(repeating: "b", count: 64),
        "files": [file],
      ]
    }
    let map: [String: Any] = [
      "format": ParityMap.formatName, "formatVersion": ParityMap.currentVersion,
      "mediaSet": ["name": "weekly", "id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"],
      "parityCartridgeID": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6f", "parityLabel": "P1", "group": 1, "parityOf": 2,
      "scheme": ParityMap.schemeName, "shardSize": 1 << 20, "members": members, "parityLength": 1 << 20,
      "paritySHA256": String(repeating: "c", count: 64), "written": "2026-12-05T00:00:00Z",
    ]
    return Array(try JSONSerialization.data(withJSONObject: map, options: [.sortedKeys]))
  }

  /// Replies as SeaweedFS 4.48 gave them to the client tests.
  static func s3Replies() -> [[UInt8]] {
    let listing = """
      <?xml version="1.0" encoding="UTF-8"?>
      <ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>set/</Prefix>\
      <MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated><Contents><Key>set/archives/000002-x.reel.tar</Key>\
      <ETag>&#34;f4453be520dc5b503c9138ab3c013717&#34;</ETag><Size>100000</Size><StorageClass>STANDARD</StorageClass>\
      <LastModified>2026-12-05T10:18:44Z</LastModified></Contents><KeyCount>1</KeyCount>\
      <NextContinuationToken>c2V0L2FyY2hpdmVz</NextContinuationToken></ListBucketResult>
      """
    let parts = """
      <ListPartsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket><Key>set/k</Key>\
      <UploadId>u</UploadId><IsTruncated>false</IsTruncated><Part><PartNumber>1</PartNumber>\
      <ETag>"0cc175b9c0f1b6a831c399e269772661"</ETag><Size>5242880</Size></Part>\
      <NextPartNumberMarker>1</NextPartNumberMarker></ListPartsResult>
      """
    let uploads = """
      <ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Bucket>b</Bucket>\
      <IsTruncated>false</IsTruncated><Upload><Key>set/k</Key><UploadId>95c4bea12e4edcf8_9978e407</UploadId>\
      <Initiated>2026-12-05T10:18:44Z</Initiated></Upload><MaxUploads>10000</MaxUploads><Prefix>set/</Prefix>\
      </ListMultipartUploadsResult>
      """
    let error = """
      <?xml version="1.0" encoding="UTF-8"?>
      <Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><Resource>/b</Resource>\
      <RequestId>18EE543C</RequestId><BucketName>b</BucketName></Error>
      """
    // What the reader takes that SeaweedFS does not send: a byte order mark, a prefix,
    // single quotes, references, CDATA, comments, self-closing elements, CR LF.
    let initiated = """
      \u{FEFF}<?xml version='1.0' encoding='UTF-8' standalone='yes'?>\r
      <!-- initiated --><s3:InitiateMultipartUploadResult xmlns:s3='http://s3.amazonaws.com/doc/2006-03-01/'>\r
      <s3:Bucket>b</s3:Bucket><s3:Key>set/&lt;k&gt;&#x1F600;&#233;</s3:Key><Owner/>\r
      <s3:UploadId><![CDATA[95c4bea1&2]]></s3:UploadId></s3:InitiateMultipartUploadResult>\r\n
      """
    return [listing, parts, uploads, error, initiated].map { Array($0.utf8) }
  }

  /// The archive without most of the zeros that fill its last 1 MiB record: the same
  /// members and end-of-archive blocks, a fraction of the bytes to read per input.
  static func withoutPadding(_ archive: [UInt8]) -> [UInt8] {
    let used = (archive.lastIndex { $0 != 0 } ?? 0) + 1
    return Array(archive.prefix((used + 511) / 512 * 512)) + [UInt8](repeating: 0, count: 1024)
  }

  static func load(_ folder: String, target: String) throws -> [[UInt8]] {
    let files = try FileManager.default.contentsOfDirectory(atPath: folder + "/" + target).sorted()
    return try files.map { try bytes(folder + "/\(target)/" + $0) }
  }

  static func bytes(_ path: String) throws -> [UInt8] {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw ReelError(.notFound, "cannot read \(path)")
    }
    return Array(data)
  }
}
