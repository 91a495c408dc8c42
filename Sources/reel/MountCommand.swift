import ArgumentParser
import Foundation
import ReelCore
import ReelIO
import ReelMount
import ReelStore

struct MountCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "mount",
    abstract: "Browse volumes at any point in time as read-only files (FUSE), without restoring them.",
    usage: "reel mount NAME... DIR [--allow-other] [--partition N] [--store DIR]",
    discussion: """
      For each volume NAME, DIR/NAME holds:
        latest/              the volume as it was when the mount started
        bookmarks/LABEL/     each bookmark (bookmarks made later appear too)
        at/INSTANT/          any RFC 3339 instant you type, e.g.
                             at/2026-11-27T07:22:02Z, at/2026-11-27T08:22:02.5+01:00
                             (none is listed: cd or ls the one you want)
      and in each of those folders:
        disk.img             the raw volume at that point (only you may read it)
        files/               the file system in it (ext2/3/4; the whole volume, or
                             partition N with --partition N) as the kernel shows it
                             after mounting the image: the journal is replayed in
                             memory, nothing is written
      `latest` is fixed when the mount starts; for a later state look up
      at/<now>, or mount again. The volumes may be served and written meanwhile:
      instants and bookmarks written after the mount started are found (the
      journal is taken into the store first, which needs write access to it).
      Everything is read-only: writes fail with EROFS. Problems are printed on
      standard error once each; programs see ENOENT (no such file), EIO (damaged
      data) or EMEDIUMTYPE (no file system Reel can read: use disk.img).
      Runs in the foreground. Unmount with `fusermount3 -u DIR`, Ctrl-C or
      SIGTERM. Only you can see the files unless --allow-other is given; then the
      kernel checks each file's permissions as stored in the volume, as for a
      kernel mount (users other than root need `user_allow_other` in
      /etc/fuse.conf for that).
      """)

  @OptionGroup var options: StoreOption
  @Argument(help: ArgumentHelp("Volumes to show, then the folder to mount them on.", valueName: "NAME... DIR"))
  var arguments: [String] = []
  @Flag(help: "Let other users in; the kernel checks each file's stored permissions.") var allowOther = false
  @Option(help: "Show the file system of partition N (1-based) of every volume; default: probe.")
  var partition: Int?

  func validate() throws {
    guard arguments.count >= 2 else {
      throw ValidationError("give at least one volume and the folder to mount on: reel mount NAME... DIR")
    }
    if let partition, partition < 1 { throw ValidationError("--partition \(partition): partitions count from 1") }
  }

  func run() throws {
    let store = try Store.open(StoreLayout.resolve(options.store))
    let mountPoint = arguments.last!
    let request = MountRequest(
      volumes: Array(arguments.dropLast()), mountPoint: mountPoint, partition: partition, allowOther: allowOther)
    try VolumeMount.run(
      store: store, request,
      log: { line in FileHandle.standardError.write(Data("reel mount: \(line)\n".utf8)) },
      mounted: { report in
        for (volume, point) in report.latest {
          if let warning = point.warning { warn(warning) }
          say("Mounted \(volume) at \(mountPoint)/\(volume): latest is seq \(point.seq), \(point.time.rfc3339)")
        }
        say("Unmount with `fusermount3 -u \(mountPoint)` or Ctrl-C.")
        fflush(nil)  // scripts wait for these lines
      })
    say("Unmounted \(mountPoint).")
  }
}
