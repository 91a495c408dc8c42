import ArgumentParser
import ReelIO
import ReelStore

struct Init: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Create a store folder with its catalog (an existing store is left as it is).")

  @OptionGroup var options: StoreOption

  func run() throws {
    let layout = StoreLayout.resolve(options.store)
    let (store, created) = try Store.initialize(layout)
    let info = try store.catalog.storeInfo()
    say(
      created
        ? "Created Reel store \(info["store_id"] ?? "?") at \(layout.root)"
        : "Reel store \(info["store_id"] ?? "?") already exists at \(layout.root); nothing changed")
  }
}
