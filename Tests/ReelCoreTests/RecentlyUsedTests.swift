import ReelCore
import Testing

struct RecentlyUsedTests {
  @Test func theLeastRecentlyUsedGoesBeyondCapacity() {
    var cache = RecentlyUsed<String, Int>(capacity: 2)
    cache.insert(1, for: "a")
    cache.insert(2, for: "b")
    #expect(cache.value(for: "a") == 1)  // "b" is now the least recently used
    cache.insert(3, for: "c")
    #expect(cache.value(for: "b") == nil)
    #expect(cache.value(for: "a") == 1)
    #expect(cache.value(for: "c") == 3)
    cache.insert(4, for: "a")  // replacing keeps the count
    #expect(cache.value(for: "a") == 4)
    #expect(cache.value(for: "c") == 3)
  }
}
