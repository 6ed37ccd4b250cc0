import Foundation
import Testing
import TendonHardware

/// `tendon calibrate` as a process: one line on stderr on failure, answers from --script or stdin.
@Suite(.serialized, .enabled(if: tendonExecutable != nil, "the tendon executable is not built next to the tests"))
struct CalibrateCommandLineTests {
    /// Runs `tendon` with `input` on its standard input (then end of input).
    func tendon(_ arguments: [String], input: String = "") throws -> ProcessResult {
        let process = Process()
        process.executableURL = tendonExecutable
        process.arguments = arguments
        process.currentDirectoryURL = repositoryRoot
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        stdin.fileHandleForWriting.write(Data(input.utf8))
        try stdin.fileHandleForWriting.close()
        let out = stdout.fileHandleForReading.readDataToEndOfFile()
        let err = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return ProcessResult(status: process.terminationStatus, stdout: String(decoding: out, as: UTF8.self),
                             stderr: String(decoding: err, as: UTF8.self))
    }

    @Test func proceduresRunAsCommandsOnTheSimulator() throws {
        let fixture = try CalibrateFixture()
        let robot = fixture.configPath
        let script = fixture.directory.appendingPathComponent("answers.txt").path
        try "\n".write(toFile: script, atomically: true, encoding: .utf8)
        let before = try fixture.file()

        let homing = try tendon(["calibrate", "homing", "--robot", robot, "--sim", "--bus", "leader_left", "--script", script])
        #expect(homing.status == 0, "\(homing.stderr)")
        #expect(homing.stdout.contains("wrote \(fixture.calibrationPath)"))
        #expect(try fixture.file().updated != before.updated)

        let scan = try tendon(["calibrate", "scan", "--robot", robot, "--sim", "--bus", "follower_left", "--rates", "1000000"])
        #expect(scan.status == 0, "\(scan.stderr)")
        #expect(scan.stdout.split(separator: "\n").filter { $0.hasPrefix("follower_left") }.count == 9)

        let verify = try tendon(["calibrate", "verify", "--robot", robot, "--sim", "--yes", "--bus", "leader_right"])
        #expect(verify.status == 0, "\(verify.stderr)")
        #expect(verify.stdout.contains("pass") && !verify.stdout.contains("FAIL"))
    }

    @Test func refusalsAreOneLine() throws {
        let fixture = try CalibrateFixture()
        let robot = fixture.configPath
        // No answer on stdin: the id is not changed.
        let setID = try tendon(["calibrate", "set-id", "--robot", robot, "--sim", "--bus", "follower_left",
                                "--id", "9", "--new-id", "20"])
        #expect(setID.status != 0)
        #expect(setID.stderr.split(separator: "\n").count == 1, "\(setID.stderr)")
        #expect(setID.stderr.contains("--yes"))
        // "n" on stdin: refused.
        let declined = try tendon(["calibrate", "set-baud", "--robot", robot, "--sim", "--bus", "follower_left",
                                   "--id", "9", "--baud", "57600"], input: "n\n")
        #expect(declined.status != 0)
        #expect(declined.stderr.contains("not confirmed"), "\(declined.stderr)")
        let ranges = try tendon(["calibrate", "ranges", "--robot", robot, "--sim", "--yes"])
        #expect(ranges.status != 0)
        #expect(ranges.stderr.contains("--seconds"), "\(ranges.stderr)")
        // Standard input that ends (no Enter will come) does not record forever.
        let noEnter = try tendon(["calibrate", "ranges", "--robot", robot, "--sim", "--bus", "leader_left"])
        #expect(noEnter.status != 0)
        #expect(noEnter.stderr.contains("standard input ended"), "\(noEnter.stderr)")
        let unknownBus = try tendon(["calibrate", "homing", "--robot", robot, "--sim", "--yes", "--bus", "arm_3"])
        #expect(unknownBus.stderr.split(separator: "\n").count == 1)
        #expect(unknownBus.stderr.contains("arm_3"))
        let help = try tendon(["calibrate", "--help"])
        #expect(help.status == 0)
        for sub in ["scan", "set-id", "set-baud", "homing", "ranges", "gripper", "verify"] {
            #expect(help.stdout.contains(sub))
        }
        let rangesHelp = try tendon(["calibrate", "ranges", "--help"])
        #expect(rangesHelp.stdout.contains("--seconds") && rangesHelp.stdout.contains("--script"))
    }
}
