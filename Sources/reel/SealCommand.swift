import ArgumentParser
import Foundation
import ReelArchive
import ReelCodec
import ReelCore
import ReelIO
import ReelStore

/// The master key options every command that seals or opens archives shares.
struct KeyOptions: ParsableArguments {
  @Option(help: "Master key file (default: $REEL_KEY). Passphrase from $REEL_PASSPHRASE or a prompt.")
  var key: String?

  var path: String? { try? keyFilePath(key) }

  func requiredPath() throws -> String { try keyFilePath(key) }

  /// The master key, or nil when none was named.
  func open() throws -> SymmetricKey? {
    guard let path else { return nil }
    let file = try KeyFile.read(at: path)
    return try file.open(passphrase: try Passphrase.obtain(for: path))
  }
}

struct SealCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "seal",
    abstract: "Seal journaled history into encrypted, verified archives (one per volume and window).",
    discussion: """
      Seals everything journaled and not yet sealed up to POINT (default: the newest flush
      barrier or bookmark), continuing the volume's chain of archives; the first archive of a
      chain carries a full base of the volume. Each archive is written under a temporary
      name, fsynced, read back and verified with the key before it counts. Journal segments
      are never deleted here.
      """)

  @OptionGroup var options: StoreOption
  @OptionGroup var keyOptions: KeyOptions
  @Argument(help: "Volume names (default: every volume).") var volumes: [String] = []
  @Option(
    parsing: .unconditional,
    help:
      "Seal up to this point: RFC 3339 time, relative time (-10m, \"2 hours ago\"), bookmark label, seq:N, or latest.")
  var until: String?
  @Option(help: "Folder to write the archives to.") var out: String
  @Option(
    help: "A second key file the data key is also wrapped for (escrow); passphrase from $REEL_ESCROW_PASSPHRASE.")
  var escrowKey: String?
  @Option(help: "Largest pack member (default 4G).") var memberSize: String?
  @Flag(help: "Start a new chain with a full base even when the last archive could be continued.")
  var newChain = false
  @Option(
    help:
      "Pack layout: 2 (default) compresses the chunks in 8 MiB groups; 1 carries the store's chunks as they are, ~5% larger but faster to seal and to rehydrate. (A clone's archives and windows with rollbacks are format version 3 with that layout.)"
  )
  var format = SealRequest.defaultFormatVersion
  @Option(
    help:
      "Reed–Solomon parity in percent of the archive (0 to 50, default 5; 0 = none): damage up to that much is repaired by `reel repair`, rehydrate and verify. At least one 1 MiB tape record is always repairable."
  )
  var parity = ParityGeometry.defaultPercent
  @Flag(help: "JSON output.") var json = false

  func validate() throws {
    guard ArchiveManifest.packLayouts.contains(format) else {
      throw ValidationError(
        "--format \(format): this Reel writes pack layout 1 or 2 (a clone's archives are format 3 with either)")
    }
    guard ParityGeometry.percentRange.contains(parity) else {
      throw ValidationError(
        "--parity \(parity): give a percentage from 0 (no parity) to \(ParityGeometry.percentRange.upperBound); the default is \(ParityGeometry.defaultPercent)"
      )
    }
  }

  func run() throws {
    let store = try Store.open(StoreLayout.resolve(options.store))
    let keyPath = try keyOptions.requiredPath()
    // Key files are read and passphrases asked for here; the Argon2id unlock itself runs
    // while the seal builds its packs.
    var locked = [(try KeyFile.read(at: keyPath), try Passphrase.obtain(for: keyPath))]
    if let escrowKey {
      let given = ProcessInfo.processInfo.environment["REEL_ESCROW_PASSPHRASE"].flatMap { $0.isEmpty ? nil : $0 }
      let passphrase = try given ?? Passphrase.obtain(for: escrowKey)
      locked.append((try KeyFile.read(at: escrowKey), passphrase))
    }
    // After the prompts: Ctrl-C at a passphrase prompt should simply end the command.
    Interrupt.install()
    let keys = SealKeys { [locked] in try locked.map { file, passphrase in try file.open(passphrase: passphrase) } }
    let limit = try memberSize.map { try ByteSize.parse($0) } ?? ArchiveFormat.defaultMemberLimit
    let live = LiveStore(store: store)
    let names = volumes.isEmpty ? store.layout.volumeNames() : volumes
    let until = try self.until.map { try Point.parse($0) }
    if let warning = until?.futureWarning(using: "the latest state") { warn(warning) }
    var reports: [SealVolumeReport] = []
    for name in names {
      var request = SealRequest(
        volume: name, until: until?.point, outputDirectory: out, masterKeys: keys,
        memberLimit: limit, newChain: newChain, formatVersion: format)
      request.parityPercent = parity
      switch try Sealer.seal(request, live: live) {
      case .nothingToSeal(let volume, let sealedSeq, let reason):
        // A wrong passphrase is still an error when there is nothing to seal.
        _ = try keys.keys()
        reports.append(.nothingSealed(.init(volume: volume, sealedSeq: sealedSeq, reason: reason)))
        if !json { say("\(volume): nothing sealed — \(reason)") }
      case .sealed(let archive):
        let manifest = archive.manifest
        reports.append(.sealed(.init(volume: name, archive: archive)))
        if !json {
          say(
            "\(name): sealed \(manifest.range.seqs) (\(manifest.range.fromTime) → \(manifest.range.untilTime)), \(manifest.bookmarks.count) bookmark(s), \(manifest.contents.base ? "with a full base, " : "")\(ByteSize.describe(archive.size)) → \(archive.path) (read back and verified: \(archive.verification.framesChecked) frames, \(archive.verification.chunksChecked) chunks)"
          )
        }
      }
    }
    _ = try keys.keys()
    if json {
      say(jsonText(SealDocument(volumes: reports)))
    }
  }
}

