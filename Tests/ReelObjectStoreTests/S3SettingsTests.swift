import Foundation
import ReelCore
import Testing

@testable import ReelObjectStore

@Suite struct S3SettingsTests {
  let credentialsFile = """
    # comment
    [default]
    aws_access_key_id = AKDEFAULT
    aws_secret_access_key = secret/default

    [profile backup]
    aws_access_key_id=AKBACKUP
    aws_secret_access_key=secret+backup
    aws_session_token = TOKEN
    """

  @Test func credentialsFileProfiles() throws {
    let standard = try S3Credentials.parse(credentialsFile, profile: "default", source: "f")
    #expect(standard.accessKeyID == "AKDEFAULT")
    #expect(standard.secretAccessKey == "secret/default")
    #expect(standard.sessionToken == nil)
    let backup = try S3Credentials.parse(credentialsFile, profile: "backup", source: "f")
    #expect(backup.accessKeyID == "AKBACKUP")
    #expect(backup.secretAccessKey == "secret+backup")
    #expect(backup.sessionToken == "TOKEN")
    #expect(!backup.description.contains("secret"))
  }

  @Test func credentialsFileWithoutTheProfileSaysWhich() {
    #expect {
      try S3Credentials.parse(credentialsFile, profile: "other", source: "creds.ini")
    } throws: { error in
      let message = (error as? ReelError)?.description ?? ""
      return message.contains("creds.ini") && message.contains("[other]") && message.contains("AWS_PROFILE")
    }
    #expect(throws: ReelError.self) {
      try S3Credentials.parse("[default]\nno equals here", profile: "default", source: "f")
    }
  }

  @Test func credentialsFromEnvironmentNeedBoth() {
    #expect(S3Credentials.fromEnvironment(["AWS_ACCESS_KEY_ID": "A"]) == nil)
    #expect(S3Credentials.fromEnvironment(["AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": ""]) == nil)
    let credentials = S3Credentials.fromEnvironment([
      "AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "S", "AWS_SESSION_TOKEN": "T",
    ])
    #expect(credentials?.sessionToken == "T")
  }

  @Test func flagsWinOverEnvironment() throws {
    let environment = [
      "REEL_S3_ENDPOINT": "http://env:9000", "AWS_REGION": "eu-west-3", "REEL_S3_PATH_STYLE": "0",
      "AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "S", "REEL_S3_PART_SIZE_MIB": "16",
    ]
    let fromEnvironment = try S3Settings.resolve(
      endpoint: nil, credentialsFile: nil, caBundle: nil, pathStyle: nil, partSize: nil, environment: environment)
    #expect(fromEnvironment.endpoint.url == "http://env:9000")
    #expect(fromEnvironment.endpoint.region == "eu-west-3")
    #expect(!fromEnvironment.endpoint.pathStyle)
    #expect(fromEnvironment.partSize == 16 << 20)
    let fromFlags = try S3Settings.resolve(
      endpoint: "https://flag:443/", credentialsFile: nil, caBundle: nil, pathStyle: true, partSize: 8 << 20,
      environment: environment)
    #expect(fromFlags.endpoint.url == "https://flag:443")
    #expect(fromFlags.endpoint.pathStyle)
    #expect(fromFlags.partSize == 8 << 20)
  }

  @Test func missingCredentialsNameEveryWayToGiveThem() {
    #expect {
      try S3Settings.resolve(
        endpoint: "http://h:1", credentialsFile: nil, caBundle: nil, pathStyle: nil, partSize: nil, environment: [:])
    } throws: { error in
      let text = (error as? ReelError)?.description ?? ""
      return text.contains("AWS_ACCESS_KEY_ID") && text.contains("AWS_SECRET_ACCESS_KEY")
        && text.contains("--s3-credentials")
    }
  }

  @Test func badEndpointsAndPartSizesAreRefused() {
    let environment = ["AWS_ACCESS_KEY_ID": "A", "AWS_SECRET_ACCESS_KEY": "S"]
    for endpoint in ["ftp://h", "h:9000", "http://h:9000/path", "http://"] {
      #expect(throws: ReelError.self) {
        try S3Settings.resolve(
          endpoint: endpoint, credentialsFile: nil, caBundle: nil, pathStyle: nil, partSize: nil,
          environment: environment)
      }
    }
    for size in [1 << 20, 6 << 30] {
      #expect(throws: ReelError.self) {
        try S3Settings.resolve(
          endpoint: "http://h:1", credentialsFile: nil, caBundle: nil, pathStyle: nil, partSize: size,
          environment: environment)
      }
    }
    #expect(throws: ReelError.self) {
      try S3Settings.resolve(
        endpoint: nil, credentialsFile: nil, caBundle: nil, pathStyle: nil, partSize: nil, environment: environment)
    }
  }

  @Test func retryDelaysDoubleUpToTheCap() {
    let policy = S3RetryPolicy(attempts: 5, firstDelay: .milliseconds(100), maxDelay: .milliseconds(350))
    #expect(policy.delay(before: 1) == .milliseconds(100))
    #expect(policy.delay(before: 2) == .milliseconds(200))
    #expect(policy.delay(before: 3) == .milliseconds(350))
    #expect(policy.delay(before: 9) == .milliseconds(350))
  }
}
