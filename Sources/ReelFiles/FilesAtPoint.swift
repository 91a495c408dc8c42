import ReelCore
import ReelStore

/// The file system of a volume at one point, opened from the live store.
package struct FilesAtPoint: Sendable {
  package let view: VolumeView
  package let files: any FileSystemReading
  /// What the user should know (the journal's newest records could not be ingested…).
  package let warnings: [String]

  /// "volume vm at seq 42 (2026-12-04T22:00:00.000000000Z)", for messages.
  package var place: String {
    "volume \(view.descriptor.name) at seq \(view.resolved.seq) (\(view.resolved.time.rfc3339))"
  }

  package var resolver: PathResolver { PathResolver(files: files, place: place) }

  /// Catches the store up with the journal (like `reel restore`), resolves `point` and
  /// opens the file system found there.
  package static func open(live: LiveStore, volume: String, at point: Point, partition: Int?) throws -> FilesAtPoint {
    let (_, view, warnings) = try Restore.view(live: live, volume: volume, at: point)
    return try open(view, partition: partition, warnings: warnings + (view.resolved.warning.map { [$0] } ?? []))
  }

  /// The file system at `seq` of what the store holds, without ingesting first.
  package static func open(live: LiveStore, volume: String, seq: Seq, partition: Int?) throws -> FilesAtPoint {
    try open(try VolumeView(live: live, volume: volume, at: .seq(seq)), partition: partition, warnings: [])
  }

  private static func open(_ view: VolumeView, partition: Int?, warnings: [String]) throws -> FilesAtPoint {
    do {
      return FilesAtPoint(view: view, files: try VolumeFiles.open(view, partition: partition), warnings: warnings)
    } catch var error as ReelError {
      error.message += " (volume \(view.descriptor.name) at seq \(view.resolved.seq), \(view.resolved.time.rfc3339))"
      throw error
    }
  }
}
