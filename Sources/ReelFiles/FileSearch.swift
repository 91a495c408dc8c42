import ReelCore

#if canImport(Glibc)
  import Glibc
#endif

/// What `files find` looks for; every criterion given must hold.
package struct FileSearch: Sendable {
  /// A shell pattern (fnmatch) matched against the last name of the path.
  package var namePattern: String?
  /// Modified strictly after this instant.
  package var newerThan: Timestamp?
  /// Larger than this many bytes.
  package var largerThan: UInt64?
  package var kind: FileKind?

  package init(
    namePattern: String? = nil, newerThan: Timestamp? = nil, largerThan: UInt64? = nil, kind: FileKind? = nil
  ) {
    self.namePattern = namePattern
    self.newerThan = newerThan
    self.largerThan = largerThan
    self.kind = kind
  }

  package func matches(_ file: WalkedFile) -> Bool {
    if let kind, file.attributes.kind != kind { return false }
    if let largerThan, file.attributes.size <= largerThan { return false }
    if let newerThan {
      let time = file.attributes.modificationTime
      // Compared in seconds first: times past 2262 do not fit Int64 nanoseconds.
      let seconds = newerThan.nanoseconds / 1_000_000_000
      let fraction = newerThan.nanoseconds % 1_000_000_000
      if time.seconds < seconds || (time.seconds == seconds && Int64(time.nanoseconds) <= fraction) { return false }
    }
    if let namePattern {
      let name = file.name + [0]
      let matched = name.withUnsafeBufferPointer { bytes in
        bytes.withMemoryRebound(to: CChar.self) { fnmatch(namePattern, $0.baseAddress!, 0) == 0 }
      }
      if !matched { return false }
    }
    return true
  }

  /// Every file under `start` (itself included) that matches, in walk order.
  package func run(
    _ files: any FileSystemReading, from start: ResolvedFile, _ found: (WalkedFile) throws -> Void
  ) throws {
    try TreeWalk.walk(files, from: start) { file in
      if matches(file) { try found(file) }
      return true
    }
  }
}
