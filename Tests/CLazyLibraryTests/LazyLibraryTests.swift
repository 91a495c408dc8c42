import CLazyLibrary
import Foundation
import Testing

/// A table as a wrapper target's REEL_LAZY_LIBRARY makes it, at a fixed address (it holds
/// a mutex), for `soname` and the functions `names`. Sendable as the C table is: its loader
/// locks.
private final class LazyTable: @unchecked Sendable {
  let table = UnsafeMutablePointer<reel_lazy_library>.allocate(capacity: 1)
  let names: UnsafeMutablePointer<UnsafePointer<CChar>?>
  let slots: UnsafeMutablePointer<UnsafeMutableRawPointer?>
  private let strings: [UnsafeMutablePointer<CChar>]

  init(soname: String, package: String, names functionNames: [String]) {
    strings = ([soname, package] + functionNames).map { strdup($0)! }
    names = .allocate(capacity: max(functionNames.count, 1))
    for index in functionNames.indices { names[index] = UnsafePointer(strings[2 + index]) }
    slots = .allocate(capacity: max(functionNames.count, 1))
    slots.initialize(repeating: nil, count: max(functionNames.count, 1))
    table.initialize(to: reel_lazy_library())
    table.pointee.soname = UnsafePointer(strings[0])
    table.pointee.package = UnsafePointer(strings[1])
    table.pointee.names = UnsafePointer(names)
    table.pointee.slots = slots
    table.pointee.count = functionNames.count
    pthread_mutex_init(&table.pointee.lock, nil)
  }

  deinit {
    pthread_mutex_destroy(&table.pointee.lock)
    table.deallocate()
    names.deallocate()
    slots.deallocate()
    strings.forEach { free($0) }
  }

  /// nil when loaded, else the message.
  func load() -> String? { reel_lazy_library_load(table).map { String(cString: $0) } }
}

@Suite struct LazyLibraryTests {
  @Test func resolvesEveryFunctionOnceAndCallsThroughThem() throws {
    let libc = LazyTable(soname: "libc.so.6", package: "libc6", names: ["getpid", "getppid"])
    #expect(libc.load() == nil)
    let getpidAddress = try #require(libc.slots[0])
    let getppidAddress = try #require(libc.slots[1])
    typealias NoArguments = @convention(c) () -> pid_t
    #expect(unsafeBitCast(getpidAddress, to: NoArguments.self)() == getpid())
    #expect(unsafeBitCast(getppidAddress, to: NoArguments.self)() == getppid())
    #expect(libc.table.pointee.state == 1)
    // Loaded: the next call does nothing and says so.
    libc.slots[0] = nil
    #expect(libc.load() == nil)
    #expect(libc.slots[0] == nil)
  }

  @Test func aMissingLibraryNamesItAndThePackageAndStaysMissing() {
    let absent = LazyTable(soname: "libreel-absent.so.9", package: "reel-absent-package", names: ["getpid"])
    let message = absent.load()
    #expect(message?.contains("libreel-absent.so.9") == true)
    #expect(message?.contains("install the package reel-absent-package") == true)
    #expect(absent.slots[0] == nil)
    #expect(absent.load() == message)
    #expect(absent.table.pointee.state == -1)
  }

  @Test func aMissingFunctionIsNamed() {
    let libc = LazyTable(soname: "libc.so.6", package: "libc6", names: ["getpid", "reel_no_such_function"])
    let message = libc.load()
    #expect(message?.contains("has no function reel_no_such_function") == true)
    #expect(message?.contains("libc6") == true)
    #expect(libc.table.pointee.state == -1)
  }

  @Test func threadsLoadingAtOnceAllSeeItReady() {
    let libc = LazyTable(soname: "libm.so.6", package: "libc6", names: ["cos", "sin"])
    let results = LockedResults()
    DispatchQueue.concurrentPerform(iterations: 8) { _ in results.append(libc.load()) }
    #expect(results.values.count == 8)
    #expect(results.values.allSatisfy { $0 == nil })
    #expect(libc.slots[0] != nil && libc.slots[1] != nil)
  }
}

private final class LockedResults: @unchecked Sendable {
  private let lock = NSLock()
  private var stored: [String?] = []
  func append(_ value: String?) { lock.withLock { stored.append(value) } }
  var values: [String?] { lock.withLock { stored } }
}
