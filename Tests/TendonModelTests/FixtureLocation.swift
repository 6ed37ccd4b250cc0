import Foundation

/// Tests/Fixtures, found from this file so tests run from any working directory.
let fixturesDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures")
