import ArgumentParser
import Foundation
import ReelCapture
import ReelCore
import ReelJournal

struct ServeCommand: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "serve",
    abstract: "Serve volumes over NBD, journaling every write before it is acknowledged.",
    discussion: """
      Any NBD client (qemu, nbdcopy, nbdfuse, nbd-client) reads and writes the volumes; the
      export name is the volume name (an empty name picks the only volume served).
      Listens on a Unix socket, by default <store>/run/reel.sock, and with --listen on TCP.
      SIGINT or SIGTERM stops it cleanly. Client connects and disconnects are logged to stderr.
      """)

  @OptionGroup var options: StoreOption
  @Argument(help: "Volumes to serve.") var names: [String]
  @Option(help: "Unix socket path (default: <store>/run/reel.sock when --listen is not given).")
  var socket: String?
  @Option(help: "Also listen on TCP: PORT, HOST:PORT or [IPv6]:PORT (host defaults to 127.0.0.1).")
  var listen: String?

  func run() throws {
    let configuration = CaptureConfiguration(
      layout: StoreLayout.resolve(options.store), volumes: names, socketPath: socket, listen: listen,
      log: { line in FileHandle.standardError.write(Data("reel serve: \(line)\n".utf8)) })
    let server = try CaptureServer(configuration)
    for volume in server.volumes {
      say("Serving \(volume.name) (\(ByteSize.describe(volume.size)), \(volume.blockSize)-byte blocks)")
    }
    for endpoint in server.endpoints {
      say("Listening on \(endpoint): \(server.volumes.map { endpoint.uri(export: $0.name) }.joined(separator: " "))")
    }
    fflush(nil)  // scripts wait for these lines before connecting
    try server.run()
    say("Stopped; journals closed.")
  }
}
