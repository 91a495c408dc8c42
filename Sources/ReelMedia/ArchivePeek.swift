import Foundation
import ReelArchive
import ReelCore

/// Reads `manifest.json` from the first bytes of a sealed archive without reading the
/// rest: it is the second member, after a short README, so a few KiB hold it. Names the
/// remains of an archive cut off at end of media, which full verification cannot do.
package enum ArchivePeek {
  /// How many leading bytes are enough to find the manifest.
  static let prefixLimit = 4 << 20

  package static func manifest(fromPrefix bytes: [UInt8], describing what: String) throws -> ArchiveManifest {
    let tar = try TarReader(source: InMemoryArchiveSource(bytes), label: what)
    while let member = try tar.next() {
      guard member.name == "manifest.json" else { continue }
      let data = try tar.readAll(limit: prefixLimit, name: member.name)
      do {
        let manifest = try JSONDecoder().decode(ArchiveManifest.self, from: Data(data))
        guard manifest.format == ArchiveManifest.formatName else {
          throw notReel(what, "its manifest.json is not a Reel manifest")
        }
        return manifest
      } catch let error as ReelError {
        throw error
      } catch {
        throw notReel(what, "its manifest.json cannot be read (\(error))")
      }
    }
    throw notReel(what, "it holds no Reel manifest.json")
  }

  static func notReel(_ what: String, _ reason: String) -> ReelError {
    ReelError(
      .corrupt, "\(what) is not a Reel archive: \(reason)",
      remedy: "export only archives made by `reel seal` (files named *.reel.tar)")
  }
}
