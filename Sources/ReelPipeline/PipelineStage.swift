import Foundation

/// The type a stage parameter must have.
enum ParameterType: Sendable, Equatable {
  case string
  case choice([String])
  case integer(minimum: Int, maximum: Int = Int.max)
  case boolean
  case size
  case duration
  case strings
  /// Media addresses that must exist when the file is read.
  case media

  var noun: String {
    switch self {
    case .string: "text"
    case .choice(let options): "one of \(options.joined(separator: ", "))"
    case .integer(let minimum, let maximum):
      maximum == Int.max ? "a whole number ≥ \(minimum)" : "a whole number from \(minimum) to \(maximum)"
    case .boolean: "true or false"
    case .size: "a size (512, 64K, 16M, 1G)"
    case .duration: "a duration (90s, 30m, 12h, 7d, 2w)"
    case .strings: "a list of names"
    case .media: "a list of media (dir:PATH, vtape:PATH, tape:/dev/nstN)"
    }
  }

  var example: String {
    switch self {
    case .string: "NAME"
    case .choice(let options): options[0]
    case .integer(let minimum, _): String(max(minimum, 1))
    case .boolean: "true"
    case .size: "4G"
    case .duration: "7d"
    case .strings: "[a, b]"
    case .media: "[vtape:/srv/reel/vtl]"
    }
  }
}

struct ParameterSpec: Sendable {
  package var name: String
  package var type: ParameterType
  package var required: Bool
  package var help: String

  init(_ name: String, _ type: ParameterType, required: Bool = false, _ help: String) {
    self.name = name
    self.type = type
    self.required = required
    self.help = help
  }
}

/// The name a pipeline file gives a kind of stage (`stage: seal`); each stage declares its own.
package struct StageKind: RawRepresentable, Hashable, Sendable {
  package let rawValue: String

  package init(rawValue: String) {
    self.rawValue = rawValue
  }
}

/// One kind of stage (docs/pipelines.md): the parameters a pipeline file may give it, and
/// its work. Each stage is idempotent: it looks at the store catalog (and the run's state)
/// to see what is already done, and does only the rest. Adding a stage is one type
/// conforming to this and one line in `StageRegistry`.
protocol PipelineStage: Sendable {
  static var kind: StageKind { get }
  /// Checked against their types, with the file's line and column, before anything runs.
  static var parameters: [ParameterSpec] { get }
  static var needsKey: Bool { get }
  /// Works on a media set: the stage's `media-set` or the file's.
  static var needsMediaSet: Bool { get }

  /// What the stage needs from the stages before it or the top of the file; one message
  /// and fix per problem.
  static func placementProblems(_ stage: StageDefinition, after earlier: [StageDefinition], mediaSet: String?)
    -> [(message: String, fix: String)]

  /// The stage with the parameters its checked definition gives.
  init(_ definition: StageDefinition)

  /// Does the stage's work; with `context.dryRun` only says what it would do, and writes
  /// nothing.
  func run(_ context: PipelineContext) throws -> StageOutcome
}

extension PipelineStage {
  static var needsKey: Bool { false }
  static var needsMediaSet: Bool { false }

  static func placementProblems(_ stage: StageDefinition, after earlier: [StageDefinition], mediaSet: String?)
    -> [(message: String, fix: String)]
  { [] }
}
