/// The version of Reel; written into archives so a reader knows what made them.
public enum ReelVersion {
  public static let current = "0.1.0"
}
