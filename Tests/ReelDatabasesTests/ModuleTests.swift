import Testing

@testable import ReelDatabases

@Suite struct ModuleTests {
  @Test func moduleBuilds() {
    #expect(Bool(true))
  }
}
