/// Every stage a pipeline file can name, in the order docs/pipelines.md lists them.
enum StageRegistry {
  static let stages: [any PipelineStage.Type] = [
    CutStage.self,
    SealStage.self,
    VerifyStage.self,
    ExportStage.self,
    VerifyOnMediaStage.self,
    RecordCatalogStage.self,
    PruneJournalStage.self,
    OffsiteCopyStage.self,
    ListCartridgesStage.self,
    RehydrateStage.self,
    CompareStage.self,
  ]

  static var names: [String] { stages.map { $0.kind.rawValue } }

  static func stage(named name: String) -> (any PipelineStage.Type)? {
    stages.first { $0.kind.rawValue == name }
  }
}
