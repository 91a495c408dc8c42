/// The version of Reel; written into archives so a reader knows what made them.
package enum ReelVersion {
  package static let current = "0.1.0"
}
