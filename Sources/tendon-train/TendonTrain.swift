import ArgumentParser
import Foundation

@main
struct TendonTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tendon-train",
        abstract: "Offline tools for Tendon models (DESIGN §5).",
        subcommands: [ConvertCommand.self])
}

/// Prints the one line and exits non-zero (standard error carries nothing else).
func fail(_ message: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data(("tendon-train: " + message + "\n").utf8))
    exit(code)
}
