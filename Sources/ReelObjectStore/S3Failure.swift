import Foundation
import ReelCore

/// Turns what an S3 service or the network said into errors that say what and what to do.
enum S3Failure {
  /// The `Code` and `Message` of an S3 error document, if the body is one.
  static func code(of response: HTTPResponse) -> (code: String, message: String)? {
    guard !response.body.isEmpty, let root = try? S3XMLElement.parse(response.body, what: "error reply"),
      root.name == "Error", let code = root.value("Code")
    else { return nil }
    return (code, root.value("Message") ?? "")
  }

  /// Whether trying the same request again may succeed: the server's fault or its load.
  static func isTransient(_ response: HTTPResponse) -> Bool {
    if response.status >= 500 || response.status == 429 { return true }
    if let (code, _) = code(of: response) {
      return ["RequestTimeout", "SlowDown", "InternalError", "ServiceUnavailable"].contains(code)
    }
    return false
  }

  static func error(
    _ response: HTTPResponse, doing operation: String, bucket: String, key: String?, endpoint: S3Endpoint
  )
    -> ReelError
  {
    let what = key.map { "s3://\(bucket)/\($0)" } ?? "s3://\(bucket)"
    let parsed = code(of: response)
    let code = parsed?.code ?? statusCode(response.status)
    let detail = parsed.map { $0.message.isEmpty ? "" : ": \($0.message)" } ?? ""
    switch code {
    case "InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken", "TokenRefreshRequired":
      return ReelError(
        .wrongKey, "\(endpoint.url) refused the S3 credentials (\(code)) while \(operation) \(what)",
        remedy:
          "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or the --s3-credentials file and AWS_PROFILE) and AWS_REGION (now \(endpoint.region))"
      )
    case "NoSuchBucket":
      return ReelError(
        .notFound, "bucket \(bucket) does not exist at \(endpoint.url)",
        remedy: "create it first (e.g. `aws s3 mb s3://\(bucket)`), or check the bucket name and --s3-endpoint")
    case "NoSuchKey":
      return ReelError(.notFound, "\(what) does not exist (\(operation))")
    case "NoSuchUpload":
      return ReelError(.notFound, "the multipart upload of \(what) no longer exists (\(operation))")
    case "AccessDenied", "AllAccessDisabled":
      return ReelError(
        .io, "\(endpoint.url) denied access while \(operation) \(what)\(detail)",
        remedy:
          "grant these credentials s3:GetObject, s3:PutObject, s3:ListBucket and the multipart actions on the bucket; deletions and Object Lock may also be refused by a retention"
      )
    case "AccessDeniedOrCredentials":
      return ReelError(
        .io, "\(endpoint.url) refused \(operation) \(what) (HTTP 403)",
        remedy:
          "check the credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or --s3-credentials) and their permissions on the bucket"
      )
    case "InvalidBucketName":
      return ReelError(
        .usage, "\"\(bucket)\" is not a valid bucket name",
        remedy: "bucket names are 3 to 63 lower-case letters, digits, dots and hyphens")
    case "EntityTooSmall", "EntityTooLarge":
      return ReelError(
        .usage, "\(endpoint.url) refused a part of \(what) (\(code))\(detail)",
        remedy: "give --s3-part-size between 5 and 5120 (MiB)")
    case "BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch":
      return ReelError(.corrupt, "the bytes of \(what) were damaged on the way to \(endpoint.url) (\(code))")
    case "ObjectLockConfigurationNotFoundError":
      return ReelError(
        .incompatible, "bucket \(bucket) has no Object Lock, so \(what) cannot be retained\(detail)",
        remedy: "create the bucket with Object Lock enabled, or export without --retain")
    default:
      return ReelError(
        .io, "\(endpoint.url) answered HTTP \(response.status) (\(code)) while \(operation) \(what)\(detail)",
        remedy: response.status >= 500 || response.status == 429
          ? "the service is failing or busy; try again later" : nil)
    }
  }

  private static func statusCode(_ status: Int) -> String {
    switch status {
    case 403: "AccessDeniedOrCredentials"
    case 404: "NoSuchKey"
    default: "HTTP\(status)"
    }
  }

  static func error(
    _ failure: TransportFailure, doing operation: String, bucket: String, key: String?, endpoint: S3Endpoint
  )
    -> ReelError
  {
    let what = key.map { "s3://\(bucket)/\($0)" } ?? "s3://\(bucket)"
    switch failure.kind {
    case .unreachable:
      return ReelError(
        .io, "cannot reach the S3 service at \(endpoint.url) while \(operation) \(what): \(failure.detail)",
        remedy: "is the server running and --s3-endpoint (REEL_S3_ENDPOINT) right?")
    case .timedOut:
      return ReelError(
        .io, "the S3 service at \(endpoint.url) stopped answering while \(operation) \(what): \(failure.detail)",
        remedy: "is the server running and reachable? try again")
    case .broken:
      return ReelError(
        .io, "the connection to \(endpoint.url) broke while \(operation) \(what): \(failure.detail)",
        remedy: "is the server running? try again")
    case .tls:
      return ReelError(
        .io, "the TLS certificate of \(endpoint.url) could not be verified: \(failure.detail)",
        remedy: "give --s3-ca-bundle FILE with the certificate authority that signed the server's certificate")
    case .tlsBundle:
      return ReelError(
        .io, "the CA bundle \(endpoint.caBundle ?? "") could not be used: \(failure.detail)",
        remedy: "give --s3-ca-bundle a PEM file of certificates")
    case .tooLarge:
      return ReelError(
        .protocolViolation, "\(endpoint.url) sent more than \(operation) \(what) can hold; nothing of it was used")
    case .unexpectedReply:
      return ReelError(
        .protocolViolation,
        "\(endpoint.url) answered \(operation) \(what) with \(failure.detail); nothing of it was used")
    case .other:
      return ReelError(.io, "\(operation) \(what) at \(endpoint.url) failed: \(failure.detail)")
    }
  }
}
