import Foundation
import ReelTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// `reel pg` run as a user would, on volumes made from ext4 images (mkfs.ext4 -d) of real
/// PostgreSQL 15 clusters that initdb made and a real server wrote; psql on the original
/// server is the oracle. Every run gives `--scratch`, so the test can see that nothing is
/// left there and no server runs from it afterwards.
@Suite(.serialized) struct PostgresCommandTests {
  @Test func dumpsTheRowsOfACleanlyStoppedAndOfACrashedCluster() throws {
    let fixture = try PgFixture()
    let cluster = try fixture.makeCluster()
    try cluster.start()
    try cluster.psql("CREATE TABLE items (id int PRIMARY KEY, label text)")
    try cluster.psql("INSERT INTO items SELECT g, 'clean-' || g FROM generate_series(1, 40) g")
    cluster.stop()
    // A standby's signal file: the copy must recover on its own instead of waiting for a
    // primary, and say so.
    let signal = fixture.source + "/data/standby.signal"
    #expect(FileManager.default.createFile(atPath: signal, contents: nil))
    try fixture.makeVolume("clean")
    try FileManager.default.removeItem(atPath: signal)

    try cluster.start()
    // A checkpoint, then rows that live only in the WAL when the server dies.
    try cluster.psql("CHECKPOINT")
    for first in stride(from: 41, through: 60, by: 5) {
      try cluster.psql("INSERT INTO items SELECT g, 'crash-' || g FROM generate_series(\(first), \(first + 4)) g")
    }
    try cluster.psql("UPDATE items SET label = 'changed' WHERE id = 1")
    cluster.stop(immediate: true)
    // A segment recycled ahead of the insert position (an old segment's content under a
    // future name) and one made ahead and never written: recovery cannot read them, so
    // the copy leaves them out.
    let wal = fixture.source + "/data/pg_wal"
    let segments = try FileManager.default.contentsOfDirectory(atPath: wal).filter { $0.count == 24 }.sorted()
    let newest = try #require(segments.last)
    let recycled = String(newest.prefix(16)) + "000000F0"
    let zeroed = String(newest.prefix(16)) + "000000F1"
    try FileManager.default.copyItem(atPath: wal + "/" + newest, toPath: wal + "/" + recycled)
    let size = try #require(FileManager.default.attributesOfItem(atPath: wal + "/" + newest)[.size] as? Int)
    #expect(FileManager.default.createFile(atPath: wal + "/" + zeroed, contents: Data(count: size)))
    for name in [recycled, zeroed] { try PostgresCluster.giveToAccount(wal + "/" + name) }
    // Debian keeps postgresql.conf in /etc/postgresql, not in the data directory.
    try FileManager.default.moveItem(
      atPath: fixture.source + "/data/postgresql.conf", toPath: fixture.work.path + "/postgresql.conf")
    try fixture.makeVolume("crashed")

    let clean = try fixture.reelPg("clean", ["--", "-t", "items", "--data-only", "--inserts"])
    #expect(clean.succeeded, "\(clean.output)")
    #expect(clean.stdout.contains("INSERT INTO public.items VALUES (40, 'clean-40');"), "\(clean.stdout)")
    #expect(!clean.stdout.contains("crash-"), "\(clean.stdout)")
    #expect(clean.stderr.contains("standby.signal was in the data directory"), "\(clean.stderr)")
    let crashed = try fixture.reelPg("crashed", ["--", "-t", "items", "--data-only", "--inserts"])
    #expect(crashed.succeeded, "\(crashed.output)")
    for id in [1, 40, 41, 60] { #expect(crashed.stdout.contains("(\(id), '"), "row \(id): \(crashed.stdout)") }
    #expect(crashed.stdout.contains("(1, 'changed')"), "\(crashed.stdout)")
    #expect(crashed.stderr.contains("has no postgresql.conf"), "\(crashed.stderr)")
    #expect(crashed.stdout.components(separatedBy: "INSERT INTO public.items").count - 1 == 60)

    let sql = try fixture.reelPg("crashed", ["--sql", "SELECT count(*), sum(id) FROM items"])
    #expect(sql.succeeded, "\(sql.output)")
    #expect(sql.stdout.contains("60|1830"), "\(sql.output)")
    let walFiles = try fixture.reelPg("crashed", ["--sql", "SELECT name FROM pg_ls_waldir()"])
    #expect(walFiles.succeeded, "\(walFiles.output)")
    #expect(!walFiles.stdout.contains(recycled) && !walFiles.stdout.contains(zeroed), "\(walFiles.output)")
    for elsewhere in [["-h", "localhost"], ["-p5432"], ["--host=/run/postgresql"], ["postgresql://db.example/x"]] {
      let refused = try fixture.reelPg("crashed", ["--", "-t", "items"] + elsewhere)
      #expect(refused.status == 64, "\(elsewhere): \(refused.output)")
      #expect(refused.stderr.contains("throwaway server only"), "\(refused.output)")
    }
    let failing = try fixture.reelPg("crashed", ["--sql", "SELECT * FROM no_such_table"])
    #expect(!failing.succeeded)
    #expect(failing.stderr.contains("no_such_table"), "\(failing.output)")
    try fixture.expectNothingLeft()
  }

  @Test func followsATablespaceOutsideTheDataDirectory() throws {
    let fixture = try PgFixture()
    let cluster = try fixture.makeCluster()
    let space = fixture.source + "/space"
    try FileManager.default.createDirectory(atPath: space, withIntermediateDirectories: true)
    try PostgresCluster.giveToAccount(space)
    try cluster.start()
    try cluster.psql("CREATE TABLESPACE elsewhere LOCATION '\(space)'")
    try cluster.psql("CHECKPOINT")
    // Written after the checkpoint: only crash recovery puts these rows in the tablespace.
    try cluster.psql("CREATE TABLE far (id int) TABLESPACE elsewhere")
    try cluster.psql("INSERT INTO far SELECT generate_series(1, 25)")
    let oid = try cluster.psql("SELECT oid FROM pg_tablespace WHERE spcname = 'elsewhere'")
      .trimmingCharacters(in: .whitespacesAndNewlines)
    cluster.stop(immediate: true)
    // In the volume the file system is mounted at /, so the link names /space.
    let link = fixture.source + "/data/pg_tblspc/" + oid
    try FileManager.default.removeItem(atPath: link)
    try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "/space")
    try fixture.makeVolume("spaces")
    // The host's folder of the same path is not what the copy uses: it moves away.
    try FileManager.default.moveItem(atPath: space, toPath: space + ".moved")
    let dump = try fixture.reelPg("spaces", ["--sql", "SELECT count(*), max(id) FROM far"])
    #expect(dump.succeeded, "\(dump.output)")
    #expect(dump.stdout.contains("25|25"), "\(dump.output)")
    #expect(!FileManager.default.fileExists(atPath: space))

    try FileManager.default.removeItem(atPath: link)
    try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "/mnt/other-disk/space")
    try fixture.makeVolume("lost")
    let lost = try fixture.reelPg("lost", ["--", "-t", "far"])
    #expect(lost.status == 66, "\(lost.output)")
    #expect(lost.stderr.contains("/mnt/other-disk/space"), "\(lost.output)")
    #expect(lost.stderr.contains("pg_tblspc/\(oid)"), "\(lost.output)")
    try fixture.expectNothingLeft()
  }

  /// Crash recovery replays CREATE TABLESPACE at the absolute path it logged — on this
  /// machine, where that path may be the live server's tablespace. Such a point is refused
  /// before the server starts, and the host's folder is left alone.
  @Test func refusesAPointWhoseRecoveryWouldCreateATablespaceOnTheHost() throws {
    let fixture = try PgFixture()
    let cluster = try fixture.makeCluster()
    let space = fixture.source + "/space"
    try FileManager.default.createDirectory(atPath: space, withIntermediateDirectories: true)
    try PostgresCluster.giveToAccount(space)
    try cluster.start()
    try cluster.psql("CREATE TABLESPACE fresh LOCATION '\(space)'")
    try cluster.psql("CREATE TABLE near TABLESPACE fresh AS SELECT 1 AS id")
    let oid = try cluster.psql("SELECT oid FROM pg_tablespace WHERE spcname = 'fresh'")
      .trimmingCharacters(in: .whitespacesAndNewlines)
    cluster.stop(immediate: true)
    let link = fixture.source + "/data/pg_tblspc/" + oid
    try FileManager.default.removeItem(atPath: link)
    try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: "/space")
    try fixture.makeVolume("fresh")
    let before = try TreeManifest(of: space)
    let refused = try fixture.reelPg("fresh", ["--", "-t", "near"])
    #expect(refused.status == 65, "\(refused.output)")
    #expect(refused.stderr.contains("creates the tablespace folder \(space)"), "\(refused.output)")
    #expect(try TreeManifest(of: space).differences(from: before).isEmpty)
    try fixture.expectNothingLeft()
  }

  @Test func badDataDirectoriesAreClearErrorsThatLeaveNothingBehind() throws {
    let fixture = try PgFixture()
    let data = fixture.source + "/data"
    try FileManager.default.createDirectory(atPath: data + "/global", withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: fixture.source + "/plain", withIntermediateDirectories: true)
    try Data("hello\n".utf8).write(to: URL(fileURLWithPath: fixture.source + "/file.txt"))
    try Data(repeating: 7, count: 8192).write(to: URL(fileURLWithPath: data + "/global/pg_control"))

    try Data("99\n".utf8).write(to: URL(fileURLWithPath: data + "/PG_VERSION"))
    try fixture.makeVolume("v99")
    let missing = try fixture.reelPg("v99", ["--", "-t", "items"])
    #expect(missing.status == 66, "\(missing.output)")
    #expect(missing.stderr.contains("PostgreSQL 99"), "\(missing.output)")
    #expect(missing.stderr.contains("postgresql-99"), "\(missing.output)")

    try Data("15; rm -rf /\n".utf8).write(to: URL(fileURLWithPath: data + "/PG_VERSION"))
    try fixture.makeVolume("garbage")
    let garbage = try fixture.reelPg("garbage", ["--", "-t", "items"])
    #expect(garbage.status == 65, "\(garbage.output)")
    #expect(garbage.stderr.contains("not a PostgreSQL major version"), "\(garbage.output)")

    // A version that is installed, but a control file of garbage: the server starts and
    // refuses; its log tail is the message.
    try Data("15\n".utf8).write(to: URL(fileURLWithPath: data + "/PG_VERSION"))
    try fixture.makeVolume("damaged")
    let damaged = try fixture.reelPg("damaged", ["--", "-t", "items"])
    #expect(damaged.status == 74, "\(damaged.output)")
    #expect(damaged.stderr.contains("did not start"), "\(damaged.output)")
    #expect(damaged.stderr.contains("the server log ends"), "\(damaged.output)")
    #expect(damaged.stderr.contains("database files are incompatible with server"), "\(damaged.output)")

    let plain = try fixture.reelPg("damaged", ["--", "-t", "items"], pgdata: "/plain")
    #expect(plain.status == 66, "\(plain.output)")
    #expect(plain.stderr.contains("no PG_VERSION"), "\(plain.output)")
    let file = try fixture.reelPg("damaged", ["--", "-t", "items"], pgdata: "/file.txt")
    #expect(file.status == 66, "\(file.output)")
    #expect(file.stderr.contains("not a folder"), "\(file.output)")
    let nowhere = try fixture.reelPg("damaged", ["--", "-t", "items"], pgdata: "/var/lib/postgresql/15/main")
    #expect(nowhere.status == 66, "\(nowhere.output)")
    #expect(nowhere.stderr.contains("no such file or directory"), "\(nowhere.output)")
    try fixture.expectNothingLeft()
  }

  @Test func aQueryThatDoesNotFinishIsStoppedAtTheTimeoutAndAnInterruptCleansUp() throws {
    let fixture = try PgFixture()
    let cluster = try fixture.makeCluster()
    try cluster.start()
    try cluster.psql("CREATE TABLE items AS SELECT generate_series(1, 10) AS id")
    cluster.stop()
    try fixture.makeVolume("slow")
    let slow = try fixture.reelPg("slow", ["--sql", "SELECT pg_sleep(300)", "--timeout", "4"])
    #expect(slow.status == 74, "\(slow.output)")
    #expect(slow.stderr.contains("did not finish within the --timeout"), "\(slow.output)")
    try fixture.expectNothingLeft()

    // SIGTERM to reel while the server runs a query: everything stops, the folder goes.
    let log = fixture.work.path + "/interrupted.log"
    let reel = try ChildProcess(
      reelExecutable,
      [
        "pg", "slow", "--at", "latest", "--pgdata", "/data", "--scratch", fixture.scratch, "--store",
        fixture.store.root, "--sql", "SELECT pg_sleep(300)",
      ], stdout: log, stderr: log)
    var running = false
    for _ in 0..<600 where !running {
      usleep(100_000)
      running = !PostgresCluster.processes(mentioning: fixture.scratch).filter {
        $0.contains("pg_sleep") || $0.contains("SELECT")
      }.isEmpty
    }
    #expect(running, "the query never started: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    reel.signal(SIGTERM)
    let status = reel.wait()
    #expect(status == 128 + SIGTERM, "\((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")
    try fixture.expectNothingLeft()
  }
}

