import Foundation
import ReelCore
import Synchronization

/// Where an S3-compatible service answers: `scheme://host[:port]`, the region its
/// signatures name, and whether buckets go in the path (`host/bucket/key`, what
/// SeaweedFS, MinIO and Ceph RGW expect by default) or the host name (`bucket.host/key`).
package struct S3Endpoint: Sendable, Equatable {
  package var url: String
  package var region: String
  package var pathStyle: Bool
  /// A PEM file of certificate authorities to trust instead of the system's.
  package var caBundle: String?

  package static let defaultRegion = "us-east-1"

  package init(url: String, region: String = S3Endpoint.defaultRegion, pathStyle: Bool = true, caBundle: String? = nil)
    throws
  {
    let trimmed = url.hasSuffix("/") ? String(url.dropLast()) : url
    guard let parsed = URLComponents(string: trimmed), let scheme = parsed.scheme?.lowercased(),
      scheme == "http" || scheme == "https", let host = parsed.host, !host.isEmpty,
      parsed.path.isEmpty, parsed.query == nil, parsed.user == nil
    else {
      throw ReelError(
        .usage, "S3 endpoint \"\(url)\" is not scheme://host[:port]",
        remedy: "give --s3-endpoint (or REEL_S3_ENDPOINT) as http://HOST:PORT or https://HOST[:PORT]")
    }
    guard !region.isEmpty, region.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: ":") }) else {
      throw ReelError(
        .usage, "S3 region \"\(region)\" is not a region name", remedy: "set AWS_REGION to e.g. us-east-1")
    }
    self.url = trimmed
    self.region = region
    self.pathStyle = pathStyle
    self.caBundle = caBundle
  }

  var isTLS: Bool { url.lowercased().hasPrefix("https:") }
}

