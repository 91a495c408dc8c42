/// A few values by key, the least recently used dropped beyond `capacity`. For small
/// capacities (tens): eviction scans.
package struct RecentlyUsed<Key: Hashable & Sendable, Value: Sendable>: Sendable {
  private var entries: [Key: (value: Value, used: UInt64)] = [:]
  private var clock: UInt64 = 0
  package let capacity: Int

  package init(capacity: Int) { self.capacity = capacity }

  package mutating func value(for key: Key) -> Value? {
    guard let entry = entries[key] else { return nil }
    clock += 1
    entries[key] = (entry.value, clock)
    return entry.value
  }

  package mutating func insert(_ value: Value, for key: Key) {
    clock += 1
    entries[key] = (value, clock)
    if entries.count > capacity, let oldest = entries.min(by: { $0.value.used < $1.value.used }) {
      entries[oldest.key] = nil
    }
  }
}
