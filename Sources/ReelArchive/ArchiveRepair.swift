import Foundation
import ReelCodec
import ReelCore
import ReelStore

/// Sealed archives as a source of chunk records for `LiveStore.repair`: the archives this
/// store sealed or imported whose files are still where the catalog says, each read and
/// verified frame by frame with the key.
package enum ArchiveRepair {
  package static func supply(live: LiveStore, masterKeys: [SymmetricKey]) -> ChunkRecordSupply {
    { wanted, named, found in
      var looked: [String] = []
      var remaining = wanted.names
      for name in live.store.layout.volumeNames() {
        guard let descriptor = try? live.store.layout.descriptor(of: name) else { continue }
        var places = wanted.versions[descriptor.id.description] ?? []
        for archive in try live.sealedArchives(of: descriptor).reversed() where !remaining.isEmpty || !places.isEmpty {
          guard FileManager.default.fileExists(atPath: archive.path) else { continue }
          looked.append(archive.path)
          let scanner = try ArchiveScanner(
            source: try FileArchiveSource(path: archive.path), label: archive.path, masterKeys: masterKeys,
            checkContent: true, storeRecords: true, store: live.store.layout)
          try scanner.readHead()
          guard scanner.manifest != nil else {
            throw ReelError(
              .wrongKey, "\(archive.path): the key does not open this archive", remedy: "give the store's --key")
          }
          // Unnamed chunks: the index names the chunk of each version the archive holds.
          if let index = scanner.index, !places.isEmpty {
            for (place, chunk) in try index.chunkNames(of: places) {
              places.remove(place)
              named(descriptor.id.description, place, chunk)
              remaining.insert(chunk)
            }
          }
          guard !remaining.isEmpty else { continue }
          try scanner.readBody { key, record in
            guard remaining.contains(key) else { return }
            try found(key, record)
            remaining.remove(key)
          }
        }
      }
      return looked
    }
  }
}
