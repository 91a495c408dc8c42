import ArgumentParser
import Foundation
import ReelCore
import ReelIO
import ReelMedia
import ReelStore

struct ExportCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "export",
    abstract: "Copy sealed archives to media, verified by reading them back.",
    discussion: """
      Archives go to the media set's newest cartridge; when it fills, the archive being written
      is abandoned there and written whole on the next blank cartridge of the targets. Every
      archive is read back from the media and checked against its SHA256SUMS before it counts;
      archives the set already holds are skipped, so an export can simply be run again.
      """)

  @OptionGroup var options: StoreOption
  @Argument(help: "Sealed archive files (*.reel.tar).") var archives: [String]
  @Option(
    name: .customLong("to"), parsing: .upToNextOption,
    help:
      "Media: dir:PATH, vtape:PATH (a cartridge or a library folder), tape:/dev/nstN or s3://BUCKET[/PREFIX]; several allowed."
  )
  var targets: [String]
  @Option(help: "The media set to write to.") var mediaSet = "default"
  @OptionGroup var objectStore: ObjectStoreOptions
  @OptionGroup var retention: RetentionOptions
  @Flag(help: "JSON output.") var json = false

  func run() throws {
    guard !archives.isEmpty else { throw ReelError(.usage, "name at least one archive to export") }
    guard !targets.isEmpty else { throw ReelError(.usage, "name the media with --to MEDIA") }
    try objectStore.activate(for: targets)
    let retention = try self.retention.resolve()
    let store = try Store.open(StoreLayout.resolve(options.store))
    Interrupt.install()
    var exporter = Exporter(
      mediaSet: mediaSet, targets: try targets.map(MediaAddress.init(parsing:)), store: store.catalog)
    exporter.retention = retention
    if isatty(STDERR_FILENO) == 1 {
      exporter.progress = { FileHandle.standardError.write(Data("\($0)\n".utf8)) }
      exporter.uploaded = { sent, size in
        let line =
          "\ruploaded \(ByteSize.describe(sent)) of \(ByteSize.describe(size))\u{1B}[K" + (sent == size ? "\n" : "")
        FileHandle.standardError.write(Data(line.utf8))
      }
    }
    if !json {
      exporter.exported = { archive in
        say(
          archive.alreadyThere
            ? "\(archive.fileName): already on \(archive.cartridgeLabel) file \(archive.tapeFile), skipped"
            : "\(archive.fileName): \(archive.cartridgeLabel) file \(archive.tapeFile), verified")
      }
    }
    let report = try exporter.export(archives)
    if json {
      say(jsonText(ExportJSON(report)))
      try Self.requireParity(report)
      return
    }
    for copy in report.abandoned {
      say(
        "cut off at end of media: \(copy.archiveID) on \(copy.cartridgeLabel) file \(copy.tapeFile) (written whole on the next cartridge)"
      )
    }
    for parity in report.parity {
      say(
        "parity of group \(parity.group) (\(parity.members.joined(separator: ", "))) written to \(parity.parityLabel)"
      )
    }
    let written = report.exported.filter { !$0.alreadyThere }
    say(
      "Exported \(written.count) archive(s) to media set \(report.mediaSet); \(report.exported.count - written.count) already there."
    )
    try Self.requireParity(report)
  }

  /// Exported but unprotected is not success: a set with parity cartridges wants all its groups covered.
  static func requireParity(_ report: ExportReport) throws {
    guard !report.parityWarnings.isEmpty else { return }
    throw ReelError(
      .notFound, "the archives are exported, but parity is missing: " + report.parityWarnings.joined(separator: "; "))
  }
}
