import Foundation
import ReelArchive
import ReelCodec
import ReelCore
import ReelMedia
import ReelObjectStore
import ReelPipeline
import ReelTestSupport

/// A parser of untrusted input and how it is driven. Errors are the expected outcome of
/// most inputs; a trap, a hang or an absurd allocation is a finding.
struct FuzzTarget: Sendable {
  var name: String
  /// What the target reads, for `reel-fuzz list`.
  var summary: String
  /// Runs one input; `scratch` is a folder it may use.
  var run: @Sendable (_ input: [UInt8], _ scratch: String) throws -> Void

  static let all: [FuzzTarget] = [tar, manifest, label, catalog, vtape, pipeline, nbd, parity, parityMap, s3reply]

  static func named(_ name: String) throws -> FuzzTarget {
    guard let target = all.first(where: { $0.name == name }) else {
      throw ReelError(.usage, "no fuzz target \(name)", remedy: "one of \(all.map(\.name).joined(separator: ", "))")
    }
    return target
  }

  /// Tar headers (ustar and pax) through the one tar reader, the structural verifier and
  /// the manifest peek `reel media catalog --scan` uses on cut-off archives.
  static let tar = FuzzTarget(name: "tar", summary: "sealed archive bytes: TarReader, verifier, ArchivePeek") {
    input, _ in
    var source = InMemoryArchiveSource(input)
    _ = try? ArchiveVerifier.verifyStructure(source: &source, label: "fuzz input")
    _ = try? ArchivePeek.manifest(fromPrefix: input, describing: "fuzz input")
    let reader = try TarReader(source: InMemoryArchiveSource(input), label: "fuzz input")
    while let member = try reader.next() { _ = try reader.readAll(limit: 1 << 20, name: member.name) }
  }

  /// manifest.json as read from an archive (and summarized into catalogs).
  static let manifest = FuzzTarget(name: "manifest", summary: "manifest.json: decode, summary, chain checks") {
    input, _ in
    let manifest = try JSONDecoder().decode(ArchiveManifest.self, from: Data(input))
    let summary = ArchiveSummary(manifest)
    try? summary.validate(describing: "fuzz input")
    _ = summary.fileName
    _ = manifest.range.seqs
    _ = ArchiveChain.problems(of: [manifest, manifest])
  }

  /// S3 replies as a server (or anything at --s3-endpoint) sends them: listing pages of
  /// objects, parts and pending uploads, error documents.
  static let s3reply = FuzzTarget(name: "s3reply", summary: "S3 XML replies: listings, parts, uploads, errors") {
    input, _ in
    _ = try? S3Replies.objects(input, prefix: "set/", source: "fuzz input")
    _ = try? S3Replies.parts(input, after: 0, source: "fuzz input")
    _ = try? S3Replies.uploads(input, prefix: "set/", source: "fuzz input")
    _ = try S3XMLElement.parse(input, what: "fuzz input").value("Code")
  }

  static let label = FuzzTarget(name: "label", summary: "media label text (tape file 0, REEL-LABEL.txt)") { input, _ in
    guard let label = try MediaLabel.parse(input) else { return }
    _ = try label.block(forTape: true)
  }

  /// A cartridge's catalog as the last tape file of a vtape whose label is Reel's: read
  /// the way rehydration reads media.
  static let catalog = FuzzTarget(name: "catalog", summary: "on-media catalog JSON, read by rehydration's supply") {
    input, scratch in
    _ = try? CartridgeCatalog.decode(input)
    let path = scratch + "/catalog.vtape"
    try VtapeImage.write(path: path, files: [FuzzSeeds.labelBlock(), VtapeImage.padded(input)])
    let supply = try MediaArchiveSupply(MediaAddress(parsing: "vtape:" + path))
    let offers = try supply.offers()
    _ = try supply.namedArchives()
    _ = try supply.whereabouts()
    _ = try supply.mediaSets()
    for offer in offers.prefix(4) {
      _ = try? supply.copy(of: offer, sha256: String(repeating: "0", count: 64), size: offer.size ?? 0)
      if let source = try? supply.open(offer) { try? drain(source) }
    }
  }

