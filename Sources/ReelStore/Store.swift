import Foundation
import ReelCore
import ReelIO

/// A Reel store folder: catalog, volumes and their journals.
package struct Store: Sendable {
  package let layout: StoreLayout
  package let catalog: Catalog

  /// Creates the store folder and its catalog; an existing store is opened unchanged.
  package static func initialize(_ layout: StoreLayout) throws -> (store: Store, created: Bool) {
    let existed = layout.isInitialized
    if !existed, FileManager.default.fileExists(atPath: layout.root) {
      let contents = (try? FileManager.default.contentsOfDirectory(atPath: layout.root)) ?? []
      // An init killed before its catalog existed leaves only an empty volumes folder.
      let halfMade =
        contents == [(layout.volumesDirectory as NSString).lastPathComponent]
        && ((try? FileManager.default.contentsOfDirectory(atPath: layout.volumesDirectory)) ?? ["?"]).isEmpty
      guard contents.isEmpty || halfMade else {
        throw ReelError(
          .alreadyExists, "\(layout.root) exists and is not an empty folder or a Reel store",
          remedy: "choose another --store path, or empty the folder")
      }
    }
    try Durable.makeDirectory(layout.volumesDirectory)
    // A folder the user made for the store (and that held nothing) becomes private too.
    if !existed { chmod(layout.root, 0o700) }
    let catalog = try Catalog(path: layout.catalogPath)
    try PrivateScratch.use(layout)
    if try !existed || catalog.storeInfo()["store_id"] == nil {
      try catalog.setStoreInfo([
        "store_id": UUID().uuidString.lowercased(),
        "created": Timestamp.now().rfc3339,
        "catalog_schema": String(Catalog.schemaVersion),
      ])
      try Durable.syncDirectory(layout.root)
    }
    return (Store(layout: layout, catalog: catalog), !existed)
  }

  package static func open(_ layout: StoreLayout) throws -> Store {
    try layout.requireInitialized()
    let store = Store(layout: layout, catalog: try Catalog(path: layout.catalogPath))
    try PrivateScratch.use(layout)
    return store
  }
}
