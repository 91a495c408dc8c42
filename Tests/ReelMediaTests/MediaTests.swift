import Testing

@testable import ReelMedia
