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

extension RecentlyUsedTests {
  /// Thousands of random lookups and inserts against a plain list ordered by use: the
  /// same values are found, the same are gone, and the count never passes the capacity.
  @Test(arguments: [1, 3, 16])
  func randomUseMatchesAListOrderedByUse(capacity: Int) {
    var cache = RecentlyUsed<Int, Int>(capacity: capacity)
    var model: [(key: Int, value: Int)] = []  // most recently used last
    var generator = SystemRandomNumberGenerator()
    for step in 0..<5000 {
      let key = Int.random(in: 0..<(capacity * 3), using: &generator)
      if Bool.random(using: &generator) {
        cache.insert(step, for: key)
        model.removeAll { $0.key == key }
        model.append((key, step))
        if model.count > capacity { model.removeFirst() }
      } else {
        let expected = model.firstIndex { $0.key == key }.map { model.remove(at: $0) }
        if let expected { model.append(expected) }
        #expect(cache.value(for: key) == expected?.value, "step \(step), key \(key)")
      }
      #expect(cache.count == model.count)
    }
  }
}
