import Foundation
import ReelIO
import ReelStore
import Testing

@testable import ReelPipeline

@Suite("Run state")
struct RunStateTests {
  @Test("kept under the catalog keys and texts earlier versions wrote, so their killed runs resume")
  func catalogKeys() throws {
    let root = NSTemporaryDirectory() + "/reel-run-state-\(UUID().uuidString)"
    defer { try? FileManager.default.removeItem(atPath: root) }
    let catalog = try Store.initialize(StoreLayout(root: root)).store.catalog
    let run = try catalog.beginPipelineRun(
      pipeline: "nightly", file: "nightly.yaml", definitionSHA256: "", stages: [("cut", "cut")])
    let state = try RunState(catalog: catalog, runID: run.id)
    try state.setCutPoint(.seq(42), volume: "db")
    try state.setCutPoint(.nothingToCut, volume: "web")
    try state.setVerified(archiveID: "7f3a")
    try state.setScratchStore("/srv/reel/drill/run-3")
    try state.setLatestRehydrated(40, volume: "db")
    #expect(
      try catalog.pipelineValues(runID: run.id) == [
        "cut.db": "42", "cut.web": "none", "verified.7f3a": "ok", "drill.scratch": "/srv/reel/drill/run-3",
        "drill.latest.db": "40",
      ])
    let resumed = try RunState(catalog: catalog, runID: run.id)
    #expect(resumed.cutPoint(volume: "db") == .seq(42))
    #expect(resumed.cutPoint(volume: "web") == .nothingToCut)
    #expect(resumed.cutPoint(volume: "mail") == nil)
    #expect(resumed.isVerified(archiveID: "7f3a") && !resumed.isVerified(archiveID: "0000"))
    #expect(resumed.scratchStore == "/srv/reel/drill/run-3")
    #expect(resumed.latestRehydrated(volume: "db") == 40 && resumed.latestRehydrated(volume: "web") == nil)
  }
}