struct VerifyCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "verify",
    abstract: "Check sealed archives: structure and checksums; with the key every frame, chunk and the chain.",
    discussion: """
      Without a key: tar structure, every member against SHA256SUMS and the manifest, frame
      headers. With --key (or $REEL_KEY): also the manifest's HMAC, every frame's
      authentication tag, every chunk's content hash, the index, and that each archive's
      parent is present (given, or in the same folder) and continues it. Damage is reported
      by member and offset; the exit status is 65 when anything is wrong.
      """)

  @OptionGroup var options: StoreOption
  @OptionGroup var keyOptions: KeyOptions
  @Argument(help: "Archive files.") var archives: [String]
  @Flag(help: "JSON output.") var json = false

  func run() throws {
    let master = try keyOptions.open()
    // The decrypted index goes to the store's private temp folder when there is a store
    // (--store, $REEL_STORE, the default), else to a private folder in $TMPDIR.
    let layout = StoreLayout.resolve(options.store)
    if layout.isInitialized { try PrivateScratch.use(layout) }
    Interrupt.install()
    var failed = false
    var reports: [VerifyEntry] = []
    var manifests: [ArchiveManifest] = []
    for path in archives {
      var problems: [String] = []
      var entry = VerifyEntry.ArchiveCheck(archive: path)
      do {
        let result = try ArchiveVerifier.verify(path: path, masterKeys: master.map { [$0] } ?? [])
        manifests.append(result.structure.manifest)
        problems = result.problems.map(\.description)
        entry.archiveID = result.structure.manifest.archiveID
        entry.keyChecked = result.keyChecked
        entry.frames = result.framesChecked
        entry.chunks = result.chunksChecked
        entry.sha256 = result.structure.sha256
      } catch let error as ReelError where error.kind == .corrupt || error.kind == .incompatible {
        problems = [error.message]
      }
      // Version 4: every shard against its CRC, and whether parity can mend what is wrong.
      let parity = try? ArchiveParity.inspect(path: path)
      if let parity, parity.damaged, problems.isEmpty { problems = parity.sentences }
      entry.problems = problems
      entry.ok = problems.isEmpty
      entry.parity = parity.map { ParityReportDocument($0, output: nil) }
      failed = failed || !problems.isEmpty
      reports.append(.archive(entry))
      if !json {
        if problems.isEmpty {
          let depth = master == nil ? "structure and checksums (no key given)" : "every frame and chunk with the key"
          say(
            "\(path): OK — \(depth)\(parity.map { ", parity intact (\($0.geometry.parityRows) parity shards per stripe)" } ?? "")"
          )
        } else {
          say("\(path): DAMAGED")
          for problem in problems { say("  \(problem)") }
          if let parity, parity.damaged {
            say(
              parity.whole
                ? "  repairable with margin: \(parity.margin); run `reel repair \(path) --out FILE`"
                : "  NOT repairable: \(parity.lostStripes) stripe(s) lost more than their parity; what authenticates can still be imported"
            )
          }
        }
      }
    }
    if master != nil {
      let folders = Set(archives.map { ($0 as NSString).deletingLastPathComponent }).map { $0.isEmpty ? "." : $0 }
      let chainProblems = ArchiveChain.problems(of: manifests, searching: folders)
      for problem in chainProblems {
        failed = true
        if !json { say("chain: \(problem)") }
      }
      if json { reports.append(.chain(problems: chainProblems.map(\.description))) }
    }
    if json { say(jsonText(VerifyDocument(archives: reports, ok: !failed))) }
    if failed { throw ExitCode(65) }
  }
}

