import Foundation
import ReelCore
import ReelFiles
import ReelIO
import ReelStore

#if canImport(Glibc)
  import Glibc
#endif

/// What `reel mount` asks for.
package struct MountRequest: Sendable {
  package var volumes: [String]
  package var mountPoint: String
  /// 1-based partition of every volume to show under `files/`; nil: probe.
  package var partition: Int?
  /// Let other users in; the kernel then checks each file's stored permissions.
  package var allowOther: Bool
  /// Worker threads libfuse may run at once.
  package var threads = 8

  package init(volumes: [String], mountPoint: String, partition: Int? = nil, allowOther: Bool = false) {
    self.volumes = volumes
    self.mountPoint = mountPoint
    self.partition = partition
    self.allowOther = allowOther
  }
}

/// A mount that is up: what each volume's `latest/` shows.
package struct MountedReport: Sendable {
  package var mountPoint: String
  package var latest: [(volume: String, point: ResolvedPoint)]
}

/// `reel mount`: volumes at any point as a read-only FUSE file system (docs/files.md).
package enum VolumeMount {
  /// Resolves each volume's latest state (after taking its journal into the store), mounts,
  /// calls `mounted`, and serves until the file system is unmounted or a signal stops it;
  /// returns once it is unmounted. `log` gets one line per distinct problem met while
  /// serving (the kernel only sees an errno).
  package static func run(
    store: Store, _ request: MountRequest, log: @escaping @Sendable (String) -> Void,
    mounted: (MountedReport) -> Void
  ) throws {
    try validate(request)
    let errors = MountErrorLog(write: log)
    let tree = try MountedTree(
      live: LiveStore(store: store), volumes: request.volumes, partition: request.partition, log: errors,
      openFileSystem: { try VolumeFiles.open($0, partition: $1) })
    var options = ["ro", "fsname=reel", "subtype=reel", "auto_unmount"]
    if request.allowOther { options += ["allow_other", "default_permissions"] }
    let session = try FuseSession(tree: tree, log: errors, mountPoint: request.mountPoint, options: options)
    // Without it, `auto_unmount` alone stands between a killed mount and a dead folder.
    var watcher: MountWatcher.Guard?
    do {
      watcher = try MountWatcher.start(mountPoint: request.mountPoint)
    } catch {
      log("no watcher to unmount \(request.mountPoint) if this process is killed: \(error)")
    }
    mounted(
      MountedReport(
        mountPoint: request.mountPoint, latest: Array(zip(request.volumes, tree.latest)).map { ($0.0, $0.1) }))
    session.run(threads: request.threads)
    watcher?.release()
  }

  static func validate(_ request: MountRequest) throws {
    guard !request.volumes.isEmpty else {
      throw ReelError(.usage, "no volume to mount", remedy: "write `reel mount NAME... DIR`")
    }
    var seen: Set<String> = []
    for name in request.volumes where !seen.insert(name).inserted {
      throw ReelError(.usage, "volume \(name) is named twice", remedy: "name each volume once")
    }
    if let partition = request.partition, partition < 1 {
      throw ReelError(.usage, "--partition \(partition): partitions are numbered from 1")
    }
    var info = stat()
    guard stat(request.mountPoint, &info) == 0 else {
      let number = errno
      throw ReelError(
        .notFound, "mount point \(request.mountPoint): \(String(cString: strerror(number)))",
        remedy: "create the folder first (mkdir -p \(request.mountPoint))", errno: number)
    }
    guard info.st_mode & S_IFMT == S_IFDIR else {
      throw ReelError(.usage, "mount point \(request.mountPoint) is not a folder", remedy: "give an empty folder")
    }
  }
}
