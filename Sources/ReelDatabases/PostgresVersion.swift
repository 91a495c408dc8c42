import Foundation
import ReelCore

/// The major version a data directory's `PG_VERSION` names, and the system's binaries of
/// that version.
package struct PostgresVersion: Sendable, Equatable, CustomStringConvertible {
  /// "15".
  package var major: String

  /// Where Debian's `postgresql-NN` packages put each version's programs.
  package static let defaultBinariesRoot = "/usr/lib/postgresql"

  package var description: String { major }

  /// Parses `PG_VERSION`'s content: one line, `NN` (10 and later; 9.x had no pg_waldump
  /// and is not supported). Anything else is refused, whatever the file system says.
  package static func parse(_ bytes: [UInt8], path: String) throws -> PostgresVersion {
    var text = String(decoding: bytes, as: UTF8.self)
    if text.hasSuffix("\n") { text.removeLast() }
    let parts = text.split(separator: ".", omittingEmptySubsequences: false)
    let digitsOnly = parts.allSatisfy { !$0.isEmpty && $0.count <= 2 && $0.allSatisfy { $0.isASCII && $0.isNumber } }
    let sane: Bool
    if digitsOnly, parts.count == 1, let major = Int(parts[0]) {
      sane = major >= 10 && major <= 99
    } else if digitsOnly, parts.count == 2, parts[0] == "9" {
      throw ReelError(
        .incompatible, "\(path) says \(text): PostgreSQL before 10 is not supported by reel pg",
        remedy: "restore the volume (reel restore) and start that server where its binaries are")
    } else {
      sane = false
    }
    guard sane else {
      let shown = text.count > 40 ? String(text.prefix(40)) + "…" : text
      throw ReelError(
        .incompatible,
        "\(path) says \"\(shown.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 ? String($0) : "?" }.joined())\", which is not a PostgreSQL major version",
        remedy: "PG_VERSION holds one line such as 15; check --pgdata points at a PostgreSQL data directory")
    }
    return PostgresVersion(major: text)
  }

  /// The folder holding `postgres`, the clients and the WAL tools of this version,
  /// or an error naming the packages to install.
  package func binaries(root: String = defaultBinariesRoot) throws -> String {
    let folder = "\(root)/\(major)/bin"
    let missing = ["postgres", "pg_dump", "psql", "pg_isready", "pg_controldata", "pg_waldump"].filter {
      !FileManager.default.isExecutableFile(atPath: "\(folder)/\($0)")
    }
    guard missing.isEmpty else {
      let installed = (try? FileManager.default.contentsOfDirectory(atPath: root))?.sorted() ?? []
      let others =
        installed.isEmpty ? "no PostgreSQL version is installed" : "installed: \(installed.joined(separator: ", "))"
      throw ReelError(
        .notFound,
        "the data directory is PostgreSQL \(major), but \(missing.map { "\(folder)/\($0)" }.joined(separator: ", ")) \(missing.count == 1 ? "is" : "are") missing (\(others))",
        remedy:
          "install the packages postgresql-\(major) and postgresql-client-\(major) (apt-get install postgresql-\(major); from apt.postgresql.org for versions Debian does not ship)"
      )
    }
    return folder
  }
}
