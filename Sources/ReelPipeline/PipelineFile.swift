import Foundation
import ReelCodec
import ReelCore
import ReelMedia
import Yams

/// A value a pipeline file gave a parameter, already checked against its type.
package enum ParameterValue: Sendable, Equatable {
  case string(String)
  case integer(Int)
  case boolean(Bool)
  case size(UInt64)
  case duration(Duration)
  case strings([String])
  case media([MediaAddress])
}

/// Where something was written in a pipeline file, for messages a person can act on.
package struct FileLocation: Sendable, Equatable, CustomStringConvertible {
  package var file: String
  package var line: Int
  package var column: Int

  package var description: String { "\(file):\(line):\(column)" }
}

/// One stage as the file names it.
package struct StageDefinition: Sendable {
  package var name: String
  let stageType: any PipelineStage.Type
  package var location: FileLocation
  package var parameters: [String: ParameterValue]
  package var parameterLocations: [String: FileLocation]

  package var kind: StageKind { stageType.kind }

  package func string(_ key: String) -> String? {
    if case .string(let value) = parameters[key] { return value }
    return nil
  }

  package func integer(_ key: String) -> Int? {
    if case .integer(let value) = parameters[key] { return value }
    return nil
  }

  func boolean(_ key: String) -> Bool? {
    if case .boolean(let value) = parameters[key] { return value }
    return nil
  }

  package func size(_ key: String) -> UInt64? {
    if case .size(let value) = parameters[key] { return value }
    return nil
  }

  package func duration(_ key: String) -> Duration? {
    if case .duration(let value) = parameters[key] { return value }
    return nil
  }

  func strings(_ key: String) -> [String]? {
    if case .strings(let value) = parameters[key] { return value }
    return nil
  }

  package func media(_ key: String) -> [MediaAddress]? {
    if case .media(let value) = parameters[key] { return value }
    return nil
  }
}

/// A pipeline file, parsed and checked (docs/pipelines.md).
package struct PipelineDefinition: Sendable {
  package var name: String
  package var file: String
  package var description: String?
  /// Volume names; nil means every volume of the store.
  package var volumes: [String]?
  var volumesLocation: FileLocation?
  /// The media set the stages work on unless a stage names another.
  package var mediaSet: String?
  /// Where sealed archives are written; nil means `<store>/archives`.
  var archiveDirectory: String?
  package var stages: [StageDefinition]
  /// Where `s3://` media of the file are (no credentials: those come from the environment).
  package var objectStore: ObjectStoreSettingsText?
  /// SHA-256 of the file's bytes: a killed run is resumed only with the same file.
  package var sha256: String

  package var needsKey: Bool { stages.contains { $0.stageType.needsKey } }
}

/// A problem found in a pipeline file, with where it is and what to do.
struct PipelineProblem: Sendable, Equatable, CustomStringConvertible {
  package var location: FileLocation
  package var message: String
  package var fix: String

  package var description: String { "\(location): \(message)\n    → \(fix)" }
}

/// Reads pipeline files: YAML (via Yams) into a checked `PipelineDefinition`. Every problem
/// is collected with its file, line and column before anything runs.
package enum PipelineFile {
  static let topLevelKeys = [
    "pipeline", "description", "volumes", "media-set", "archive-dir", "object-store", "stages",
  ]

  package static func load(path: String, environment: [String: String] = ProcessInfo.processInfo.environment) throws
    -> PipelineDefinition
  {
    guard let data = FileManager.default.contents(atPath: path) else {
      throw ReelError(
        .notFound, "pipeline file \(path) not found",
        remedy: "give the path of a pipeline file, e.g. pipelines/nightly-seal-export.yaml")
    }
    guard let text = String(data: data, encoding: .utf8) else {
      throw ReelError(.usage, "\(path) is not UTF-8 text", remedy: "save the pipeline file as UTF-8")
    }
    return try parse(text, file: path, sha256: SHA256Digest.hash(Array(data)).hex, environment: environment)
  }

  package static func parse(
    _ text: String, file: String, sha256: String? = nil,
    environment: [String: String] = ProcessInfo.processInfo.environment
  ) throws -> PipelineDefinition {
    var checker = Checker(file: file, environment: environment)
    let root: Node?
    do {
      root = try Yams.compose(yaml: text)
    } catch let error as YamlError {
      throw checker.yamlError(error)
    }
    let definition = checker.definition(
      root, sha256: sha256 ?? SHA256Digest.hash(Array(text.utf8)).hex)
    if !checker.problems.isEmpty || definition == nil {
      throw PipelineFile.error(file: file, problems: checker.problems)
    }
    return definition!
  }

  static func error(file: String, problems: [PipelineProblem]) -> ReelError {
    ReelError(
      .usage,
      "\(file): \(problems.count) problem\(problems.count == 1 ? "" : "s"); nothing was run\n"
        + problems.map { "  " + $0.description }.joined(separator: "\n"),
      remedy: "fix the file and run again; docs/pipelines.md lists every stage and parameter")
  }
}

