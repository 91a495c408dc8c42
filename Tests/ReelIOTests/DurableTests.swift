import Foundation
import ReelCore
import ReelIO
import ReelTestSupport
import Testing

@Suite("Durable files and their errors")
struct DurableTests {
  @Test("a failed call names the file and carries its errno")
  func errorsCarryErrno() throws {
    let folder = TemporaryDirectory("reel-durable")
    let missing = folder.path + "/missing"
    let opening = #expect(throws: ReelError.self) { try PosixFile.openForReading(missing) }
    #expect(opening?.errno == ENOENT && opening?.kind == .notFound)
    #expect(opening?.message.contains(missing) == true)
    let renaming = #expect(throws: ReelError.self) { try Durable.rename(missing, to: folder.path + "/elsewhere") }
    #expect(renaming?.errno == ENOENT)
    try Durable.replaceFile(at: folder.path + "/plain", with: [1])
    let making = #expect(throws: ReelError.self) { try Durable.makeDirectory(folder.path + "/plain/sub") }
    #expect(making?.errno == ENOTDIR)
  }

  @Test("replaceFile leaves the new contents and no temporary file")
  func replaceFile() throws {
    let folder = TemporaryDirectory("reel-durable")
    let path = folder.path + "/file"
    try Durable.replaceFile(at: path, with: [1, 2, 3])
    try Durable.replaceFile(at: path, with: [4, 5])
    #expect(FileManager.default.contents(atPath: path) == Data([4, 5]))
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path) == ["file"])
  }

  @Test("createNew writes a private file and never replaces a name in use")
  func createNew() throws {
    let folder = TemporaryDirectory("reel-durable")
    let path = folder.path + "/key"
    try Durable.createNew(at: path, with: [7, 7], mode: 0o600)
    var info = stat()
    #expect(lstat(path, &info) == 0 && info.st_mode & 0o777 == 0o600)

    let taken = #expect(throws: ReelError.self) { try Durable.createNew(at: path, with: [9], mode: 0o600) }
    #expect(taken?.errno == EEXIST)
    #expect(FileManager.default.contents(atPath: path) == Data([7, 7]))

    // A dangling symbolic link is a name in use too: following it would write elsewhere.
    try FileManager.default.createSymbolicLink(atPath: folder.path + "/link", withDestinationPath: "nowhere")
    let linked = #expect(throws: ReelError.self) {
      try Durable.createNew(at: folder.path + "/link", with: [9], mode: 0o600)
    }
    #expect(linked?.errno == EEXIST)
    #expect(!FileManager.default.fileExists(atPath: folder.path + "/nowhere"))
    #expect(try FileManager.default.contentsOfDirectory(atPath: folder.path).sorted() == ["key", "link"])
  }
}