/// A store, a source folder made into ext4 volumes, and the scratch folder `reel pg` uses.
final class PgFixture {
  let store: TestStore
  let work = TemporaryDirectory("reel-pg-test")
  /// What becomes each volume's file system: data/ is the cluster.
  var source: String { work.path + "/fs" }
  var scratch: String { work.path + "/scratch" }

  init() throws {
    guard FileManager.default.isExecutableFile(atPath: PostgresCluster.binaries + "/postgres") else {
      throw SupportError("PostgreSQL 15 is not installed (apt-get install postgresql-15)")
    }
    store = try TestStore()
    // The server's account must reach the scratch folder and the cluster.
    chmod(work.path, 0o755)
    try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
    try FileManager.default.createDirectory(atPath: scratch, withIntermediateDirectories: true)
  }

  func makeCluster() throws -> PostgresCluster {
    try PostgresCluster(dataDirectory: source + "/data", work: work.path + "/server")
  }

  func makeVolume(_ name: String) throws {
    let image = work.path + "/\(name).img"
    try runChecked(try tool("mkfs.ext4"), ["-q", "-F", "-d", source, image, "96M"])
    let created = try store.reelCommand(["volume", "create", name, "--size", "96M", "--from", image])
    try #require(created.succeeded, "\(created.output)")
    try FileManager.default.removeItem(atPath: image)
  }

  func reelPg(_ volume: String, _ arguments: [String], pgdata: String = "/data") throws -> CommandResult {
    let options = ["pg", volume, "--at", "latest", "--pgdata", pgdata, "--scratch", scratch]
    let split = arguments.firstIndex(of: "--") ?? arguments.endIndex
    return try run(store.reel, options + arguments[..<split] + ["--store", store.root] + arguments[split...])
  }

  /// No private folder left in the scratch folder and no process running from it.
  func expectNothingLeft(sourceLocation: SourceLocation = #_sourceLocation) throws {
    let left = try FileManager.default.contentsOfDirectory(atPath: scratch)
    #expect(left.isEmpty, "left in the scratch folder: \(left)", sourceLocation: sourceLocation)
    let processes = PostgresCluster.processes(mentioning: scratch)
    #expect(processes.isEmpty, "still running: \(processes)", sourceLocation: sourceLocation)
  }
}
