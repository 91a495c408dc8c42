import ReelCore
import ReelFiles

// Until branch files-ext4 is merged: the entry point its reader provides.
enum VolumeFiles {
  static func open(_ source: any VolumeSource, partition: Int?) throws -> any FileSystemReading {
    throw ReelError(.incompatible, "this build of reel has no file-system reader yet (branch files-ext4)")
  }
}
