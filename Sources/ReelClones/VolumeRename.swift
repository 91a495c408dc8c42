import Foundation
import ReelCore
import ReelIO
import ReelStore

extension Clones {
  /// Renames a volume: its folder, its descriptor and its catalog row. Clone links name
  /// volumes by id, so clones and origins keep reading each other. Refused while served.
  /// The folder's rename is the step that counts (a descriptor naming the old name is read
  /// under its folder's name), so a crash leaves the old name or the new one.
  package static func rename(live: LiveStore, volume name: String, to newName: String) throws {
    let layout = live.store.layout
    try VolumeDescriptor.validate(name: newName)
    var descriptor = try layout.descriptor(of: name)
    try VolumeGuards.withVolumeIdle(layout, name, doing: "rename") {
      try live.withStoreLock {
        try live.sweepAbandonedVolumes()
        try refuseExisting(newName, layout: layout)
        try Durable.rename(layout.volumeDirectory(name), to: layout.volumeDirectory(newName))
        descriptor.name = newName
        try StoreLayout.writeDescriptor(descriptor, inFolder: layout.volumeDirectory(newName))
        try live.renameInCatalog(descriptor)
      }
    }
  }
}
