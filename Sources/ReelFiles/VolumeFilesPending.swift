import ReelCore

// Stand-in until branch files-ext4 lands (deleted at that merge): lets the cli code build.
package enum VolumeFiles {
  package static func open(_ source: any VolumeSource, partition: Int? = nil) throws -> any FileSystemReading {
    throw ReelError(.incompatible, "the ext4 reader is not built yet")
  }
}
