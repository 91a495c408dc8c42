import ArgumentParser
import Foundation
import ReelCore
import ReelMedia
import ReelStore

extension MediaCommand {
  struct Expire: ParsableCommand {
    static let configuration = CommandConfiguration(
      abstract: "Delete one archive object from s3:// media; the store stops counting that copy.",
      discussion: """
        The only command that deletes archives from object storage. Without --yes it says what
        it would delete and how many other verified copies of the archive the store knows, and
        deletes nothing. An object under Object Lock retention is refused until its date.
        """)

    @OptionGroup var options: StoreOption
    @Argument(help: "s3://BUCKET[/PREFIX].") var media: String
    @Option(help: "The archive ID (as `reel media catalog` lists it).") var archive: String?
    @Option(help: "The archive's file number on the media.") var file: Int?
    @Flag(help: "Delete it; without this, only say what would be deleted.") var yes = false
    @OptionGroup var objectStore: ObjectStoreOptions

    func run() throws {
      guard (archive == nil) != (file == nil) else {
        throw ReelError(.usage, "name the archive to expire", remedy: "give --archive ID or --file N (one of them)")
      }
      let address = try MediaAddress(parsing: media)
      guard address.isObjectStore else {
        throw ReelError(
          .usage, "media expire is for s3:// media", remedy: "folders and cartridges are relabeled, not expired")
      }
      try objectStore.activate(for: [media])
      guard let bucket = try address.openOne() as? ObjectStoreBucket else {
        throw ReelError(.usage, "\(address) is not object storage")
      }
      let store = try MediaCommand.storeCatalog(options)
      let expiring = try bucket.expiring(file: file, archiveID: archive, store: store)
      let what =
        "\(expiring.fileName) (\(bucket.address) file \(expiring.file), \(ByteSize.describe(expiring.size)))"
      let others =
        store == nil
        ? "no store to say how many other copies exist"
        : "\(expiring.otherCopies) other verified cop\(expiring.otherCopies == 1 ? "y" : "ies") known to the store"
      guard yes else {
        say("Would delete \(what); \(others).")
        throw ReelError(.usage, "nothing was deleted", remedy: "run it again with --yes to delete it")
      }
      try bucket.expire(expiring, store: store)
      say("Deleted \(what); \(others).")
    }
  }
}
