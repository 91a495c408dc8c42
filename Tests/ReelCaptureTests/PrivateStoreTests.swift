import Foundation
import ReelTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Private by default (docs/store-layout.md, "Modes"): with the umask a login shell gives
/// (022), or none at all, nothing Reel creates can be read or connected to by another local
/// user (`nobody`), decrypted indexes never reach $TMPDIR, and files Reel creates in
/// folders others can write are never written through a planted link.
@Suite(.serialized) struct PrivateStoreTests {
  let environment: [String: String?] = ["REEL_PASSPHRASE": "private", "REEL_KDF_MEMORY_KIB": "1024"]

  @Test func aStoreUsedUnderUmask022KeepsEveryFileFromOtherUsers() throws {
    let store = try TestStore()
    let work = store.directory.path
    // As a home folder is: others may pass through to the store folder.
    #expect(chmod(work, 0o755) == 0)
    let reel = store.reel
    // Made again under the umask of a login shell (TestStore made it under the runner's).
    try FileManager.default.removeItem(atPath: store.root)
    try #require(try run(umask: 0o022, reel, ["init", "--store", store.root]).succeeded)
    let base = work + "/base.raw"
    try writeRandomFile(base, bytes: 1 << 20)
    let created = try run(
      umask: 0o022, reel, ["volume", "create", "v", "--from", base, "--size", "4M", "--store", store.root])
    try #require(created.succeeded, "\(created.output)")
    let key = work + "/master.reelkey"
    try #require(try run(reel, ["key", "create", "--out", key], environment: environment).succeeded)

    let server = try ServerProcess(store: store, volumes: ["v"], umask: 0o022)
    try runChecked(try tool("qemu-io"), ["-f", "raw", store.uri("v"), "-c", "write -P 0x5a 1M 1M", "-c", "flush"])
    try #require(try run(umask: 0o022, reel, ["bookmark", "v", "secret-label", "--store", store.root]).succeeded)
    #expect(permissions(store.socketPath) == 0o600)
    #expect(permissions(store.layout.volumeDirectory("v") + "/control.sock") == 0o600)
    #expect(server.stop() == 0)

    try #require(try run(umask: 0o022, reel, ["ingest", "--store", store.root]).succeeded)
    let temporary = work + "/tmpdir"
    try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: false)
    let untouched = modificationTime(temporary)
    let inTemporary = environment.merging(["TMPDIR": temporary]) { $1 }
    let sealed = try run(
      umask: 0o022, reel, ["seal", "v", "--out", work + "/cold", "--key", key, "--store", store.root],
      environment: inTemporary)
    try #require(sealed.succeeded, "\(sealed.output)")
    let archives = try FileManager.default.contentsOfDirectory(atPath: work + "/cold").filter {
      $0.hasSuffix(".reel.tar")
    }
    let archive = work + "/cold/" + (try #require(archives.first))
    let verified = try run(
      umask: 0o022, reel, ["verify", archive, "--key", key, "--store", store.root], environment: inTemporary)
    #expect(verified.succeeded, "\(verified.output)")
    let rehydrated = work + "/rehydrated"
    let rehydration = try run(
      umask: 0o022, reel, ["rehydrate", "--from", "dir:" + work + "/cold", "--store", rehydrated, "--key", key],
      environment: inTemporary)
    #expect(rehydration.succeeded, "\(rehydration.output)")
    #expect(try FileManager.default.contentsOfDirectory(atPath: temporary).isEmpty)
    // Not even created and removed: the folder's entries never changed.
    #expect(modificationTime(temporary) == untouched, "seal, verify or rehydrate created something in $TMPDIR")
    #expect(looseEntries(under: rehydrated).isEmpty, "readable by others: \(looseEntries(under: rehydrated))")
    let restored = work + "/restored.img"
    try #require(
      try run(umask: 0o022, reel, ["restore", "v", "--at", "latest", "--output", restored, "--store", store.root])
        .succeeded)

