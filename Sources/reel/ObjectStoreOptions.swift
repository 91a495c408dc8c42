import ArgumentParser
import Foundation
import ReelCore
import ReelMedia
import ReelObjectStore
import ReelPipeline

/// The object-store settings every command that takes media accepts (docs/object-storage.md).
/// Credentials never come from argv: only from the AWS variables or a shared-credentials file.
struct ObjectStoreOptions: ParsableArguments {
  @Option(
    name: .customLong("s3-endpoint"),
    help: "Object store endpoint for s3:// media, scheme://host[:port] (default: $REEL_S3_ENDPOINT).")
  var endpoint: String?
  @Option(
    name: .customLong("s3-credentials"),
    help:
      "AWS shared-credentials file (profile $AWS_PROFILE, else default); else $AWS_ACCESS_KEY_ID/$AWS_SECRET_ACCESS_KEY."
  )
  var credentials: String?
  @Option(name: .customLong("s3-ca-bundle"), help: "PEM file of the CAs that sign the endpoint's TLS certificate.")
  var caBundle: String?
  @Flag(name: .customLong("s3-path-style"), help: "Address buckets as ENDPOINT/BUCKET (default for IP endpoints).")
  var pathStyle = false
  @Flag(name: .customLong("s3-virtual-hosted"), help: "Address buckets as BUCKET.ENDPOINT.")
  var virtualHosted = false
  @Option(
    name: .customLong("s3-part-size"),
    help: "Multipart upload part size in MiB (5 to 5120, default 32; larger where a file needs it).")
  var partSize: Int?

  private var anyGiven: Bool {
    endpoint != nil || credentials != nil || caBundle != nil || pathStyle || virtualHosted || partSize != nil
  }

  /// Resolves the settings once for the process when media include `s3://` or a flag was
  /// given; other media need none, so a missing credential is not their error.
  /// `defaults`: a pipeline file's `object-store:` section, which flags override.
  func activate(for media: [String], defaults: ObjectStoreSettingsText? = nil) throws {
    guard anyGiven || defaults != nil || media.contains(where: { $0.hasPrefix("s3:") }) else { return }
    if pathStyle && virtualHosted {
      throw ReelError(.usage, "--s3-path-style and --s3-virtual-hosted exclude each other", remedy: "give one")
    }
    if let partSize, !(5...5120).contains(partSize) {
      throw ReelError(.usage, "--s3-part-size \(partSize) is out of range", remedy: "give 5 to 5120 (MiB)")
    }
    try ObjectStoreBucket.configure(
      endpoint: endpoint ?? defaults?.endpoint, credentialsFile: credentials ?? defaults?.credentialsFile,
      caBundle: caBundle ?? defaults?.caBundle,
      pathStyle: pathStyle ? true : virtualHosted ? false : defaults?.pathStyle,
      partSize: (partSize ?? defaults?.partSize).map { $0 << 20 }, replacing: true)
  }
}

/// `reel export`'s Object Lock retention for archives written to `s3://` media.
struct RetentionOptions: ParsableArguments {
  @Option(help: "Keep each archive object under Object Lock for DAYS days (s3:// media).") var retain: Int?
  @Option(help: "Keep each archive object under Object Lock until DATE (RFC 3339 or YYYY-MM-DD).")
  var retainUntil: String?
  @Option(help: "Object Lock mode: governance (default; privileged users may lift it) or compliance (nobody may).")
  var retainMode: String?

  func resolve(now: Date = Date()) throws -> S3Retention? {
    let until: Date
    switch (retain, retainUntil) {
    case (nil, nil):
      guard retainMode == nil else {
        throw ReelError(.usage, "--retain-mode needs --retain DAYS or --retain-until DATE")
      }
      return nil
    case (.some, .some):
      throw ReelError(.usage, "--retain and --retain-until exclude each other", remedy: "give one")
    case (let days?, nil):
      guard (1...36500).contains(days) else {
        throw ReelError(.usage, "--retain \(days) is out of range", remedy: "give 1 to 36500 days")
      }
      until = now.addingTimeInterval(Double(days) * 86400)
    case (nil, let text?):
      guard let time = Timestamp(rfc3339: text) ?? Timestamp(rfc3339: text + "T00:00:00Z") else {
        throw ReelError(
          .usage, "cannot read --retain-until \"\(text)\" as a date", remedy: "write YYYY-MM-DD or an RFC 3339 time")
      }
      until = Date(timeIntervalSince1970: Double(time.nanoseconds) / 1e9)
      guard until > now else {
        throw ReelError(.usage, "--retain-until \(text) is in the past", remedy: "give a future date")
      }
    }
    let mode: S3Retention.Mode
    switch retainMode ?? "governance" {
    case "governance": mode = .governance
    case "compliance": mode = .compliance
    default:
      throw ReelError(
        .usage, "--retain-mode \(retainMode ?? "") is not a mode", remedy: "give governance or compliance")
    }
    return S3Retention(mode: mode, until: until)
  }
}
