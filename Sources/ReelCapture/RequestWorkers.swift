import ReelCore

/// The threads that carry out requests, shared by every connection of a server. There
/// are 16, as nbdkit runs 16: a FLUSH or FUA write holds its thread for an fdatasync (1 to
/// 5 ms), and with three threads a client at iodepth 16 sending a FLUSH every few writes
/// found them all waiting on the disk while its writes queued behind (fio's random sync
/// writes, benchmarks/capture-random.sh: 10,500 IOPS with three, 13,400 with sixteen).
/// Shared, not 16 per connection: nbdcopy's 4 connections then kept 64 threads runnable
/// on 2 cores, taking turns decompressing a lazy clone's blocks (clone reads, 4 GiB:
/// 3.6-3.9 s with 64 threads, 3.3-3.4 s with 16).
final class RequestWorkers: Sendable {
  static let threadCount = 16
  /// Each connection bounds what it queues (`NBDConnection`), so this only holds what
  /// the connections together have in flight.
  private let jobs = BoundedQueue<@Sendable () -> Void>(capacity: 1 << 20)
  private let threads = Locked<[WorkerThread]>([])

  /// Starts the threads; `stop` ends them.
  func start() {
    let jobs = self.jobs
    threads.withLock { threads in
      guard threads.isEmpty else { return }
      threads = WorkerThread.group(Self.threadCount, name: { "reel worker \($0)" }) { _ in
        while let job = try? jobs.take() { job() }
      }
    }
  }

  /// Queues `job`; false (and the job dropped) once the workers are stopping.
  func run(_ job: @escaping @Sendable () -> Void) -> Bool { jobs.put(job) }

  /// Runs what is queued, then ends the threads.
  func stop() {
    jobs.close()
    threads.withLock { threads in
      threads.joinAll()
      threads = []
    }
  }
}
