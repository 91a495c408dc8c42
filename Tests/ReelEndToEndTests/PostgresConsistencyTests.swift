import Foundation
import ReelCore
import ReelTestSupport
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// PostgreSQL 15 on ext4 through `reel serve` and the kernel, under pgbench load, with a
/// client that commits one row at a time and logs when each commit began and when it was
/// acknowledged. At instants nobody marked, `reel pg … -- -t commits` must hold every
/// commit acknowledged before the instant and none begun after it: what a DBA restoring
/// to that instant is promised by PostgreSQL's durability and Reel's journal together.
@Suite(.serialized) struct PostgresConsistencyTests {
  struct Commit {
    var id: Int
    var began: Timestamp
    var acknowledged: Timestamp
  }

  @Test func reelPgHoldsEveryAcknowledgedCommitAndNoneBegunLater() throws {
    guard FileManager.default.isExecutableFile(atPath: PostgresCluster.binaries + "/pgbench") else {
      throw SupportError("PostgreSQL 15 is not installed (apt-get install postgresql-15)")
    }
    let store = try TestStore()
    try store.createVolume("pg", size: "128M")
    let server = try ServerProcess(store: store, volumes: ["pg"])
    let pg = try PostgresOnServedVolume(store: store, volume: "pg", server: server)
    let cluster = pg.cluster
    let work = pg.work
    var load: ChildProcess?
    // pgbench and the server stop before the file system is unmounted, whatever happens.
    defer {
      if let load, load.isRunning {
        load.signal(SIGKILL)
        load.wait()
      }
      withExtendedLifetime(pg) {}
    }
    let pgbench = PostgresCluster.binaries + "/pgbench"
    try runChecked(pgbench, ["-i", "-s", "1", "-q"] + cluster.connection + ["postgres"])
    try cluster.psql("CREATE TABLE commits (id int PRIMARY KEY, note text)")
    // At a bounded rate, so what it writes does not grow with the capture's speed (the
    // volume is 128 MiB).
    load = try ChildProcess(
      pgbench, ["-c", "2", "-T", "40", "-R", "300", "-n"] + cluster.connection + ["postgres"],
      stdout: work.path + "/pgbench.log", stderr: work.path + "/pgbench.log")

    var commits: [Commit] = []
    let psql = PostgresCluster.binaries + "/psql"
    let started = ContinuousClock.now
    while ContinuousClock.now - started < .seconds(25) {
      let id = commits.count + 1
      let began = Timestamp.now()
      try runChecked(
        psql,
        ["-X", "-q", "-v", "ON_ERROR_STOP=1"] + cluster.connection + [
          "-d", "postgres", "-c", "INSERT INTO commits VALUES (\(id), 'row \(id)')",
        ])
      commits.append(Commit(id: id, began: began, acknowledged: Timestamp.now()))
    }
    try #require(
      load?.isRunning == true,
      "pgbench stopped early: \((try? String(contentsOfFile: work.path + "/pgbench.log", encoding: .utf8)) ?? "")")
    load?.wait()
    load = nil
    #expect(try pg.shutDown() == 0)
    #expect(server.stop() == 0)
    try #require(commits.count > 40, "only \(commits.count) commits")

    // Instants between one commit's acknowledgement and the next one's start, drawn at
    // random (printed, to replay a failure): exactly the commits up to it are expected.
    var chosen = (0..<4).map { _ in Int.random(in: 5..<(commits.count - 1)) }
    chosen.append(commits.count / 2)
    for index in chosen.sorted() {
      let gap = commits[index + 1].began.nanoseconds - commits[index].acknowledged.nanoseconds
      let instant = Timestamp(nanoseconds: commits[index].acknowledged.nanoseconds + gap / 2)
      print("PostgresConsistencyTests: after commit \(commits[index].id) at \(instant.rfc3339)")
      // `--store` before `--`: what follows goes to pg_dump.
      let result = try run(
        store.reel,
        [
          "pg", "pg", "--at", instant.rfc3339, "--pgdata", "/data", "--store", store.root, "--", "-t", "commits",
          "--data-only",
        ])
      try #require(result.succeeded, "reel pg at \(instant.rfc3339): \(result.stderr)")
      let ids = copiedIDs(result.stdout)
      let acknowledged = commits.filter { $0.acknowledged.nanoseconds <= instant.nanoseconds }.map(\.id)
      let begunLater = Set(commits.filter { $0.began.nanoseconds > instant.nanoseconds }.map(\.id))
      #expect(
        Set(acknowledged).isSubset(of: Set(ids)),
        "at \(instant.rfc3339): missing \(Set(acknowledged).subtracting(ids).sorted())")
      #expect(
        begunLater.isDisjoint(with: ids),
        "at \(instant.rfc3339): begun later but there: \(begunLater.intersection(ids).sorted())")
      #expect(
        ids.count == acknowledged.count, "at \(instant.rfc3339): \(ids.count) rows, \(acknowledged.count) acknowledged")
    }
  }

  /// The ids of a `pg_dump --data-only` COPY block of the commits table.
  func copiedIDs(_ dump: String) -> [Int] {
    var inside = false
    var ids: [Int] = []
    for line in dump.split(separator: "\n", omittingEmptySubsequences: false) {
      if line.hasPrefix("COPY public.commits ") {
        inside = true
      } else if line == "\\." {
        inside = false
      } else if inside, let id = line.split(separator: "\t").first.flatMap({ Int($0) }) {
        ids.append(id)
      }
    }
    return ids
  }
}
