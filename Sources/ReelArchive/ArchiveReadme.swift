import Foundation
import ReelCore

/// README.txt, the first member: enough plain words for someone with only the archive.
enum ArchiveReadme {
  static func text(for manifest: ArchiveManifest) -> String {
    let bookmarks =
      manifest.bookmarks.isEmpty
      ? "  (none)"
      : manifest.bookmarks.map { "  - \"\($0.label)\" at seq \($0.seq), \($0.time)" }.joined(separator: "\n")
    let packs =
      manifest.packFormat >= 2
      ? """
      Each pack frame (content type 3) decrypts to one zstd frame (content size in its
        header, window up to 8 MiB); decompressed, it is concatenated chunk records. A chunk
        record is a 56-byte header (magic "RCH1", encoding 0 = raw, 3 zero bytes, plaintext
        length u32 LE, stored length S u32 LE = the plaintext length, SHA-256 of the
        plaintext, CRC-32C u32 LE over header bytes 0..47 and the S stored bytes, 4 zero
        bytes), then the S plaintext bytes.
        The index's record_offset and record_length are in the decompressed bytes.
      """
      : """
      Decrypted pack frames (content type 1) are concatenated chunk records: 56-byte header
        (magic "RCH1", encoding 0 raw / 1 zstd, 3 zero bytes, plaintext length u32 LE, stored
        length S u32 LE, SHA-256 of the plaintext, CRC-32C u32 LE over header bytes 0..47 and
        the S stored bytes, 4 zero bytes), then S bytes.
      """
    let lineage =
      (manifest.origin.map {
        """
        Origin:      a clone of volume \($0.description); blocks with no version
                     in this chain read as that volume at that seq: restore it from its own archives
                     up to seq \($0.seq) first, then this chain over it (reel rehydrate does this)

        """
      } ?? "")
      + (manifest.rollbacks ?? []).map {
        "Rollback:    at seq \($0.seq) (\($0.time)) the volume became its state at seq \($0.targetSeq)\n"
      }.joined()
    let members = manifest.members.map { "  \($0.name)  (\($0.size) bytes)" }.joined(separator: "\n")
    return """
      REEL SEALED ARCHIVE — format \(ArchiveManifest.formatName) version \(manifest.formatVersion)

      This tar file was written by Reel (\(manifest.writer)), an open continuous data
      protection system. It holds part of the write history of one block volume, encrypted,
      so that the volume can be rebuilt exactly as it was at any instant the history covers.

      Volume:      \(manifest.volume.name) (id \(manifest.volume.id), \(manifest.volume.size) bytes, \
      \(manifest.volume.blockSize)-byte blocks)
      Archive:     \(manifest.archiveID) (chain \(manifest.chainID), number \(manifest.chainIndex) in the chain)
      Parent:      \(manifest.parentID ?? "none — this archive starts a chain and holds a full base of the volume")
      Covers:      \(manifest.range.untilSeq > manifest.range.fromSeq ? "journal records seq \(manifest.range.fromSeq + 1) to \(manifest.range.untilSeq)" : "no journal record: the volume's state at seq \(manifest.range.fromSeq) alone"), \
      \(manifest.range.fromTime) to \(manifest.range.untilTime)
      Sealed:      \(manifest.createdAt)
      \(lineage)Key:         AES-256 master key with fingerprint \(manifest.keys.map(\.fingerprint).joined(separator: " or "))
      Bookmarks:
      \(bookmarks)

      MEMBERS (in this order)
        README.txt  (this file)
        manifest.json  (what the archive holds; authenticated by manifest.hmac)
        manifest.hmac
      \(members)
        SHA256SUMS

      CHECK INTEGRITY (no key needed)
        mkdir x && tar -xf ARCHIVE -C x && cd x && sha256sum -c SHA256SUMS
        reel verify ARCHIVE            (structure, checksums, manifest)
        reel verify ARCHIVE --key KEY  (also every encrypted frame and every chunk's content hash)

      RESTORE
        reel rehydrate imports archives into a store; then
        reel restore VOLUME --at POINT --output IMAGE
        where POINT is an RFC 3339 time, a bookmark label, seq:N or latest. A restore needs every
        archive of the chain from number 0 up to the one covering POINT.

      LAYOUT (enough to write a reader; full text in Reel's docs/archive-format.md)
        The data key: 32 random bytes, stored in manifest.json "keys" wrapped with AES-256 key wrap
        (RFC 3394) by the master key. Frame key = HMAC-SHA256(data key, "reel archive frames v1");
        manifest MAC = hex HMAC-SHA256(HMAC-SHA256(data key, "reel archive manifest v1"),
        bytes of manifest.json), in manifest.hmac.
        index.sqlite.enc and packs/NNNNNN.pack are sequences of frames. A frame is a 32-byte header
        (magic "RFR1", content type 2 = index bytes, 1 or 3 = pack frames (below), 3 zero bytes, plaintext
        length u32 LE, member number u32 LE (0 = index, packs from 1), 12-byte nonce = member number
        u32 BE + frame number u64 BE, CRC-32C of header bytes 0..27 u32 LE), then the AES-256-GCM
        ciphertext of the plaintext and the 16-byte tag. Associated data: "reel-archive-v1", the
        archive UUID's 16 bytes, header bytes 0..27.
        Decrypted index frames, concatenated, are an SQLite database: tables info, record (seq,
        time_ns, kind), bookmark, block_version (block, seq, full, chunk, start, length, base) and
        chunk (hash, member, frame_offset, frame_length, record_offset, record_length, size).
        \(packs)
        Volumes are cut into \(manifest.volume.storeBlockSize)-byte store blocks. To read block b at seq S: take its
        block_version rows with seq <= S; start from the newest with full = 1 (chunk NULL means
        zeros), then lay each later partial row's chunk bytes (or zeros) over start..start+length.
        A block with no row is zeros (in a clone's archives, named by "origin" in manifest.json:
        its origin volume's block at the origin seq). Index schema 2 adds table rollback (seq,
        target_seq, time_ns) and info keys origin_volume_id, origin_volume_name, origin_seq,
        origin_time. The first archive of a chain holds the state at its first
        seq (rows with base = 1); later archives hold only the rows of their own records.

      """
  }
}
