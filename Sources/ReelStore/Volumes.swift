import Foundation
import ReelCore
import ReelIO

/// Creating and listing protected volumes.
package enum Volumes {
  /// Creates a volume: zeros, or a copy of `baseImage` (a file or block device) that
  /// becomes its base. Built under a temporary folder and renamed into place, so a
  /// crash leaves either no volume or a whole one.
  @discardableResult
  package static func create(
    in store: Store, name: String, size requestedSize: UInt64?, blockSize: UInt32 = 4096,
    storeBlockSize: UInt32 = VolumeDescriptor.defaultStoreBlockSize, baseImage: String? = nil
  ) throws -> VolumeDescriptor {
    let layout = store.layout
    try VolumeDescriptor.validate(name: name)
    try VolumeDescriptor.validate(storeBlockSize: storeBlockSize)
    guard blockSize == 512 || blockSize == 4096 else {
      throw ReelError(.usage, "block size \(blockSize) is not supported", remedy: "use --block-size 512 or 4096")
    }
    let finalDirectory = layout.volumeDirectory(name)
    guard !FileManager.default.fileExists(atPath: finalDirectory) else {
      throw ReelError(
        .alreadyExists, "a volume named \"\(name)\" already exists in \(layout.root)",
        remedy: "choose another name; `reel volume list` shows the existing ones")
    }
    var size = requestedSize
    if let baseImage {
      let imageSize = try imageSize(baseImage)
      if let requested = size, requested < imageSize {
        throw ReelError(
          .usage, "--size \(requested) is smaller than the image \(baseImage) (\(imageSize) bytes)",
          remedy: "leave out --size to use the image's size, or give a larger one")
      }
      size = size ?? imageSize
    }
    guard let size, size > 0 else {
      throw ReelError(
        .usage, "a new volume needs --size (or --from IMAGE)", remedy: "e.g. `reel volume create \(name) --size 1G`")
    }
    guard size % UInt64(blockSize) == 0 else {
      throw ReelError(
        .usage, "size \(size) is not a multiple of the block size \(blockSize)",
        remedy: "round the size to a multiple of \(blockSize)")
    }

    let staging = layout.volumesDirectory + "/.\(name).creating-\(getpid())"
    try? FileManager.default.removeItem(atPath: staging)
    do {
      try Durable.makeDirectory(staging + "/journal")
      let live = try PosixFile(path: staging + "/live.img", flags: O_RDWR | O_CREAT | O_EXCL)
      if let baseImage {
        let base = try PosixFile(path: staging + "/base.img", flags: O_RDWR | O_CREAT | O_EXCL, mode: 0o400)
        try PosixFile.openForReading(baseImage).copySparse(to: [base, live])
        try base.truncate(to: size)
        try base.sync()
      }
      try live.truncate(to: size)
      try live.sync()
      let descriptor = VolumeDescriptor(
        name: name, size: size, blockSize: blockSize, created: Timestamp.now(), hasBase: baseImage != nil,
        storeBlockSize: storeBlockSize)
      try StoreLayout.writeDescriptor(descriptor, inFolder: staging)
      try Durable.syncDirectory(staging)
      try Durable.rename(staging, to: finalDirectory)
      try store.catalog.register(descriptor)
      return descriptor
    } catch {
      try? FileManager.default.removeItem(atPath: staging)
      throw error
    }
  }

  package static func list(in store: Store) throws -> [VolumeDescriptor] {
    try store.layout.volumeNames().map { try store.layout.descriptor(of: $0) }
  }

  static func imageSize(_ path: String) throws -> UInt64 {
    let file = try PosixFile.openForReading(path)
    var info = stat()
    guard fstat(file.descriptor, &info) == 0 else { throw ReelError(.io, "\(path): cannot stat") }
    if (info.st_mode & S_IFMT) == S_IFBLK {
      let end = lseek(file.descriptor, 0, SEEK_END)
      guard end >= 0 else { throw ReelError(.io, "\(path): cannot read the device size") }
      return UInt64(end)
    }
    guard (info.st_mode & S_IFMT) == S_IFREG else {
      throw ReelError(
        .usage, "\(path) is neither a regular file nor a block device", remedy: "give an image file or a block device")
    }
    return UInt64(info.st_size)
  }
}
