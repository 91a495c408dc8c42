import Foundation
import ReelCodec
import ReelCore

/// Fixed names and parameters of the sealed archive format, version 2 (reads version 1 too;
/// docs/archive-format.md).
package enum ArchiveFormat {
  static let readmeName = "README.txt"
  static let manifestName = "manifest.json"
  static let manifestMACName = "manifest.hmac"
  static let indexName = "index.sqlite.enc"
  static let checksumsName = "SHA256SUMS"
  /// Format version 4: the Reed–Solomon parity of every byte before it (docs/archive-format.md).
  package static let parityName = "PARITY"
  package static let fileSuffix = ".reel.tar"
  /// tar record size: one write per MiB, the block size tape drives are given.
  package static let recordSize = 1 << 20
  /// A frame's plaintext stops growing once it reaches this many bytes (index frames, and
  /// the pack frames of format version 1).
  package static let frameTarget = 1 << 20
  /// A version 2 pack frame's group of raw chunk records stops growing once it reaches this
  /// many bytes, then is compressed as one zstd frame. 8 MiB, with a window as large, makes
  /// the archive as small as one zstd -3 stream of the same data while a chunk read
  /// decompresses at most one group.
  package static let groupTarget = 8 << 20
  /// Readers refuse a group that claims to decompress to more than this.
  static let groupLimit = 64 << 20
  /// Pack frames of format version 2 and later: one zstd frame of raw records.
  static func packContent(formatVersion: Int) -> UInt8 {
    formatVersion >= 2 ? ArchiveFrame.contentGroup : ArchiveFrame.contentChunks
  }
  /// Default bound on a pack member, so restoring one range never needs more than one
  /// member read.
  package static let defaultMemberLimit: UInt64 = 4 << 30
  /// Members whose whole contents are read into memory are refused beyond this size.
  static let smallMemberLimit = 64 << 20
  static let frameKeyPurpose = "reel archive frames v1"
  static let manifestKeyPurpose = "reel archive manifest v1"

  /// `packs/000001.pack`: pack members are numbered from 1; the index is member 0.
  static func packName(_ number: Int) -> String {
    "packs/" + String(repeating: "0", count: max(0, 6 - String(number).count)) + String(number) + ".pack"
  }

  static func packNumber(_ name: String) -> Int? {
    guard name.hasPrefix("packs/"), name.hasSuffix(".pack") else { return nil }
    let digits = name.dropFirst(6).dropLast(5)
    guard digits.count == 6, digits.allSatisfy(\.isASCII), let number = Int(digits), number > 0 else { return nil }
    return number
  }

  /// The archive's file name: volume, seq window and the first 8 digits of its ID.
  package static func fileName(volume: String, fromSeq: Seq, untilSeq: Seq, archiveID: String) -> String {
    "\(volume)-\(fromSeq)-\(untilSeq)-\(archiveID.prefix(8))\(fileSuffix)"
  }
}

/// The keys of one archive: a random data key, wrapped for each master key; frames and
/// the manifest MAC use keys derived from it.
struct ArchiveKeys: Sendable {
  let dataKey: SymmetricKey
  var frameKey: SymmetricKey { dataKey.derived(ArchiveFormat.frameKeyPurpose) }
  var manifestKey: SymmetricKey { dataKey.derived(ArchiveFormat.manifestKeyPurpose) }

  package init(dataKey: SymmetricKey) { self.dataKey = dataKey }

  package static func random() -> ArchiveKeys { ArchiveKeys(dataKey: .random()) }

  package func wrapped(for master: SymmetricKey) -> ArchiveManifest.WrappedKey {
    ArchiveManifest.WrappedKey(
      fingerprint: master.fingerprint, wrap: "AES-256 key wrap (RFC 3394)",
      wrappedKey: Data(AESKeyWrap.wrap(dataKey, with: master)).base64EncodedString())
  }

  /// Opens the data key with whichever master key the manifest names.
  package static func unwrap(_ manifest: ArchiveManifest, with master: SymmetricKey, archive: String) throws
    -> ArchiveKeys
  {
    guard let entry = manifest.keys.first(where: { $0.fingerprint == master.fingerprint }) else {
      throw ReelError(
        .wrongKey,
        "\(archive) was sealed for key \(manifest.keys.map(\.fingerprint).joined(separator: " or ")), not for key \(master.fingerprint)",
        remedy: "give the key file the archive was sealed with (--key); `reel inspect` shows its fingerprint")
    }
    guard let wrapped = Data(base64Encoded: entry.wrappedKey) else {
      throw ReelError(.corrupt, "\(archive): manifest.json holds a wrapped key that is not base64")
    }
    do {
      return ArchiveKeys(dataKey: try AESKeyWrap.unwrap(Array(wrapped), with: master))
    } catch {
      throw ReelError(
        .wrongKey, "\(archive): the key with fingerprint \(master.fingerprint) does not open the archive's data key",
        remedy: "the manifest was altered or the key file is not the one it claims; check with `reel verify`")
    }
  }
}

