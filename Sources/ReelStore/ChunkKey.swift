/// How the store finds, caches and checks a chunk it reads. Every chunk is named by the
/// SHA-256 of its plaintext, and its record's header repeats the name; since catalog
/// schema v9 the catalog keeps no name for the chunks ingest stores for partial versions
/// (docs/store-format.md, "Unnamed chunks"), so those are known by their catalog row and
/// checked against the name their record claims.
enum ChunkKey: Hashable, Sendable, CustomStringConvertible {
  case named(String)
  case unnamed(row: Int64)

  /// The name, when the catalog keeps one.
  var name: String? {
    if case .named(let name) = self { name } else { nil }
  }

  var description: String {
    switch self {
    case .named(let name): name
    case .unnamed(let row): "in catalog row \(row) (its name is kept only in its record)"
    }
  }
}

extension Catalog {
  /// The key of the chunk in catalog row `row`, whose name (`chunk_named.hash`) may be NULL.
  static func chunkKey(row: Int64, hash: String?) -> ChunkKey {
    hash.map { .named($0) } ?? .unnamed(row: row)
  }
}
