import Foundation
import ReelCore

/// The label of a cartridge (tape file 0) or cold-storage folder (`REEL-LABEL.txt`):
/// plain text, `key: value` lines, then instructions for a person without Reel. One
/// 4096-byte block on tape, padded with spaces (docs/tape-format.md).
package struct MediaLabel: Sendable, Equatable {
  package static let magic = "REEL MEDIA LABEL"
  package static let formatVersion = 1
  /// Parity cartridges say `REEL MEDIA LABEL 2`, so a Reel that predates them refuses one
  /// rather than taking it for a scratch cartridge and writing archives over the parity.
  package static let parityFormatVersion = 2
  package static let blockSize = 4096
  static let defaultDataBlockSize = 1 << 20

  /// Lower-case UUID, new each time the cartridge is labeled.
  package var cartridgeID: String
  package var name: String
  /// nil while the cartridge is scratch: any set may take it.
  package var mediaSet: String?
  /// Set when the first archive of a set is written; shared by the set's cartridges.
  package var mediaSetID: String?
  /// 1, 2, … in the set; 0 until the set first writes to the cartridge.
  package var sequence: Int
  package var dataBlockSize: Int
  /// For `dir:` only: the most the folder may hold (tape capacity is the drive's business).
  package var capacity: UInt64?
  package var labeled: Timestamp
  /// Set on a parity cartridge (RAIT, docs/tape-format.md "Parity cartridges").
  package var parity: ParityRole?

  package init(
    cartridgeID: String = UUID().uuidString.lowercased(), name: String, mediaSet: String? = nil,
    mediaSetID: String? = nil, sequence: Int = 0, dataBlockSize: Int = defaultDataBlockSize,
    capacity: UInt64? = nil, labeled: Timestamp = .now(), parity: ParityRole? = nil
  ) {
    self.cartridgeID = cartridgeID
    self.name = name
    self.mediaSet = mediaSet
    self.mediaSetID = mediaSetID
    self.sequence = sequence
    self.dataBlockSize = dataBlockSize
    self.capacity = capacity
    self.labeled = labeled
    self.parity = parity
  }

  /// The label as it is written: fields, then how to read the medium by hand.
  package func text(forTape: Bool) -> String {
    var lines = [
      "\(Self.magic) \(parity == nil ? Self.formatVersion : Self.parityFormatVersion)",
      "cartridge-id: \(cartridgeID)",
      "label: \(name)",
      "media-set: \(mediaSet ?? "-")",
      "media-set-id: \(mediaSetID ?? "-")",
      "sequence: \(sequence)",
      "label-block-size: \(Self.blockSize)",
      "data-block-size: \(dataBlockSize)",
    ]
    if let capacity { lines.append("capacity: \(capacity)") }
    if let parity {
      lines += ["role: parity", "parity-group: \(parity.group.map(String.init) ?? "-")", "parity-of: \(parity.of)"]
    }
    lines += ["labeled: \(labeled.rfc3339)", "writer: reel", ""]
    lines += parity != nil ? parityInstructions : forTape ? tapeInstructions : folderInstructions
    return lines.joined(separator: "\n") + "\n"
  }

  private var tapeInstructions: [String] {
    [
      "This is a Reel tape cartridge (docs/tape-format.md in the Reel sources).",
      "Tape file 0 is this label, one \(Self.blockSize)-byte block. File 1 holds the catalogs",
      "of the media set's earlier cartridges (JSON). Every later file is one sealed",
      "archive (a POSIX pax tar) in \(dataBlockSize)-byte blocks, or a catalog of this",
      "cartridge (JSON, \(Self.blockSize)-byte blocks); the last file is the newest catalog.",
      "",
      "To list it without Reel (N = a tape file number):",
      "  mt -f /dev/nst0 rewind; mt -f /dev/nst0 setblk 0",
      "  dd if=/dev/nst0 bs=\(Self.blockSize) count=1                     # this label",
      "  mt -f /dev/nst0 rewind; mt -f /dev/nst0 fsf N",
      "  dd if=/dev/nst0 bs=\(dataBlockSize) | tar -tvf -            # the archive in file N",
      "  dd if=/dev/nst0 bs=\(dataBlockSize) | tar -xf - SHA256SUMS  # then sha256sum -c SHA256SUMS",
      "Each archive's README.txt says how to verify and restore it.",
    ]
  }

  private var parityInstructions: [String] {
    [
      "This is a Reel parity cartridge (docs/tape-format.md, \"Parity cartridges\"): it holds",
      "Reed-Solomon parity over the tape files of \(parity?.of ?? 0) data cartridges of its media set, so",
      "any one of them that is lost can be rebuilt: reel media rebuild --set SET --missing LABEL --to MEDIA.",
      "Tape file 1 is the parity (\(ParityCartridge.shardSize)-byte blocks); files 2 and 3 are two copies of its",
      "map (JSON): which cartridges, which tape files, their lengths and SHA-256.",
    ]
  }

  private var folderInstructions: [String] {
    [
      "This is a Reel cold-storage folder (docs/tape-format.md in the Reel sources).",
      "archives/ holds sealed archives (POSIX pax tar), one file each, numbered in the",
      "order they were written; catalog.json lists them. List one with `tar -tvf FILE`;",
      "each archive's README.txt says how to verify and restore it.",
    ]
  }

  /// The label block: the text padded with spaces to a whole block.
  package func block(forTape: Bool) throws -> [UInt8] {
    var bytes = Array(text(forTape: forTape).utf8)
    guard bytes.count < Self.blockSize else {
      throw ReelError(.usage, "the label text for \"\(name)\" does not fit one \(Self.blockSize)-byte block")
    }
    bytes += [UInt8](repeating: 0x20, count: Self.blockSize - 1 - bytes.count) + [0x0A]
    return bytes
  }

  /// Reads a label; nil when the bytes are not a Reel label at all.
  /// The rule `reel media label` names media by, and what a label read back must hold:
  /// letters, digits, `-` and `_`, at most 64 of them (it becomes part of file names).
  package static func isValidName(_ name: String) -> Bool {
    !name.isEmpty && name.count <= 64 && name.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" }
  }

  package static func parse(_ bytes: some Collection<UInt8>) throws -> MediaLabel? {
    let text = String(decoding: bytes, as: UTF8.self)
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
    guard let first = lines.first, first.hasPrefix(magic + " ") else { return nil }
    guard first == "\(magic) \(formatVersion)" || first == "\(magic) \(parityFormatVersion)" else {
      throw ReelError(
        .incompatible, "the media label is \(first), which this Reel does not read",
        remedy: "use a newer Reel")
    }
    var values: [String: String] = [:]
    for line in lines.dropFirst() {
      if line.isEmpty { break }
      guard let colon = line.firstIndex(of: ":") else { continue }
      values[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    func optional(_ key: String) -> String? { values[key].flatMap { $0 == "-" ? nil : $0 } }
    guard let id = values["cartridge-id"], let name = values["label"],
      let sequence = values["sequence"].flatMap(Int.init),
      let dataBlockSize = values["data-block-size"].flatMap(Int.init),
      let labeled = values["labeled"].flatMap(Timestamp.init(rfc3339:))
    else {
      throw ReelError(.corrupt, "the media label is missing fields", remedy: "relabel the medium with --force")
    }
    // Every value read here steers a drive or sizes a buffer later: range-checked now.
    guard dataBlockSize >= 512, dataBlockSize % 512 == 0, dataBlockSize < 1 << 24 else {
      throw ReelError(
        .corrupt, "the media label's data-block-size \(dataBlockSize) is not a multiple of 512 below 16 MiB",
        remedy: "relabel the medium with --force")
    }
    guard (0..<(1 << 20)).contains(sequence) else {
      throw ReelError(
        .corrupt, "the media label's sequence \(sequence) is out of range", remedy: "relabel the medium with --force")
    }
    try UntrustedNames.requireUUID(id, "cartridge-id", in: "the media label")
    if let setID = optional("media-set-id") {
      try UntrustedNames.requireUUID(setID, "media-set-id", in: "the media label")
    }
    // Label names as `reel media label` takes them; set names must at least be one path
    // component of printable text.
    guard Self.isValidName(name),
      optional("media-set").map({ set in
        set.count <= 128 && !set.hasPrefix(".") && !set.contains("/")
          && !set.unicodeScalars.contains { $0.properties.generalCategory == .control }
      }) ?? true
    else {
      throw ReelError(
        .corrupt, "the media label's name or media set is not one `reel media label` gives",
        remedy: "relabel the medium with --force")
    }
    var parity: ParityRole?
    if values["role"] == "parity" || first == "\(magic) \(parityFormatVersion)" {
      guard values["role"] == "parity", let of = values["parity-of"].flatMap(Int.init),
        ParityRole.groupSizes.contains(of)
      else {
        throw ReelError(
          .corrupt, "the media label's parity fields (role, parity-of) are missing or out of range",
          remedy: "relabel the medium with --force")
      }
      let group = optional("parity-group").flatMap(Int.init)
      guard (optional("parity-group") == nil || group != nil) && group.map({ (1..<(1 << 20)).contains($0) }) ?? true
      else {
        throw ReelError(
          .corrupt, "the media label's parity-group is out of range", remedy: "relabel the medium with --force")
      }
      parity = ParityRole(group: group, of: of)
    }
    return MediaLabel(
      cartridgeID: id, name: name, mediaSet: optional("media-set"), mediaSetID: optional("media-set-id"),
      sequence: sequence, dataBlockSize: dataBlockSize, capacity: values["capacity"].flatMap(UInt64.init),
      labeled: labeled, parity: parity)
  }
}

/// What a parity cartridge's label says: which group of its set it covers (nil until an
/// export first writes parity to it) and how many data cartridges a group has.
package struct ParityRole: Sendable, Equatable {
  /// Data cartridges per parity cartridge: k of a Reed-Solomon code with one parity shard.
  package static let groupSizes = 1...64
  /// 1, 2, …: data cartridges with sequences (group − 1)·of + 1 … group·of.
  package var group: Int?
  package var of: Int

  package init(group: Int?, of: Int) {
    self.group = group
    self.of = of
  }

  /// The group a data cartridge of sequence `sequence` belongs to, with groups of `of`.
  package static func group(ofSequence sequence: Int, of: Int) -> Int { (sequence - 1) / of + 1 }

  /// The sequences of group `group`.
  package static func sequences(group: Int, of: Int) -> ClosedRange<Int> { ((group - 1) * of + 1)...(group * of) }
}
