import ArgumentParser
import Foundation
import Glibc

@main
struct TendonTrain: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tendon-train",
        abstract: "Offline tools for Tendon models (DESIGN §5).",
        subcommands: [ConvertCommand.self])

    /// DESIGN §5: success exits 0; failure exits non-zero with one line on standard error (no usage dump;
    /// `--help` documents every command). Same shape as `tendon`'s entry point.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Glibc.exit(0)
            }
            let message = message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            fail(message.hasPrefix("Error: ") ? String(message.dropFirst(7)) : message, code: code.rawValue)
        }
    }
}

/// Prints the one line and exits non-zero (standard error carries nothing else).
func fail(_ message: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data(("tendon-train: " + message + "\n").utf8))
    exit(code)
}