/// Walks the YAML tree, collecting problems.
struct Checker {
  let file: String
  let environment: [String: String]
  var problems: [PipelineProblem] = []

  init(file: String, environment: [String: String]) {
    self.file = file
    self.environment = environment
  }

  func location(_ node: Node?) -> FileLocation {
    FileLocation(file: file, line: node?.mark?.line ?? 1, column: node?.mark?.column ?? 1)
  }

  mutating func problem(_ node: Node?, _ message: String, fix: String) {
    problems.append(PipelineProblem(location: location(node), message: message, fix: fix))
  }

  func yamlError(_ error: YamlError) -> ReelError {
    let (mark, problem): (Mark?, String)
    switch error {
    case .scanner(_, let text, let at, _), .parser(_, let text, let at, _), .composer(_, let text, let at, _):
      (mark, problem) = (at, text)
    case .reader(let text, _, _, _):
      (mark, problem) = (nil, text)
    default:
      (mark, problem) = (nil, "\(error)")
    }
    return PipelineFile.error(
      file: file,
      problems: [
        PipelineProblem(
          location: FileLocation(file: file, line: mark?.line ?? 1, column: mark?.column ?? 1),
          message: "this is not valid YAML: \(problem)",
          fix: "check the indentation and the `key: value` syntax around this line")
      ])
  }

