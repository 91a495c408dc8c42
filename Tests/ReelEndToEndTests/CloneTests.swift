import Foundation
import ReelCore
import ReelTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// Instant recovery with real clients: PostgreSQL 15 under pgbench on a served volume is
/// cloned at an instant nobody marked; the clone is served (a lazy live image, nothing
/// copied), mounted through nbdfuse and a loop device, and PostgreSQL started on it
/// recovers and answers, while the origin keeps serving pgbench.
@Suite(.serialized) struct CloneEndToEndTests {
  @Test func postgresStartsOnACloneOfAnInstantDuringPgbenchWhileTheOriginKeepsServing() throws {
    guard FileManager.default.isExecutableFile(atPath: PostgresCluster.binaries + "/pgbench") else {
      throw SupportError("PostgreSQL 15 is not installed (apt-get install postgresql-15)")
    }
    let store = try TestStore()
    try store.createVolume("pg", size: "128M")
    let server = try ServerProcess(store: store, volumes: ["pg"])
    let origin = try PostgresOnServedVolume(store: store, volume: "pg", server: server)
    var load: ChildProcess?
    var clone: PostgresOnServedVolume?
    var cloneServer: ServerProcess?
    // pgbench and both PostgreSQL servers stop before their file systems are unmounted,
    // and those before the NBD servers go, whatever happens.
    defer {
      if let load, load.isRunning {
        load.signal(SIGKILL)
        load.wait()
      }
      clone = nil
      withExtendedLifetime(origin) {}
      withExtendedLifetime(cloneServer) {}
    }
    let pgbench = PostgresCluster.binaries + "/pgbench"
    try runChecked(pgbench, ["-i", "-s", "1", "-q"] + origin.cluster.connection + ["postgres"])
    try origin.cluster.psql("CREATE TABLE marker (note text)")
    let pgbenchLog = origin.work.path + "/pgbench.log"
    // At a bounded rate: unbounded, a faster capture let it fill the 128 MiB volume with
    // WAL (PANIC, no space left on device) before the minute was out.
    load = try ChildProcess(
      pgbench, ["-c", "2", "-T", "60", "-R", "300", "-n"] + origin.cluster.connection + ["postgres"],
      stdout: pgbenchLog, stderr: pgbenchLog)
    sleep(4)
    try origin.cluster.psql("INSERT INTO marker VALUES ('before')")
    usleep(500_000)
    let instant = Timestamp.now()
    usleep(500_000)
    try origin.cluster.psql("INSERT INTO marker VALUES ('after')")
    sleep(2)

    // Cloned while the origin is served and written.
    let cloned = try runChecked(
      store.reel, ["clone", "pg", "--at", instant.rfc3339, "--as", "pg-clone", "--store", store.root])
    print("CloneEndToEndTests: \(cloned.stdout)")
    let cloneSocket = store.directory.path + "/clone.sock"
    cloneServer = try ServerProcess(store: store, volumes: ["pg-clone"], socket: cloneSocket)
    #expect(cloneServer!.log.contains("rebuilt the live image lazily"), "\(cloneServer!.log)")
    clone = try PostgresOnServedVolume(
      existing: "pg-clone", uri: "nbd+unix:///pg-clone?socket=\(cloneSocket)", store: store, server: cloneServer!,
      folder: store.directory.path + "/clone")

    // Recovered from its WAL: every commit acknowledged before the instant, none after.
    #expect(try clone!.cluster.psql("SELECT string_agg(note, ',') FROM marker") == "before\n")
    #expect(try clone!.cluster.psql("SELECT count(*) FROM pgbench_accounts") == "100000\n")
    let history = try clone!.cluster.psql("SELECT count(*) FROM pgbench_history")
    try clone!.cluster.psql("INSERT INTO marker VALUES ('clone'); CHECKPOINT")
    #expect(try clone!.cluster.psql("SELECT count(*) FROM marker") == "2\n")
    print("CloneEndToEndTests: the clone has \(history.dropLast()) pgbench_history rows")

    // The origin served pgbench all along (it went on past the instant), and sees
    // nothing of the clone.
    #expect(try origin.cluster.psql("SELECT string_agg(note, ',' ORDER BY note) FROM marker") == "after,before\n")
    #expect(load?.wait() == 0, "\((try? String(contentsOfFile: pgbenchLog, encoding: .utf8)) ?? "")")
    load = nil
    #expect(try origin.cluster.psql("SELECT count(*) FROM marker WHERE note = 'clone'") == "0\n")
    let originHistory = try origin.cluster.psql("SELECT count(*) FROM pgbench_history")
    #expect(Int(originHistory.dropLast())! > Int(history.dropLast())!, "origin \(originHistory), clone \(history)")

    #expect(try clone!.shutDown() == 0)
    #expect(cloneServer!.stop() == 0)
    #expect(try origin.shutDown() == 0)
    #expect(server.stop() == 0)
  }
}
