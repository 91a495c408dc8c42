import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// PostgreSQL 15 with its data directory (`/data`) on ext4 on a volume `reel serve`
/// serves, through nbdfuse and a loop mount: the real kernel and a real database as
/// clients. The cluster is stopped before the file system is unmounted, whatever happens
/// (deinit), and the mount before nbdfuse goes.
package final class PostgresOnServedVolume {
  package let kernel: KernelMount
  package let cluster: PostgresCluster
  package let work: TemporaryDirectory

  /// Formats the volume, runs initdb on it, syncs (initdb ran with --no-sync, and the
  /// volume's points should hold its files) and starts the server. `folder` holds the
  /// nbdfuse folder and mount point; the postgres account must pass through it.
  package init(store: TestStore, volume: String, server: ServerProcess, folder: String? = nil) throws {
    guard FileManager.default.isExecutableFile(atPath: PostgresCluster.binaries + "/postgres") else {
      throw SupportError("PostgreSQL 15 is not installed (apt-get install postgresql-15)")
    }
    let folder = try Self.passable(folder ?? store.directory.path, store: store)
    kernel = try KernelMount(in: folder)
    try kernel.connect(store.uri(volume), servedBy: server)
    try kernel.formatExt4(["-b", "4096"])
    try kernel.mount()
    work = TemporaryDirectory("reel-pg-\(volume)")
    chmod(work.path, 0o755)
    cluster = try PostgresCluster(dataDirectory: kernel.mountPoint + "/data", work: work.path + "/server")
    try runChecked(try tool("sync"), [])
    try cluster.start()
  }

  /// Mounts a volume that already holds a cluster in `/data` (a clone, a restored copy)
  /// and starts PostgreSQL on it, which recovers from its WAL as after a power cut.
  /// `uri` is where `server` serves it.
  package init(existing volume: String, uri: String, store: TestStore, server: ServerProcess, folder: String) throws {
    let folder = try Self.passable(folder, store: store)
    kernel = try KernelMount(in: folder)
    try kernel.connect(uri, servedBy: server)
    try kernel.mount()
    work = TemporaryDirectory("reel-pg-\(volume)")
    chmod(work.path, 0o755)
    cluster = try PostgresCluster(existingDataDirectory: kernel.mountPoint + "/data", work: work.path + "/server")
    // The copy's lock file names the PID of the postmaster that was running when the copy
    // was taken; if that one still runs (the origin of a clone), PostgreSQL would refuse
    // to start. Removing it is what a DBA does on a copy.
    unlink(kernel.mountPoint + "/data/postmaster.pid")
    try cluster.start()
  }

  /// Stops PostgreSQL (fast shutdown), unmounts, and ends nbdfuse; nbdfuse's exit status.
  @discardableResult
  package func shutDown() throws -> Int32 {
    cluster.stop()
    try kernel.unmount()
    return try kernel.disconnect()
  }

  deinit {
    cluster.stop()
  }

  /// `folder`, created if needed, and the store's folder made passable (0711) for the
  /// postgres account on its way to the mount point.
  private static func passable(_ folder: String, store: TestStore) throws -> String {
    try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
    chmod(store.directory.path, 0o711)
    chmod(folder, 0o711)
    return folder
  }
}