  /// Expands `${NAME}` and `${NAME:-default}` from the environment.
  mutating func expand(_ text: String, at node: Node) -> String {
    var result = ""
    var rest = Substring(text)
    while let start = rest.range(of: "${") {
      result += rest[..<start.lowerBound]
      guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
        problem(node, "\"\(text)\" has a `${` without a closing `}`", fix: "write ${NAME} or ${NAME:-default}")
        return text
      }
      let inside = String(rest[start.upperBound..<end])
      let parts = inside.components(separatedBy: ":-")
      let name = parts[0]
      if let value = environment[name], !value.isEmpty {
        result += value
      } else if parts.count > 1 {
        result += parts.dropFirst().joined(separator: ":-")
      } else {
        problem(
          node, "\"\(text)\" uses ${\(name)}, which is not set",
          fix: "set \(name) in the environment, or give a default: ${\(name):-VALUE}")
      }
      rest = rest[rest.index(after: end)...]
    }
    return result + rest
  }

  mutating func scalarString(_ node: Node, what: String) -> String? {
    guard case .scalar(let scalar) = node else {
      problem(node, "\(what) must be a single value, not a \(describe(node))", fix: "write it as `key: value`")
      return nil
    }
    return expand(scalar.string, at: node)
  }

  func describe(_ node: Node) -> String {
    switch node {
    case .scalar: "value"
    case .mapping: "mapping (key: value pairs)"
    case .sequence: "list"
    case .alias: "alias"
    }
  }

  mutating func definition(_ root: Node?, sha256: String) -> PipelineDefinition? {
    guard let root, case .mapping(let mapping) = root else {
      problem(
        root, "a pipeline file is a mapping with `pipeline:` and `stages:`",
        fix: "start the file with `pipeline: NAME` and list the stages under `stages:`")
      return nil
    }
    var name: String?
    var description: String?
    var volumes: [String]?
    var volumesLocation: FileLocation?
    var mediaSet: String?
    var archiveDirectory: String?
    var objectStore: ObjectStoreSettingsText?
    var stages: [StageDefinition] = []
    var sawStages = false
    for (keyNode, value) in mapping {
      guard let key = keyNode.string else {
        problem(
          keyNode, "keys must be plain names", fix: "use one of: \(PipelineFile.topLevelKeys.joined(separator: ", "))")
        continue
      }
      switch key {
      case "pipeline":
        if let text = scalarString(value, what: "pipeline") {
          if text.isEmpty || text.contains(where: { !($0.isLetter || $0.isNumber || "-_.".contains($0)) }) {
            problem(
              value, "pipeline name \"\(text)\" may only hold letters, digits, `-`, `_` and `.`",
              fix: "rename it, e.g. nightly-seal-export")
          } else {
            name = text
          }
        }
      case "description":
        description = scalarString(value, what: "description")
      case "volumes":
        volumesLocation = location(value)
        if case .scalar = value, value.string == "all" {
          volumes = nil
        } else if let list = stringList(value, what: "volumes") {
          if list.isEmpty {
            problem(value, "volumes is an empty list", fix: "name volumes, or write `volumes: all`")
          }
          volumes = list
        }
      case "media-set":
        mediaSet = scalarString(value, what: "media-set")
      case "archive-dir":
        archiveDirectory = scalarString(value, what: "archive-dir")
      case "object-store":
        objectStore = objectStoreSettings(value)
      case "stages":
        sawStages = true
        guard case .sequence(let sequence) = value else {
          problem(value, "stages must be a list", fix: "write each stage as a list item: `  - stage: seal`")
          continue
        }
        if sequence.isEmpty {
          problem(value, "stages is empty", fix: "list at least one stage")
        }
        for item in sequence {
          if let stage = stageDefinition(item, index: stages.count) { stages.append(stage) }
        }
      default:
        problem(
          keyNode, "unknown key `\(key)`",
          fix:
            "use one of: \(PipelineFile.topLevelKeys.joined(separator: ", ")) (stage parameters go inside each stage)")
      }
    }
    if name == nil && !problems.contains(where: { $0.message.hasPrefix("pipeline name") }) {
      problem(root, "the file does not name the pipeline", fix: "add `pipeline: NAME` at the top")
    }
    if !sawStages {
      problem(root, "the file has no `stages:`", fix: "add `stages:` with a list of stages (docs/pipelines.md)")
    }
    var seen: [String: FileLocation] = [:]
    for stage in stages {
      if let earlier = seen[stage.name] {
        problems.append(
          PipelineProblem(
            location: stage.location,
            message: "a second stage is named \"\(stage.name)\" (the first is at line \(earlier.line))",
            fix: "give each stage a unique `name:`"))
      }
      seen[stage.name] = stage.location
    }
    checkOrder(stages, mediaSet: mediaSet)
    guard let name else { return nil }
    return PipelineDefinition(
      name: name, file: file, description: description, volumes: volumes, volumesLocation: volumesLocation,
      mediaSet: mediaSet, archiveDirectory: archiveDirectory, stages: stages, objectStore: objectStore,
      sha256: sha256)
  }

  /// Stages that need what an earlier stage or the top level provides.
  mutating func checkOrder(_ stages: [StageDefinition], mediaSet: String?) {
    for (index, stage) in stages.enumerated() {
      if stage.stageType.needsMediaSet && stage.string("media-set") == nil && mediaSet == nil {
        problems.append(
          PipelineProblem(
            location: stage.location, message: "stage \"\(stage.name)\" (\(stage.kind.rawValue)) needs a media set",
            fix: "add `media-set: NAME` to the stage, or once at the top of the file"))
      }
      for problem in stage.stageType.placementProblems(stage, after: Array(stages[..<index]), mediaSet: mediaSet) {
        problems.append(PipelineProblem(location: stage.location, message: problem.message, fix: problem.fix))
      }
    }
  }

  mutating func stringList(_ node: Node, what: String) -> [String]? {
    switch node {
    case .scalar:
      return scalarString(node, what: what).map { [$0] }
    case .sequence(let sequence):
      var result: [String] = []
      for item in sequence {
        guard let text = scalarString(item, what: "each item of \(what)") else { return nil }
        result.append(text)
      }
      return result
    default:
      problem(node, "\(what) must be a list, not a \(describe(node))", fix: "write `\(what): [a, b]`")
      return nil
    }
  }

  mutating func stageDefinition(_ node: Node, index: Int) -> StageDefinition? {
    guard case .mapping(let mapping) = node else {
      problem(
        node, "stage \(index + 1) must be a mapping with `stage:` and its parameters, not a \(describe(node))",
        fix: "write it as `- stage: seal` followed by its parameters, indented")
      return nil
    }
    guard let kindNode = mapping["stage"] else {
      problem(
        node, "stage \(index + 1) does not say which stage it is",
        fix: "add `stage: KIND`, one of: \(StageRegistry.names.joined(separator: ", "))")
      return nil
    }
    guard let kindText = scalarString(kindNode, what: "stage") else { return nil }
    guard let stageType = StageRegistry.stage(named: kindText) else {
      let suggestion = StageRegistry.names.min { editDistance($0, kindText) < editDistance($1, kindText) }
      problem(
        kindNode, "unknown stage \"\(kindText)\"",
        fix: (suggestion.map { editDistance($0, kindText) <= 3 ? "did you mean \"\($0)\"? " : "" } ?? "")
          + "stages are: \(StageRegistry.names.joined(separator: ", "))")
      return nil
    }
    let kind = stageType.kind
    var name = kind.rawValue
    var parameters: [String: ParameterValue] = [:]
    var locations: [String: FileLocation] = [:]
    let specs = stageType.parameters
    for (keyNode, value) in mapping {
      guard let key = keyNode.string else { continue }
      if key == "stage" { continue }
      if key == "name" {
        if let text = scalarString(value, what: "name") { name = text }
        continue
      }
      guard let spec = specs.first(where: { $0.name == key }) else {
        let known = specs.map(\.name) + ["name"]
        problem(
          keyNode, "stage \(kind.rawValue) has no parameter `\(key)`",
          fix: "its parameters are: \(known.joined(separator: ", "))")
        continue
      }
      locations[key] = location(value)
      if let checked = check(value, against: spec, stage: kind) { parameters[key] = checked }
    }
    for spec in specs where spec.required && parameters[spec.name] == nil && locations[spec.name] == nil {
      problem(
        node, "stage \(kind.rawValue) is missing its parameter `\(spec.name)` (\(spec.help))",
        fix: "add `\(spec.name): \(spec.type.example)` to the stage")
    }
    return StageDefinition(
      name: name, stageType: stageType, location: location(node), parameters: parameters, parameterLocations: locations)
  }

  mutating func check(_ node: Node, against spec: ParameterSpec, stage: StageKind) -> ParameterValue? {
    let what = "`\(spec.name)` of stage \(stage.rawValue)"
    func wrongType() {
      problem(
        node, "\(what) must be \(spec.type.noun), not \(node.string.map { "\"\($0)\"" } ?? "a \(describe(node))")",
        fix: "write e.g. `\(spec.name): \(spec.type.example)`")
    }
    switch spec.type {
    case .string:
      return scalarString(node, what: what).map(ParameterValue.string)
    case .choice(let options):
      guard let text = scalarString(node, what: what) else { return nil }
      guard options.contains(text) else {
        problem(node, "\(what) cannot be \"\(text)\"", fix: "write one of: \(options.joined(separator: ", "))")
        return nil
      }
      return .string(text)
    case .integer(let minimum, let maximum):
      guard case .scalar = node, let text = scalarString(node, what: what), let value = Int(text) else {
        wrongType()
        return nil
      }
      guard value >= minimum else {
        problem(node, "\(what) must be at least \(minimum), not \(value)", fix: "write a number ≥ \(minimum)")
        return nil
      }
      guard value <= maximum else {
        problem(node, "\(what) must be at most \(maximum), not \(value)", fix: "write a number ≤ \(maximum)")
        return nil
      }
      return .integer(value)
    case .boolean:
      guard case .scalar = node, let text = scalarString(node, what: what) else {
        wrongType()
        return nil
      }
      switch text.lowercased() {
      case "true", "yes", "on": return .boolean(true)
      case "false", "no", "off": return .boolean(false)
      default:
        wrongType()
        return nil
      }
    case .size:
      guard case .scalar = node, let text = scalarString(node, what: what), let value = try? ByteSize.parse(text) else {
        wrongType()
        return nil
      }
      return .size(value)
    case .duration:
      guard case .scalar = node, let text = scalarString(node, what: what), let value = try? DurationText.parse(text)
      else {
        wrongType()
        return nil
      }
      return .duration(value)
    case .strings:
      return stringList(node, what: what).map(ParameterValue.strings)
    case .media:
      guard let list = stringList(node, what: what) else { return nil }
      var addresses: [MediaAddress] = []
      for text in list {
        guard let address = try? MediaAddress(parsing: text) else {
          problem(
            node, "\(what): \"\(text)\" is not a media address",
            fix:
              "write dir:PATH (a folder), vtape:PATH (a cartridge file or a library folder), tape:/dev/nstN or s3://BUCKET[/PREFIX]"
          )
          continue
        }
        let path: String
        switch address {
        case .folder(let folder): path = folder
        case .virtualTape(let file): path = file
        case .tapeDrive(let device): path = device
        case .objectStore:
          // A bucket is checked when the stage opens it, with the run's credentials.
          addresses.append(address)
          continue
        }
        guard FileManager.default.fileExists(atPath: path) else {
          problem(
            node, "\(what): media \(text) does not exist",
            fix: "check the path; label new media first with `reel media label \(text) --name LABEL`")
          continue
        }
        addresses.append(address)
      }
      return .media(addresses)
    }
  }
}

/// Levenshtein distance, for "did you mean".
func editDistance(_ a: String, _ b: String) -> Int {
  let a = Array(a)
  let b = Array(b)
  guard !a.isEmpty else { return b.count }
  guard !b.isEmpty else { return a.count }
  var previous = Array(0...b.count)
  for i in 1...a.count {
    var current = [i] + [Int](repeating: 0, count: b.count)
    for j in 1...b.count {
      current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
    }
    previous = current
  }
  return previous[b.count]
}
