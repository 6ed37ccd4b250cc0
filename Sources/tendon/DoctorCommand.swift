import ArgumentParser
import TendonService

struct DoctorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Report real-time privileges, kernel, OpenBLAS kernel choice and serial adapters.")

    func run() throws {
        for line in SystemDiagnostics.collect().lines { print(line) }
    }
}