/// An access key and its secret (and a session token for temporary credentials).
package struct S3Credentials: Sendable, CustomStringConvertible {
  package var accessKeyID: String
  package var secretAccessKey: String
  package var sessionToken: String?

  package init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
    self.accessKeyID = accessKeyID
    self.secretAccessKey = secretAccessKey
    self.sessionToken = sessionToken
  }

  /// Never the secret: errors and logs may print credentials.
  package var description: String { "access key \(accessKeyID)" }

  /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (both, non-empty), AWS_SESSION_TOKEN.
  package static func fromEnvironment(_ environment: [String: String]) -> S3Credentials? {
    guard let key = environment["AWS_ACCESS_KEY_ID"], !key.isEmpty,
      let secret = environment["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty
    else { return nil }
    let token = environment["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    return S3Credentials(accessKeyID: key, secretAccessKey: secret, sessionToken: token)
  }

  /// A profile of an AWS shared-credentials file (INI: `[profile]` then
  /// `aws_access_key_id = …`, `aws_secret_access_key = …`, `aws_session_token = …`).
  package static func fromFile(_ path: String, profile: String) throws -> S3Credentials {
    let data: Data
    do {
      data = try Data(contentsOf: URL(fileURLWithPath: path))
    } catch {
      throw ReelError(
        .notFound, "cannot read the S3 credentials file \(path): \(error.localizedDescription)",
        remedy: "give --s3-credentials a readable AWS shared-credentials file")
    }
    guard data.count <= 1 << 20, let text = String(data: data, encoding: .utf8) else {
      throw ReelError(.corrupt, "the S3 credentials file \(path) is not a text file of credentials")
    }
    return try parse(text, profile: profile, source: path)
  }

  /// The parsing behind `fromFile`, for text already read.
  package static func parse(_ text: String, profile: String, source: String) throws -> S3Credentials {
    var section: String?
    var values: [String: String] = [:]
    for (index, rawLine) in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated() {
      let line = rawLine.trimmingCharacters(in: .whitespaces)
      if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
      if line.hasPrefix("[") {
        guard line.hasSuffix("]") else {
          throw ReelError(.corrupt, "\(source) line \(index + 1): a section header must end with ]")
        }
        var name = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
        // ~/.aws/config spells non-default sections "profile NAME".
        if name.hasPrefix("profile ") { name = String(name.dropFirst(8)).trimmingCharacters(in: .whitespaces) }
        section = name
        continue
      }
      guard section == profile else { continue }
      guard let equals = line.firstIndex(of: "=") else {
        throw ReelError(.corrupt, "\(source) line \(index + 1): expected NAME = VALUE")
      }
      let name = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
      values[name] = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
    }
    guard let key = values["aws_access_key_id"], !key.isEmpty,
      let secret = values["aws_secret_access_key"], !secret.isEmpty
    else {
      throw ReelError(
        .notFound, "\(source) has no aws_access_key_id and aws_secret_access_key in profile [\(profile)]",
        remedy: "add them under [\(profile)], or set AWS_PROFILE to the profile that has them")
    }
    let token = values["aws_session_token"].flatMap { $0.isEmpty ? nil : $0 }
    return S3Credentials(accessKeyID: key, secretAccessKey: secret, sessionToken: token)
  }
}

/// How often and how patiently an idempotent request is tried again.
package struct S3RetryPolicy: Sendable, Equatable {
  /// Tries in all, the first included.
  package var attempts: Int
  package var firstDelay: Duration
  package var maxDelay: Duration

  package init(attempts: Int = 6, firstDelay: Duration = .milliseconds(250), maxDelay: Duration = .seconds(8)) {
    self.attempts = max(1, attempts)
    self.firstDelay = firstDelay
    self.maxDelay = maxDelay
  }

  /// The pause before try `attempt` (1 is the first retry): doubling, capped.
  package func delay(before attempt: Int) -> Duration {
    var delay = firstDelay
    for _ in 1..<max(1, attempt) {
      delay *= 2
      if delay >= maxDelay { return maxDelay }
    }
    return min(delay, maxDelay)
  }
}

/// Everything an S3 client needs: where, who, how patiently, and how large a part.
package struct S3Settings: Sendable {
  package var endpoint: S3Endpoint
  package var credentials: S3Credentials
  package var retry: S3RetryPolicy
  /// Bytes per multipart part; files up to this size go up in one PUT.
  package var partSize: Int
  /// How long a connection may take to open, and a transfer may stall below 1 KiB/s,
  /// before the try counts as failed.
  package var connectTimeout: Duration
  package var stallTimeout: Duration

  package static let defaultPartSize = 32 << 20
  /// S3's smallest part (but the last).
  package static let minimumPartSize = 5 << 20
  /// S3's largest part.
  package static let maximumPartSize = 5 << 30

  package init(
    endpoint: S3Endpoint, credentials: S3Credentials, retry: S3RetryPolicy = S3RetryPolicy(),
    partSize: Int = S3Settings.defaultPartSize, connectTimeout: Duration = .seconds(10),
    stallTimeout: Duration = .seconds(30)
  ) {
    self.endpoint = endpoint
    self.credentials = credentials
    self.retry = retry
    self.partSize = partSize
    self.connectTimeout = connectTimeout
    self.stallTimeout = stallTimeout
  }

  /// Settings from command-line flags first, then the environment: REEL_S3_ENDPOINT,
  /// AWS_REGION (or AWS_DEFAULT_REGION), REEL_S3_PATH_STYLE (1/0, true/false),
  /// REEL_S3_CREDENTIALS (a file), REEL_S3_CA_BUNDLE, REEL_S3_PART_SIZE_MIB; credentials
  /// from the file when one is named (profile AWS_PROFILE or "default"), else AWS_ACCESS_KEY_ID
  /// and AWS_SECRET_ACCESS_KEY. `partSize` is in bytes.
  package static func resolve(
    endpoint: String?, credentialsFile: String?, caBundle: String?, pathStyle: Bool?, partSize: Int?,
    environment: [String: String]
  ) throws -> S3Settings {
    func variable(_ name: String) -> String? {
      guard let value = environment[name]?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
      return value
    }
    guard let url = endpoint ?? variable("REEL_S3_ENDPOINT") else {
      throw ReelError(
        .usage, "no S3 endpoint given",
        remedy: "give --s3-endpoint URL or set REEL_S3_ENDPOINT (e.g. https://s3.us-east-1.amazonaws.com)")
    }
    var style = pathStyle
    if style == nil, let text = variable("REEL_S3_PATH_STYLE") {
      switch text.lowercased() {
      case "1", "true", "yes", "on": style = true
      case "0", "false", "no", "off": style = false
      default:
        throw ReelError(
          .usage, "REEL_S3_PATH_STYLE is \"\(text)\"", remedy: "set it to 1 (path style) or 0 (virtual-hosted)")
      }
    }
    let region = variable("AWS_REGION") ?? variable("AWS_DEFAULT_REGION") ?? S3Endpoint.defaultRegion
    let resolvedEndpoint = try S3Endpoint(
      url: url, region: region, pathStyle: style ?? true, caBundle: caBundle ?? variable("REEL_S3_CA_BUNDLE"))
    if let bundle = resolvedEndpoint.caBundle, !FileManager.default.isReadableFile(atPath: bundle) {
      throw ReelError(
        .notFound, "the CA bundle \(bundle) cannot be read", remedy: "give --s3-ca-bundle a readable PEM file")
    }

    let credentials: S3Credentials
    if let file = credentialsFile ?? variable("REEL_S3_CREDENTIALS") {
      credentials = try S3Credentials.fromFile(file, profile: variable("AWS_PROFILE") ?? "default")
    } else if let fromEnvironment = S3Credentials.fromEnvironment(environment) {
      credentials = fromEnvironment
    } else {
      throw ReelError(
        .usage,
        "no S3 credentials: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set and no credentials file is named",
        remedy:
          "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN for temporary keys), or give --s3-credentials FILE (or REEL_S3_CREDENTIALS) in the AWS shared-credentials format; never on the command line"
      )
    }

    var bytes = partSize
    if bytes == nil, let text = variable("REEL_S3_PART_SIZE_MIB") {
      guard let mebibytes = Int(text), mebibytes > 0, mebibytes <= maximumPartSize >> 20 else {
        throw ReelError(
          .usage, "REEL_S3_PART_SIZE_MIB is \"\(text)\"", remedy: "set it to a whole number of MiB, 5 to 5120")
      }
      bytes = mebibytes << 20
    }
    let size = bytes ?? defaultPartSize
    guard size >= minimumPartSize, size <= maximumPartSize else {
      throw ReelError(
        .usage, "an S3 part size of \(size >> 20) MiB is outside S3's limits",
        remedy: "give --s3-part-size between 5 and 5120 (MiB)")
    }
    return S3Settings(endpoint: resolvedEndpoint, credentials: credentials, partSize: size)
  }

  private static let process = Mutex<S3Settings?>(nil)

  /// The settings of this process, set once by the command line or pipeline runner, so
  /// that media addresses re-read from catalogs find them.
  package static var current: S3Settings? {
    get { process.withLock { $0 } }
    set { process.withLock { $0 = newValue } }
  }

  /// `current`, or an error naming what to set.
  package static func required(for address: String) throws -> S3Settings {
    guard let settings = current else {
      throw ReelError(
        .usage, "\(address) is in object storage, and no S3 endpoint and credentials were given",
        remedy:
          "give --s3-endpoint URL (or REEL_S3_ENDPOINT) and credentials in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or --s3-credentials FILE"
      )
    }
    return settings
  }
}
