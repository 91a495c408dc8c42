import Foundation
import ReelCore
import ReelMedia
import Yams

/// A pipeline file's `object-store:` section: where its `s3://` media are. Credentials are
/// not accepted here (a pipeline file is read by many and copied around); they come from
/// the run's environment or a shared-credentials file it names (docs/object-storage.md).
package struct ObjectStoreSettingsText: Sendable, Equatable {
  package var endpoint: String?
  package var credentialsFile: String?
  package var caBundle: String?
  package var pathStyle: Bool?
  /// MiB.
  package var partSize: Int?

  static let keys = ["endpoint", "credentials-file", "ca-bundle", "path-style", "part-size"]
  static let credentialKeys: Set<String> = [
    "access-key", "access-key-id", "secret-key", "secret-access-key", "session-token", "aws_access_key_id",
    "aws_secret_access_key", "aws_session_token", "credentials", "password",
  ]

  /// Makes these the run's settings, unless the command line already set some.
  package func apply() throws {
    try ObjectStoreBucket.configure(
      endpoint: endpoint, credentialsFile: credentialsFile, caBundle: caBundle, pathStyle: pathStyle,
      partSize: partSize.map { $0 << 20 }, replacing: false)
  }
}

extension Checker {
  mutating func objectStoreSettings(_ node: Node) -> ObjectStoreSettingsText? {
    guard case .mapping(let mapping) = node else {
      problem(node, "object-store must be a mapping", fix: "write `object-store:` and under it `endpoint: URL`")
      return nil
    }
    var settings = ObjectStoreSettingsText()
    for (keyNode, value) in mapping {
      let key = keyNode.string ?? ""
      switch key {
      case "endpoint": settings.endpoint = scalarString(value, what: "object-store endpoint")
      case "credentials-file": settings.credentialsFile = scalarString(value, what: "object-store credentials-file")
      case "ca-bundle": settings.caBundle = scalarString(value, what: "object-store ca-bundle")
      case "path-style":
        switch scalarString(value, what: "object-store path-style")?.lowercased() {
        case "true", "yes", "on": settings.pathStyle = true
        case "false", "no", "off": settings.pathStyle = false
        default: problem(value, "object-store path-style must be true or false", fix: "write `path-style: true`")
        }
      case "part-size":
        guard let text = scalarString(value, what: "object-store part-size"), let mib = Int(text),
          (5...5120).contains(mib)
        else {
          problem(value, "object-store part-size must be 5 to 5120 (MiB)", fix: "write e.g. `part-size: 64`")
          continue
        }
        settings.partSize = mib
      case _ where Self.isCredentialKey(key):
        problem(
          keyNode, "credentials never go in a pipeline file (`\(key)`)",
          fix:
            "remove it; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the run's environment, or name a shared-credentials file with `credentials-file:`"
        )
      default:
        problem(
          keyNode, "unknown object-store key `\(key)`",
          fix: "use one of: \(ObjectStoreSettingsText.keys.joined(separator: ", "))")
      }
    }
    return settings
  }

  static func isCredentialKey(_ key: String) -> Bool {
    ObjectStoreSettingsText.credentialKeys.contains(key.lowercased())
  }
}
