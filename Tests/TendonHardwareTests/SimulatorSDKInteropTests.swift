import Foundation
import Testing
import TendonHardware

/// Runs Tools/reference/sim_interop.py (ROBOTIS dynamixel-sdk through pyserial) against a simulated
/// ALOHA arm bus, so the simulator is judged by the vendor's client rather than by our own codec.
/// Skipped where the SDK is not installed (the build never needs Python).
@Suite struct SimulatorSDKInteropTests {
    static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Tools/reference/sim_interop.py").path

    static let sdkAvailable: Bool = {
        let (status, _) = run(["python3", "-c", "import dynamixel_sdk"], timeout: 30)
        return status == 0
    }()

    /// Runs a command, returning its exit status and combined output; kills it after `timeout` seconds.
    static func run(_ arguments: [String], timeout: TimeInterval) -> (Int32, String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { return (-1, "cannot start \(arguments): \(error)") }
        let watchdog = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        watchdog.cancel()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    @Test(.enabled(if: SimulatorSDKInteropTests.sdkAvailable, "python3 with dynamixel_sdk is not installed"))
    func dynamixelSDKDrivesTheSimulatedArm() throws {
        let bus = alohaBus(name: "arm", positions: { 1500 + 100 * Int32($0) })
        let robot = try SimulatedRobot(config: SimulatedRobotConfig(buses: [bus], pacing: true))
        try robot.start()
        defer { robot.stop() }
        let models = bus.servos.map { s in
            "\(s.id):\(DynamixelModel.named(s.model)?.modelNumber ?? 0)"
        }.joined(separator: ",")
        let (status, output) = Self.run(["python3", Self.script, "--port", robot.buses[0].devicePath,
                                         "--models", models], timeout: 60)
        #expect(status == 0, "sim_interop.py failed:\n\(output)")
        #expect(output.contains("0 failed"), "\(output)")
    }
}
