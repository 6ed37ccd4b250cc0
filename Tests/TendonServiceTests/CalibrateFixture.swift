import Foundation
import TendonHardware
@testable import TendonService

/// A copy of the ALOHA config in a temporary directory whose `calibration:` points at a temporary file
/// (a copy of the simulator's, or none), and an in-process simulator for it, unpaced so tests are quick.
final class CalibrateFixture {
    let directory: URL
    let configPath: String
    let calibrationPath: String
    var robot: RobotConfig
    private(set) var ports: CalibrationPorts?
    /// What the technician's answers would be; `onPrompt` poses the simulated arms.
    var console: CalibrationConsole

    init(copyCalibration: Bool = true, script: [String]? = nil, assumeYes: Bool = false) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("tendon-calib-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        calibrationPath = directory.appendingPathComponent("aloha-sim.yaml").path
        if copyCalibration {
            try FileManager.default.copyItem(atPath: repositoryRoot.appendingPathComponent("Calibration/aloha-sim.yaml").path,
                                             toPath: calibrationPath)
        }
        let text = try String(contentsOfFile: alohaConfigPath, encoding: .utf8)
            .replacingOccurrences(of: "calibration: ../../Calibration/aloha-sim.yaml", with: "calibration: aloha-sim.yaml")
        configPath = directory.appendingPathComponent("aloha.yaml").path
        try text.write(toFile: configPath, atomically: true, encoding: .utf8)
        robot = try RobotConfig.load(path: configPath)
        console = CalibrationConsole(assumeYes: assumeYes, script: script, output: { _ in })
    }

    /// Starts the simulator (posed from the calibration file present now).
    @discardableResult
    func start() throws -> CalibrationPorts {
        let p = try CalibrationPorts.open(robot: robot, source: .simulator, pacing: false)
        ports = p
        return p
    }

    func bus(_ name: String) -> SimulatedBus? { ports?.simulator?.bus(name) }

    func present(_ bus: String, _ id: UInt8) -> Int32? {
        self.bus(bus)?.withServo(id: id) { Int32($0.value(at: 132) ?? -1) }
    }

    func file() throws -> CalibrationFile { try CalibrationFile.load(path: calibrationPath) }

    deinit {
        ports?.close()
        try? FileManager.default.removeItem(at: directory)
    }
}

/// Output collected for assertions.
final class OutputLog: @unchecked Sendable {
    var text = ""
    func append(_ s: String) { text += s }
}
