import Testing

@testable import ReelArchive