  /// A whole vtape cartridge file made by `reel export`: header, record framing, label,
  /// set catalogs, archive, catalog; read by catalog, scan and every offered archive.
  static let vtape = FuzzTarget(name: "vtape", summary: "vtape cartridge file: records, catalog, scan") {
    input, scratch in
    let path = scratch + "/cartridge.vtape"
    guard FileManager.default.createFile(atPath: path, contents: Data(input)) else {
      throw ReelError(.io, "cannot write \(path)")
    }
    let volume = try MediaAddress(parsing: "vtape:" + path).openOne()
    _ = try? volume.readLabel()
    _ = try? volume.readCatalog()
    _ = try? volume.scan()
    let supply = try MediaArchiveSupply(MediaAddress(parsing: "vtape:" + path))
    for offer in (try supply.offers()).prefix(4) {
      if let source = try? supply.open(offer) { try? drain(source) }
    }
  }

  static let pipeline = FuzzTarget(name: "pipeline", summary: "pipeline YAML files") { input, _ in
    let definition = try PipelineFile.parse(
      String(decoding: input, as: UTF8.self), file: "fuzz.yaml", environment: [:])
    // What stages compute from their parameters before they touch anything.
    for stage in definition.stages {
      for case .duration(let window) in stage.parameters.values {
        _ = Timestamp(nanoseconds: Timestamp.now().nanoseconds - window.nanoseconds)
      }
    }
  }

  /// A version 4 archive's PARITY as `reel verify`, `reel repair` and rehydration read it:
  /// the table copies found by scanning back from the end, their headers and shard tables
  /// range-checked, and every span rebuilt in memory as far as the geometry claims (the
  /// walk `reel repair` makes, without writing the result and its fsyncs).
  static let parity = FuzzTarget(name: "parity", summary: "archive PARITY member: header, shard tables, repair") {
    input, scratch in
    let path = scratch + "/archive.reel.tar"
    guard FileManager.default.createFile(atPath: path, contents: Data(input)) else {
      throw ReelError(.io, "cannot write \(path)")
    }
    _ = try? ArchiveParity.inspect(path: path)
  }

  /// A parity cartridge's map (tape files 2 and 3), which sizes buffers and steers a drive.
  static let parityMap = FuzzTarget(name: "paritymap", summary: "parity cartridge map JSON") { input, _ in
    let map = try ParityMap.decode(input, describing: "fuzz input")
    _ = map.memberLabels
    _ = try map.json()
  }

  static let nbd = FuzzTarget(name: "nbd", summary: "NBD handshake and requests against a scratch volume") {
    input, scratch in
    try NBDFuzzing.run(input, scratch: scratch)
  }
}

/// Reads a stream to its end, as an import would.
func drain(_ source: any ArchiveByteSource) throws {
  var source = source
  let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 16)
  defer { buffer.deallocate() }
  while try source.read(into: buffer) > 0 {}
}

/// A vtape cartridge file written directly (no fsync, no lock): header, then each tape
/// file as 4096-byte records in SIMH framing with a filemark after it.
enum VtapeImage {
  static func write(path: String, files: [[UInt8]]) throws {
    var bytes = Array("REEL-VTAPE 1\ncapacity: 67108864\nearly-warning: 62914560\nwrite-protected: no\n".utf8)
    bytes += [UInt8](repeating: 0x20, count: Int(VirtualTapeDrive.headerSize) - 1 - bytes.count) + [0x0A]
    for file in files {
      var offset = 0
      while offset < file.count {
        let record = file[offset..<min(offset + 4096, file.count)]
        let length = withUnsafeBytes(of: UInt32(record.count).littleEndian) { Array($0) }
        bytes += length + record + length
        offset += 4096
      }
      bytes += [0, 0, 0, 0]
    }
    guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
      throw ReelError(.io, "cannot write \(path)")
    }
  }

  static func padded(_ bytes: [UInt8]) -> [UInt8] {
    bytes + [UInt8](repeating: 0x20, count: (4096 - bytes.count % 4096) % 4096)
  }
}
