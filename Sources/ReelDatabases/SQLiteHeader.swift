import ReelCore
import ReelFiles

/// The first 100 bytes of a SQLite database file (https://sqlite.org/fileformat2.html).
package struct SQLiteHeader: Sendable, Equatable {
  package var pageSize: Int
  /// Bytes 18 and 19 (write and read format versions): 2 means WAL, 1 rollback journal.
  package var isWAL: Bool

  /// Nil unless `bytes` start with the SQLite magic and hold a whole header.
  package init?(_ bytes: [UInt8]) {
    guard bytes.count >= 100, Array(bytes.prefix(16)) == SQLiteAtPoint.magic else { return nil }
    let raw = Int(bytes[16]) << 8 | Int(bytes[17])
    pageSize = raw == 1 ? 65536 : raw
    isWAL = bytes[18] == 2 && bytes[19] == 2
  }

  /// "starts with 25 50 44 46 (\"%PDF\")", "is 12 bytes long: …", for the not-SQLite error.
  package static func describeStart(_ bytes: [UInt8]) -> String {
    let shown = Array(bytes.prefix(16))
    let hex = shown.map { SQLiteValue.hex([$0]) }.joined(separator: " ")
    let printable = shown.allSatisfy { ($0 >= 0x20 && $0 < 0x7f) || $0 == 0x0a || $0 == 0x09 || $0 == 0x0d }
    let text =
      printable ? " (\"" + String(decoding: shown, as: UTF8.self).debugDescription.dropFirst().dropLast() + "\")" : ""
    let prefix = bytes.count < 100 ? "is only \(bytes.count) bytes long and starts with" : "starts with"
    return "\(prefix) \(hex)\(text)"
  }
}

/// A SQLite database found in a file system by its header.
package struct FoundSQLiteDatabase: Sendable, Equatable {
  package var path: [UInt8]
  package var size: UInt64
  package var header: SQLiteHeader
  /// Sizes of `PATH-wal` and `PATH-journal` when they exist at the point.
  package var walSize: UInt64?
  package var journalSize: UInt64?

  package var displayPath: String { FilePath.display(path) }
}

/// `reel sql --list`: every regular file under a folder that starts with the SQLite magic.
package enum SQLiteSearch {
  package static func find(
    _ files: any FileSystemReading, from start: ResolvedFile, _ found: (FoundSQLiteDatabase) throws -> Void
  ) throws {
    try TreeWalk.walk(files, from: start) { file in
      guard file.attributes.kind == .regular else { return file.attributes.kind == .directory }
      guard file.attributes.size >= 100 else { return false }
      guard let header = SQLiteHeader(try files.read(file.inode, offset: 0, length: 100)) else { return false }
      func siblingSize(_ suffix: String) throws -> UInt64? {
        let name = FileName(file.name + Array(suffix.utf8))
        guard let parent = try parentInode(files, of: file.path),
          let entry = try files.lookup(name, in: parent), entry.kind == .regular
        else { return nil }
        return try files.attributes(of: entry.inode).size
      }
      try found(
        FoundSQLiteDatabase(
          path: file.path, size: file.attributes.size, header: header, walSize: try siblingSize("-wal"),
          journalSize: try siblingSize("-journal")))
      return false
    }
  }

  private static func parentInode(_ files: any FileSystemReading, of path: [UInt8]) throws -> UInt64? {
    let components = FilePath.components(path).dropLast()
    let parent = components.isEmpty ? [UInt8(ascii: "/")] : components.reduce([]) { $0 + [UInt8(ascii: "/")] + $1 }
    return try PathResolver(files: files, place: "").resolve(parent).inode
  }
}