    #expect(looseEntries(under: store.root).isEmpty, "readable by others: \(looseEntries(under: store.root))")
    #expect(permissions(store.root) == 0o700)
    #expect(permissions(store.layout.catalogPath) == 0o600)
    #expect(permissions(store.layout.liveImagePath("v")) == 0o600)
    #expect(permissions(store.layout.baseImagePath("v")) == 0o400)
    #expect(permissions(work + "/cold") == 0o700)
    #expect(permissions(archive) == 0o400)
    #expect(permissions(restored) == 0o600)
    #expect(
      !FileManager.default.fileExists(atPath: work + "/cold/.reel-seal.lock")
        || permissions(work + "/cold/.reel-seal.lock") == 0o600)

    let journal = store.layout.journalDirectory("v")
    let segment = try #require(
      try FileManager.default.contentsOfDirectory(atPath: journal).first { $0.hasSuffix(".rjs") })
    for secret in [journal + "/" + segment, store.layout.catalogPath, store.layout.liveImagePath("v"), restored] {
      #expect(try !runAsNobody(["cat", secret]).succeeded, "nobody read \(secret)")
      #expect(try runChecked("/bin/cat", [secret]).succeeded)
    }
  }

  @Test func servedSocketsRefuseOtherUsersWhateverTheUmaskUnlessAGroupIsGiven() throws {
    let store = try TestStore()
    try store.createVolume("v", size: "4M")
    #expect(chmod(store.directory.path, 0o755) == 0)
    let control = store.layout.volumeDirectory("v") + "/control.sock"
    do {
      // A umask of 0 would leave a socket anyone may connect to, if Reel left it to the umask.
      let server = try ServerProcess(store: store, volumes: ["v"], umask: 0)
      #expect(permissions(store.socketPath) == 0o600)
      #expect(permissions(control) == 0o600)
      try runChecked(try tool("nbdinfo"), [store.uri("v")])
      let asNobody = try runAsNobody([try tool("nbdinfo"), store.uri("v")])
      #expect(!asNobody.succeeded, "nobody connected: \(asNobody.output)")
      #expect(server.stop() == 0)
    }
    let server = try ServerProcess(store: store, volumes: ["v"], extra: ["--socket-group", "nogroup"], umask: 0o077)
    #expect(permissions(store.socketPath) == 0o660)
    #expect(permissions(control) == 0o660)
    var info = stat()
    #expect(stat(store.socketPath, &info) == 0 && info.st_gid == 65534)
    let inGroup = try runAsNobody([try tool("nbdinfo"), store.uri("v")])
    #expect(inGroup.succeeded, "a member of the socket's group could not connect: \(inGroup.output)")
    #expect(server.stop() == 0)
    let unknown = try store.reelCommand(["serve", "v", "--socket-group", "no-such-group-here"])
    #expect(unknown.status == 64 && unknown.stderr.contains("no-such-group-here"), "\(unknown.output)")
  }

  @Test func storeCheckReportsLooseModesAndFixesThem() throws {
    let store = try TestStore()
    try store.createVolume("v", size: "4M")
    let live = store.layout.liveImagePath("v")
    #expect(chmod(live, 0o644) == 0)
    #expect(chmod(store.layout.volumesDirectory, 0o755) == 0)
    let checked = try store.reelCommand(["store", "check"])
    #expect(checked.status == 65)
    #expect(checked.stdout.contains("PERMISSIONS: \(live): mode 0644"), "\(checked.output)")
    #expect(checked.stdout.contains("PERMISSIONS: \(store.layout.volumesDirectory): mode 0755"), "\(checked.output)")
    let json = try store.reelCommand(["store", "check", "--json"])
    #expect(json.status == 65)
    let report = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
    let entries = try #require(report["permissions"] as? [[String: Any]])
    #expect(entries.contains { $0["path"] as? String == live && $0["mode"] as? String == "0644" })
    #expect(report["clean"] as? Bool == false)

    let fixed = try store.reelCommand(["store", "check", "--fix-permissions"])
    #expect(fixed.status == 0, "\(fixed.output)")
    #expect(fixed.stdout.contains("FIXED: \(live): mode 0644 lets other users in; now 0600"), "\(fixed.output)")
    #expect(permissions(live) == 0o600)
    #expect(permissions(store.layout.volumesDirectory) == 0o700)
    let again = try store.reelCommand(["store", "check"])
    #expect(again.status == 0 && !again.stdout.contains("PERMISSIONS"), "\(again.output)")
  }

  @Test func restoreNeverWritesThroughALinkPlantedInTheOutputFolder() throws {
    let store = try TestStore()
    try store.createVolume("v", size: "4M")
    let server = try ServerProcess(store: store, volumes: ["v"])
    try runChecked(try tool("qemu-io"), ["-f", "raw", store.uri("v"), "-c", "write -P 0x33 0 1M", "-c", "flush"])
    #expect(server.stop() == 0)
    // A folder everyone may write, as /tmp is, and a file of someone else's the links point to.
    let shared = store.directory.path + "/shared"
    try FileManager.default.createDirectory(atPath: shared, withIntermediateDirectories: false)
    #expect(chmod(shared, 0o1777) == 0)
    let victim = store.directory.path + "/victim"
    try Data("precious".utf8).write(to: URL(fileURLWithPath: victim))

    let output = shared + "/restored.img"
    #expect(symlink(victim, output) == 0)
    let atOutput = try store.reelCommand(["restore", "v", "--at", "latest", "--output", output, "--force"])
    #expect(atOutput.status != 0 && atOutput.stderr.contains("symbolic link"), "\(atOutput.output)")
    #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious")

    // The restore's temporary name is OUTPUT.reel-partial-PID; the shell's pid is the
    // restore's after exec, so the link sits exactly where the restore creates its file.
    let other = shared + "/other.img"
    let planted = try run(
      "/bin/sh",
      [
        "-c", "ln -s \"$0\" \"$1.reel-partial-$$\" && exec \"$2\" restore v --at latest --output \"$1\" --store \"$3\"",
        victim, other, store.reel, store.root,
      ])
    #expect(planted.status != 0, "\(planted.output)")
    #expect(
      planted.stderr.contains("symbolic link") && planted.stderr.contains("nothing was written"), "\(planted.output)")
    #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious")
    #expect(!FileManager.default.fileExists(atPath: other))
  }

  @Test func leftoversInTheStoreTemporaryFolderGoWhenTheStoreIsNextOpened() throws {
    let store = try TestStore()
    let leftover = store.layout.temporaryDirectory + "/999999999.killed"
    try FileManager.default.createDirectory(atPath: leftover, withIntermediateDirectories: true)
    try Data("decrypted index".utf8).write(to: URL(fileURLWithPath: leftover + "/index.sqlite"))
    let checked = try store.reelCommand(["store", "check"])
    #expect(checked.status == 0, "\(checked.output)")
    #expect(!FileManager.default.fileExists(atPath: leftover))
    #expect(permissions(store.layout.temporaryDirectory) == 0o700)
  }

  private func permissions(_ path: String) -> mode_t? {
    var info = stat()
    guard lstat(path, &info) == 0 else { return nil }
    return info.st_mode & 0o7777
  }

  private func modificationTime(_ path: String) -> [Int] {
    var info = stat()
    guard stat(path, &info) == 0 else { return [] }
    return [info.st_mtim.tv_sec, info.st_mtim.tv_nsec]
  }

  /// Folders and files under `root` with any group or other permission bit.
  private func looseEntries(under root: String) -> [String] {
    var found: [String] = []
    func visit(_ path: String) {
      var info = stat()
      guard lstat(path, &info) == 0 else { return }
      if info.st_mode & 0o077 != 0 { found.append("\(path) \(String(info.st_mode & 0o7777, radix: 8))") }
      guard info.st_mode & S_IFMT == S_IFDIR else { return }
      for name in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] { visit(path + "/" + name) }
    }
    visit(root)
    return found
  }
}
