// Test helper: uploads FILE to s3://BUCKET/KEY with S3FileUpload (settings from the
// environment, as `reel` takes them) and kills itself with SIGKILL as soon as PARTS parts
// are stored: a process dead mid-upload, leaving a pending multipart upload behind.
import Foundation
import ReelCodec
import ReelCore
import ReelObjectStore

let arguments = CommandLine.arguments
guard arguments.count == 5, let parts = Int(arguments[4]), parts > 0 else {
  FileHandle.standardError.write(Data("usage: S3UploadChild FILE BUCKET KEY PARTS\n".utf8))
  exit(64)
}
let (file, bucket, key) = (arguments[1], arguments[2], arguments[3])
do {
  var settings = try S3Settings.resolve(
    endpoint: nil, credentialsFile: nil, caBundle: nil, pathStyle: nil, partSize: nil,
    environment: ProcessInfo.processInfo.environment)
  settings.retry = S3RetryPolicy(attempts: 2, firstDelay: .milliseconds(50), maxDelay: .milliseconds(100))
  let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
  let sha256 = SHA256Digest.hash(bytes).hex
  let client = try S3Client(settings: settings)
  try S3FileUpload.run(client: client, bucket: bucket, key: key, file: file, sha256: sha256) { done, _ in
    if done >= UInt64(parts * settings.partSize) {
      FileHandle.standardOutput.write(Data("stored \(done)\n".utf8))
      kill(getpid(), SIGKILL)
    }
  }
  FileHandle.standardError.write(Data("the upload finished before \(parts) parts were stored\n".utf8))
  exit(1)
} catch {
  FileHandle.standardError.write(Data("\(error)\n".utf8))
  exit(2)
}