/// A frame: the unit of encryption inside the index and pack members (format versions 1 and
/// 2 share it; version 2 adds content type 3).
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 4 | magic `RFR1` |
/// | 4 | 1 | content: 1 = chunk records (v1), 2 = index bytes, 3 = one zstd frame of raw chunk records (v2) |
/// | 5 | 3 | reserved = 0 |
/// | 8 | 4 | plaintext length P (LE) |
/// | 12 | 4 | member number (LE; 0 = index, packs from 1) |
/// | 16 | 12 | nonce = member number (4, BE) ‖ frame number in member (8, BE) |
/// | 28 | 4 | CRC-32C of bytes 0..<28 (LE) |
/// | 32 | P + 16 | AES-256-GCM ciphertext and tag |
///
/// Associated data: `reel-archive-v1` ‖ archive UUID (16 bytes) ‖ header bytes 0..<28, so a
/// frame moved to another archive, member or position fails its tag.
package enum ArchiveFrame {
  package static let headerSize = 32
  package static let magic: [UInt8] = Array("RFR1".utf8)
  package static let contentChunks: UInt8 = 1
  static let contentIndex: UInt8 = 2
  package static let contentGroup: UInt8 = 3
  static let associatedPrefix: [UInt8] = Array("reel-archive-v1".utf8)

  package struct Header: Equatable, Sendable {
    package var content: UInt8
    package var plaintextLength: Int
    package var member: Int
    package var frameNumber: UInt64
    package var sealedLength: Int { plaintextLength + AES256GCM.tagSize }
  }

  static func nonce(member: Int, frameNumber: UInt64) -> [UInt8] {
    var nonce: [UInt8] = []
    withUnsafeBytes(of: UInt32(member).bigEndian) { nonce += $0 }
    withUnsafeBytes(of: frameNumber.bigEndian) { nonce += $0 }
    return nonce
  }

  static func encodeHeader(_ header: Header) -> [UInt8] {
    var bytes = magic + [header.content, 0, 0, 0]
    withUnsafeBytes(of: UInt32(header.plaintextLength).littleEndian) { bytes += $0 }
    withUnsafeBytes(of: UInt32(header.member).littleEndian) { bytes += $0 }
    bytes += nonce(member: header.member, frameNumber: header.frameNumber)
    withUnsafeBytes(of: CRC32C.checksum(bytes).littleEndian) { bytes += $0 }
    return bytes
  }

  /// Parses and checks a header; nil when the bytes are not one (the caller names where).
  static func decodeHeader(_ bytes: UnsafeRawBufferPointer) -> Header? {
    guard bytes.count >= headerSize, Array(bytes[0..<4]) == magic, bytes[5] == 0, bytes[6] == 0, bytes[7] == 0
    else { return nil }
    func u32(_ at: Int) -> UInt32 { bytes.loadUnaligned(fromByteOffset: at, as: UInt32.self).littleEndian }
    guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<28])) == u32(28) else { return nil }
    let member = Int(u32(12))
    let nonceMember = Int(bytes.loadUnaligned(fromByteOffset: 16, as: UInt32.self).bigEndian)
    let frameNumber = bytes.loadUnaligned(fromByteOffset: 20, as: UInt64.self).bigEndian
    guard nonceMember == member, [contentChunks, contentIndex, contentGroup].contains(bytes[4]) else { return nil }
    return Header(content: bytes[4], plaintextLength: Int(u32(8)), member: member, frameNumber: frameNumber)
  }

  static func associatedData(archiveID: UUID, header: [UInt8]) -> [UInt8] {
    associatedPrefix + withUnsafeBytes(of: archiveID.uuid) { Array($0) } + header[0..<28]
  }

  /// Header followed by ciphertext and tag.
  static func seal(
    _ plaintext: UnsafeRawBufferPointer, header: Header, archiveID: UUID, cipher: AES256GCM
  ) -> [UInt8] {
    let headerBytes = encodeHeader(header)
    let sealed = cipher.seal(
      plaintext, nonce: nonce(member: header.member, frameNumber: header.frameNumber),
      aad: associatedData(archiveID: archiveID, header: headerBytes))
    return headerBytes + sealed
  }

  static func open(
    _ sealed: UnsafeRawBufferPointer, header: Header, headerBytes: [UInt8], archiveID: UUID, cipher: AES256GCM
  ) throws(AuthenticationFailure) -> [UInt8] {
    try cipher.open(
      sealed, nonce: nonce(member: header.member, frameNumber: header.frameNumber),
      aad: associatedData(archiveID: archiveID, header: headerBytes))
  }
}
