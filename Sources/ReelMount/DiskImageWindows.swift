import ReelCore
import ReelStore

/// Recently read stretches of `disk.img` files. The kernel asks for 128 KiB at a time and
/// every `VolumeView` read costs a catalog transaction, so a read that misses loads a
/// whole window from there on and the next requests of a sequential reader (`cp`, `cmp`,
/// `dd`) are answered from memory. A few windows are kept, the most recently used.
final class DiskImageWindows: Sendable {
  static let windowBytes = 2 << 20

  private struct Window {
    var point: PointID
    var start: UInt64
    var bytes: [UInt8]

    func covers(_ point: PointID, _ range: Range<UInt64>) -> Bool {
      self.point == point && range.lowerBound >= start && range.upperBound <= start + UInt64(bytes.count)
    }
  }

  private let windows = Locked<[Window]>([])
  private let capacity: Int

  init(capacity: Int = 4) {
    self.capacity = capacity
  }

  /// Up to `length` bytes at `offset` of the point's volume (fewer at its end).
  func read(_ point: PointID, _ view: VolumeView, offset: UInt64, length: Int) throws -> [UInt8] {
    guard offset < view.size else { return [] }
    let end = min(view.size, offset + UInt64(length))
    guard end - offset < UInt64(Self.windowBytes) else {
      return try view.read(offset: offset, length: Int(end - offset))
    }
    if let bytes = cached(point, offset..<end) { return bytes }
    let windowEnd = min(view.size, offset + UInt64(Self.windowBytes))
    let window = Window(
      point: point, start: offset, bytes: try view.read(offset: offset, length: Int(windowEnd - offset)))
    windows.withLock { windows in
      windows.append(window)
      if windows.count > capacity { windows.removeFirst() }
    }
    return Array(window.bytes[0..<Int(end - offset)])
  }

  private func cached(_ point: PointID, _ range: Range<UInt64>) -> [UInt8]? {
    windows.withLock { windows in
      guard let index = windows.lastIndex(where: { $0.covers(point, range) }) else { return nil }
      let window = windows.remove(at: index)
      windows.append(window)
      return Array(window.bytes[Int(range.lowerBound - window.start)..<Int(range.upperBound - window.start)])
    }
  }
}
