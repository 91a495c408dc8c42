import Foundation
import ReelCore
import ReelPipeline
import ReelTestSupport
import Testing

/// The shipped `pipelines/offsite-s3.yaml` against a real SeaweedFS: archives exported to a
/// bucket, verified there with the key, and counted as copies before journal segments go.
@Suite(.serialized, .seaweedServer()) struct ObjectStorePipelineTests {
  @Test func theShippedOffsiteS3PipelineVerifiesInTheBucketAndPrunesOnlyProtectedSegments() throws {
    let server = try SeaweedServer.current
    try server.createBucket("nightly")
    let sandbox = try PipelineSandbox()
    let before = try sandbox.segmentRanges()
    var environment = server.environment
    environment["REEL_S3_BUCKET"] = "nightly"
    environment["REEL_S3_PREFIX"] = "site-a"
    // The file's object-store section names the endpoint; the credentials come from here.
    environment["REEL_S3_ENDPOINT"] = server.endpoint
    // A new bucket takes writes once SeaweedFS has grown its first volume.
    var labeled = try sandbox.reel(["media", "label", "s3://nightly/site-a", "--name", "N1"], environment: environment)
    for _ in 0..<100 where labeled.status != 0 {
      usleep(100_000)
      labeled = try sandbox.reel(["media", "label", "s3://nightly/site-a", "--name", "N1"], environment: environment)
    }
    #expect(labeled.status == 0, "\(labeled.output)")
    let file = PipelineTests.repository + "/pipelines/offsite-s3.yaml"
    let result = try sandbox.reel(["pipeline", "run", file, "--json"], environment: environment)
    #expect(result.status == 0, "\(result.output)")
    let stages = try sandbox.json(result.stdout)["stages"] as? [[String: Any]] ?? []
    func items(_ name: String) -> Int? { stages.first { $0["name"] as? String == name }?["items"] as? Int }
    #expect(items("export") == 2)
    #expect(items("verify-on-media") == 2)
    #expect((items("prune-journal") ?? 0) > 0)
    #expect(try sandbox.prunedSegmentsAreProtected(before, copies: 1).isEmpty)
    let copies = try sandbox.openStore().catalog.archiveCopies(mediaSet: "offsite-s3")
    #expect(copies.count == 2 && copies.allSatisfy { $0.cartridgeLabel == "N1" })

    // Without credentials the run stops before any stage, saying where they come from.
    var bare: [String: String?] = sandbox.environment.merging(environment) { $1 }.mapValues { $0 }
    bare.updateValue(nil, forKey: "AWS_ACCESS_KEY_ID")
    bare.updateValue(nil, forKey: "AWS_SECRET_ACCESS_KEY")
    let refused = try run(reelExecutable, ["pipeline", "run", file], environment: bare)
    #expect(refused.status != 0 && refused.stderr.contains("AWS_ACCESS_KEY_ID"), "\(refused.output)")
  }
}
