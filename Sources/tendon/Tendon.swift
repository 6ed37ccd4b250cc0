import ArgumentParser
import Foundation
import Logging
import Synchronization
import Glibc

@main
struct Tendon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tendon",
        abstract: "Run a VLA policy on an ALOHA-class dual-arm robot, and the tools around it.",
        subcommands: [
            RunCommand.self,
            SimCommand.self,
            DoctorCommand.self,
            BenchCommand.self,
            TokenizeCommand.self,
            ForwardCommand.self,
            ActCommand.self,
            CalibrateCommand.self,
            RecordCommand.self,
            ReplayCommand.self,
        ])

    /// DESIGN §5: success exits 0; failure exits non-zero with one line on standard error (no usage dump;
    /// `--help` documents every command).
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

/// Set by SIGINT/SIGTERM; long-running commands poll it and stop cleanly.
let stopRequested = Atomic<Bool>(false)

func installStopSignals() {
    _ = stopRequested.load(ordering: .relaxed)  // initialise the global before a handler can touch it
    for sig in [SIGINT, SIGTERM] {
        signal(sig) { _ in stopRequested.store(true, ordering: .relaxed) }
    }
}

/// Logs go to standard output (journald in the service); standard error gets the one-line reason a
/// command failed, and nothing else.
func makeLogger(_ label: String, verbose: Bool) -> Logger {
    var logger = Logger(label: label) { StreamLogHandler.standardOutput(label: $0) }
    logger.logLevel = verbose ? .debug : .info
    return logger
}

/// Prints the one line and exits non-zero.
func fail(_ message: String, code: Int32 = 1) -> Never {
    FileHandle.standardError.write(Data(("tendon: " + message + "\n").utf8))
    exit(code)
}
