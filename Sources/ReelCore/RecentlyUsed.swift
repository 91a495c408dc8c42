/// Values by key, the least recently used dropped beyond `capacity`. Lookups, inserts and
/// evictions take constant time: entries sit in a list ordered by use, linked through
/// their indices in `nodes`. (Eviction used to scan every entry for the oldest; with the
/// store's 256-chunk cache that scan was 23% of an ingest of random 4 KiB writes.)
package struct RecentlyUsed<Key: Hashable & Sendable, Value: Sendable>: Sendable {
  private struct Node: Sendable {
    var key: Key
    var value: Value
    /// Neighbours in order of use, `none` at either end.
    var newer: Int
    var older: Int
  }

  private static var none: Int { -1 }

  private var nodes: [Node] = []
  private var index: [Key: Int] = [:]
  private var newest = RecentlyUsed.none
  private var oldest = RecentlyUsed.none
  package let capacity: Int

  /// At least 1: a cache that keeps nothing would hand back nothing it was just given.
  package init(capacity: Int) { self.capacity = max(1, capacity) }

  package var count: Int { nodes.count }

  package mutating func value(for key: Key) -> Value? {
    guard let slot = index[key] else { return nil }
    moveToFront(slot)
    return nodes[slot].value
  }

  package mutating func insert(_ value: Value, for key: Key) {
    if let slot = index[key] {
      nodes[slot].value = value
      moveToFront(slot)
      return
    }
    let slot: Int
    if nodes.count < capacity {
      slot = nodes.count
      nodes.append(Node(key: key, value: value, newer: Self.none, older: Self.none))
    } else {
      // The oldest entry's slot takes the new one.
      slot = oldest
      unlink(slot)
      index[nodes[slot].key] = nil
      nodes[slot].key = key
      nodes[slot].value = value
    }
    index[key] = slot
    linkAtFront(slot)
  }

  private mutating func moveToFront(_ slot: Int) {
    guard slot != newest else { return }
    unlink(slot)
    linkAtFront(slot)
  }

  private mutating func unlink(_ slot: Int) {
    let newer = nodes[slot].newer
    let older = nodes[slot].older
    if newer == Self.none { newest = older } else { nodes[newer].older = older }
    if older == Self.none { oldest = newer } else { nodes[older].newer = newer }
    nodes[slot].newer = Self.none
    nodes[slot].older = Self.none
  }

  private mutating func linkAtFront(_ slot: Int) {
    nodes[slot].older = newest
    nodes[slot].newer = Self.none
    if newest != Self.none { nodes[newest].newer = slot }
    newest = slot
    if oldest == Self.none { oldest = slot }
  }
}