struct InspectCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "inspect",
    abstract: "Show what a sealed archive holds, from its manifest, without the key.")

  @Argument(help: "Archive file.") var archive: String
  @Flag(help: "JSON output (the manifest itself).") var json = false

  func run() throws {
    let manifest = try ArchiveVerifier.readManifest(path: archive)
    if json {
      say(jsonText(manifest))
      return
    }
    say("Archive     \(manifest.archiveID)  (format \(manifest.format) \(manifest.formatVersion), \(manifest.writer))")
    say("Volume      \(manifest.volume.name)  id \(manifest.volume.id), \(ByteSize.describe(manifest.volume.size))")
    say(
      "Chain       \(manifest.chainID) number \(manifest.chainIndex)\(manifest.parentID.map { ", parent \($0)" } ?? ", starts the chain (full base)")"
    )
    say(
      "Covers      \(manifest.range.seqs), \(manifest.range.fromTime) → \(manifest.range.untilTime), \(manifest.range.records) records"
    )
    say("Sealed      \(manifest.createdAt)")
    if let origin = manifest.origin { say("Origin      clone of \(origin.description)") }
    for rollback in manifest.rollbacks ?? [] {
      say("Rollback    seq \(rollback.seq) (\(rollback.time)) to the state at seq \(rollback.targetSeq)")
    }
    say("Keys        \(manifest.keys.map(\.fingerprint).joined(separator: ", "))")
    if manifest.parity != nil {
      if let g = try? ArchiveParity.geometry(path: archive) {
        say(
          "Parity      Reed–Solomon, \(g.dataRows) + \(g.parityRows) shards per stripe, \(g.stripes) stripes per span, \(g.spans) span(s) of \(ByteSize.describe(UInt64(g.shardSize))) shards: \(ByteSize.describe(g.protectedBytes)) protected by \(ByteSize.describe(UInt64(g.spans * g.parityRows * g.stripes * g.shardSize))) of parity (\(g.percent) % asked for); one run of damage up to \(ByteSize.describe(UInt64((g.parityRows * g.stripes - 1) * g.shardSize))) anywhere is always repairable"
        )
      } else {
        say(
          "Parity      the manifest says there is parity, but no readable PARITY table was found (`reel verify` says more)"
        )
      }
    }
    say(
      "Contents    \(manifest.contents.blockVersions) block versions, \(manifest.contents.chunks) chunks (\(ByteSize.describe(manifest.contents.chunkBytes)) → \(ByteSize.describe(manifest.contents.storedBytes)) stored), \(manifest.contents.frames) frames"
    )
    say("Bookmarks   \(manifest.bookmarks.isEmpty ? "none" : "")")
    for bookmark in manifest.bookmarks { say("  \(bookmark.label)  seq \(bookmark.seq)  \(bookmark.time)") }
    say("Members")
    for member in manifest.members { say("  \(member.name)  \(member.size) bytes  sha256 \(member.sha256)") }
  }
}
