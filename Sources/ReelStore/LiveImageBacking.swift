import Foundation
import ReelCore
import ReelIO

/// The seq a lazy live image reads what it has not been written from (`live.state`
/// format 2, docs/capture.md "Lazy live image"). `reel serve` writes it; prune keeps the
/// volume's history from it on, or the image would lose the bytes it has not copied.
package enum LiveImageBacking {
  package static func seq(of name: String, layout: StoreLayout) -> Seq? {
    guard let data = FileManager.default.contents(atPath: layout.volumeDirectory(name) + "/live.state"),
      let state = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
      state["formatVersion"] as? Int == 2,
      let backing = state["backing"] as? [String: Any],
      let seq = backing["seq"] as? Int, seq >= 0
    else { return nil }
    return Seq(seq)
  }
}
