import Foundation
import ReelCore
import ReelPipeline
import ReelTestSupport
import Testing

@Suite("Pipeline files")
struct PipelineFileTests {
  func problems(_ text: String, environment: [String: String] = [:]) -> String {
    do {
      _ = try PipelineFile.parse(text, file: "bad.yaml", environment: environment)
      return ""
    } catch let error as ReelError {
      #expect(error.kind == .usage)
      return error.message
    } catch {
      return "\(error)"
    }
  }

  @Test("the shipped pipelines are valid")
  func shipped() throws {
    let folder = TemporaryDirectory("reel-pipeline-files")
    let environment = ["REEL_VTL": folder.path, "REEL_OFFSITE_VTL": folder.path]
    let root = PipelineTests.repository + "/pipelines/"
    let nightly = try PipelineFile.load(path: root + "nightly-seal-export.yaml", environment: environment)
    #expect(
      nightly.stages.map(\.kind.rawValue) == [
        "cut", "seal", "verify", "export", "verify-on-media", "record-catalog", "prune-journal",
      ])
    #expect(nightly.stages.last?.integer("copies") == 1)
    let offsite = try PipelineFile.load(path: root + "offsite-tape.yaml", environment: environment)
    #expect(offsite.stages.map(\.kind) == [.offsiteCopy, .verifyOnMedia, .listCartridges])
    let drill = try PipelineFile.load(path: root + "dr-drill.yaml", environment: environment)
    #expect(drill.stages.map(\.kind) == [.rehydrate, .compare])
    // The defaults name media that do not exist here: refused, with the line.
    let message = problems(
      try String(contentsOfFile: root + "nightly-seal-export.yaml", encoding: .utf8))
    #expect(message.contains("bad.yaml:22:"))
    #expect(message.contains("media vtape:/var/lib/reel/vtl does not exist"))
  }

  @Test("offsite-s3.yaml names its bucket and endpoint; an object-store section takes no credentials")
  func objectStore() throws {
    let environment = ["REEL_S3_ENDPOINT": "http://127.0.0.1:9", "REEL_S3_BUCKET": "backups", "REEL_S3_PREFIX": "p"]
    let offsite = try PipelineFile.load(
      path: PipelineTests.repository + "/pipelines/offsite-s3.yaml", environment: environment)
    #expect(
      offsite.stages.map(\.kind.rawValue) == [
        "cut", "seal", "verify", "export", "verify-on-media", "record-catalog", "prune-journal",
      ])
    #expect(offsite.objectStore?.endpoint == "http://127.0.0.1:9")
    #expect(offsite.stages[3].media("to")?.map(\.description) == ["s3://backups/p"])
    let message = problems(
      """
      pipeline: p
      media-set: m
      object-store:
        endpoint: http://127.0.0.1:9
        secret-access-key: hunter2
        part-size: 2
      stages:
        - stage: export
          to: s3://b
      """)
    #expect(
      message.contains("bad.yaml:5:3: credentials never go in a pipeline file (`secret-access-key`)"), "\(message)")
    #expect(message.contains("bad.yaml:6:14: object-store part-size must be 5 to 5120 (MiB)"), "\(message)")
  }

  @Test("an unknown stage is named with its line and the stages there are")
  func unknownStage() {
    let message = problems(
      """
      pipeline: p
      stages:
        - stage: cut
        - stage: seel
      """)
    #expect(message.contains("bad.yaml:4:12: unknown stage \"seel\""))
    #expect(message.contains("did you mean \"seal\"?"))
  }

  @Test("a missing parameter, a wrong type, an unknown parameter, each on its line")
  func parameters() {
    let message = problems(
      """
      pipeline: p
      media-set: primary
      stages:
        - stage: prune-journal
        - stage: prune-journal
          name: prune-again
          copies: two
        - stage: record-catalog
          keep: 3
          colour: blue
        - stage: seal
          format: 3
      """)
    #expect(message.contains("4 problems"))
    #expect(message.contains("bad.yaml:12:13: `format` of stage seal cannot be \"3\""), "\(message)")
    #expect(message.contains("write one of: 1, 2"))
    #expect(message.contains("bad.yaml:4:5: stage prune-journal is missing its parameter `copies`"))
    #expect(message.contains("bad.yaml:7:13: `copies` of stage prune-journal must be a whole number ≥ 1, not \"two\""))
    #expect(message.contains("bad.yaml:10:5: stage record-catalog has no parameter `colour`"))
  }

  @Test("media that do not exist are refused before anything runs")
  func missingMedia() {
    let message = problems(
      """
      pipeline: p
      media-set: primary
      stages:
        - stage: export
          to: [vtape:/nonexistent/vtl, tape:/dev/nst9]
      """)
    #expect(message.contains("bad.yaml:5:9: `to` of stage export: media vtape:/nonexistent/vtl does not exist"))
    #expect(message.contains("media tape:/dev/nst9 does not exist"))
    #expect(message.contains("reel media label"))
  }

  @Test("structure: invalid YAML, no name, unknown top-level key, unset variable, duplicate names, order")
  func structure() {
    #expect(problems("pipeline: p\nstages:\n  - stage: [cut\n").contains("bad.yaml:4:1: this is not valid YAML"))
    #expect(problems("stages:\n  - stage: cut\n").contains("bad.yaml:1:1: the file does not name the pipeline"))
    #expect(problems("pipeline: p\nstage:\n  - stage: cut\n").contains("bad.yaml:2:1: unknown key `stage`"))
    #expect(
      problems("pipeline: p\nmedia-set: ${SET}\nstages:\n  - stage: cut\n").contains(
        "bad.yaml:2:12: \"${SET}\" uses ${SET}, which is not set"))
    #expect(
      problems("pipeline: p\nstages:\n  - stage: cut\n  - stage: cut\n").contains(
        "a second stage is named \"cut\" (the first is at line 3)"))
    #expect(problems("pipeline: p\nstages:\n  - stage: compare\n").contains("needs a rehydrate stage before it"))
    #expect(
      problems("pipeline: p\nstages:\n  - stage: verify-on-media\n").contains(
        "bad.yaml:3:5: stage \"verify-on-media\" (verify-on-media) needs a media set"))
    #expect(problems("pipeline: p\nstages: []\n").contains("stages is empty"))
    #expect(problems("pipeline: p\nstages:\n  - stage: cut\n    mode: sometimes\n").contains("cannot be \"sometimes\""))
    // ${NAME:-default} and ${NAME} from the environment.
    #expect(
      problems(
        "pipeline: p\nmedia-set: ${SET:-primary}\nstages:\n  - stage: prune-journal\n    copies: ${N}\n",
        environment: ["N": "2"]
      ).isEmpty)
  }

  @Test("the command line: exit 64, the problems on stderr, nothing run")
  func commandLine() throws {
    let sandbox = try PipelineSandbox(sessions: 1)
    let file = try sandbox.pipeline("bad", "pipeline: bad\nstages:\n  - stage: seal\n  - stage: sael\n")
    let run = try sandbox.reel(["pipeline", "run", file])
    #expect(run.status == 64)
    #expect(run.stderr.contains("\(file):4:12: unknown stage \"sael\""))
    #expect(try sandbox.openStore().catalog.pipelineRuns().isEmpty)
    let volumes = try sandbox.pipeline("volumes", "pipeline: v\nvolumes: [alpha, gamma]\nstages:\n  - stage: cut\n")
    let unknown = try sandbox.reel(["pipeline", "run", volumes])
    #expect(unknown.status == 64)
    #expect(unknown.stderr.contains("\(volumes):2:10: volume \"gamma\" is not in the store"))
  }
}
