import Foundation
import ReelCore
import ReelJournal

/// A Reel store folder: catalog, volumes and their journals.
public struct Store: Sendable {
  public let layout: StoreLayout
  public let catalog: Catalog

  /// Creates the store folder and its catalog; an existing store is opened unchanged.
  public static func initialize(_ layout: StoreLayout) throws -> (store: Store, created: Bool) {
    let existed = layout.isInitialized
    if !existed, FileManager.default.fileExists(atPath: layout.root) {
      let contents = (try? FileManager.default.contentsOfDirectory(atPath: layout.root)) ?? []
      guard contents.isEmpty else {
        throw ReelError(
          .alreadyExists, "\(layout.root) exists and is not an empty folder or a Reel store",
          remedy: "choose another --store path, or empty the folder")
      }
    }
    try Durable.makeDirectory(layout.volumesDirectory)
    let catalog = try Catalog(path: layout.catalogPath)
    if !existed {
      try catalog.setStoreInfo([
        "store_id": UUID().uuidString.lowercased(),
        "created": Timestamp.now().rfc3339,
        "catalog_schema": String(Catalog.schemaVersion),
      ])
      try Durable.syncDirectory(layout.root)
    }
    return (Store(layout: layout, catalog: catalog), !existed)
  }

  public static func open(_ layout: StoreLayout) throws -> Store {
    try layout.requireInitialized()
    return Store(layout: layout, catalog: try Catalog(path: layout.catalogPath))
  }
}
