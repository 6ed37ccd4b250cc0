import Foundation
import Testing
import TendonHardware
@testable import TendonService

@Suite(.serialized) struct CalibrateFileTests {
    @Test func theFileRoundTripsWithGrippersAndOlderFilesStillLoad() throws {
        let fixture = try CalibrateFixture()
        var file = try fixture.file()
        #expect(file.grippers.isEmpty)
        file.grippers["leader_left"] = GripperCalibration(open: -0.7812, closed: -1.6123)
        file.grippers["follower_right"] = GripperCalibration(open: 1.5, closed: -0.625)
        CalibrationStore.set(ServoCalibration(id: 3, homingOffset: -17, direction: -1, rangeMin: 1100, rangeMax: 3000),
                             bus: "follower_left", in: &file)
        try CalibrationStore.save(file)
        let back = try fixture.file()
        #expect(back.buses == file.buses)
        #expect(back.grippers == file.grippers)
        #expect(back.created == file.created)
        #expect(back.robotID == "aloha-sim")
        // ISO 8601 UTC timestamps.
        #expect(back.updated.wholeMatch(of: /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ/) != nil, "\(back.updated)")
        // Ids stay sorted and the temporary file is gone.
        #expect(back.buses["follower_left"]?.map(\.id) == Array(1...9))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: fixture.directory.path).filter { $0.contains(".tmp.") }
        #expect(leftovers.isEmpty)
        try back.validate(against: fixture.robot)
    }

    @Test func theRuntimeAcceptsACalibratedFileAndUsesItsGrippers() throws {
        let fixture = try CalibrateFixture(script: [""])
        let ports = try fixture.start()
        // Homing with the followers posed a little off the encoder centres, then the runtime drives them.
        let followers = try ports.select(["follower_left", "follower_right"])
        fixture.console.onPrompt = { _ in
            for bus in followers {
                for servo in bus.servos where servo.joint != "gripper" {
                    fixture.bus(bus.name)?.moveShaft(id: servo.id, to: servo.shadowOf != nil ? 2048 - 40 : 2048 + 40)
                }
            }
        }
        try Homing.run(ports: ports, buses: followers, console: fixture.console)
        var file = try fixture.file()
        file.grippers["follower_left"] = GripperCalibration(open: 1.3, closed: -0.5)
        try CalibrationStore.save(file)
        ports.close()
        let report = RobotRunner(options: RunOptions(robotPath: fixture.configPath, ports: .simulator, policy: .hold,
                                                     durationSeconds: 0.5, lockMemory: false),
                                 logger: quietLogger()).run()
        #expect(report.exitCode == 0, "\(report.exit)")
        #expect(try fixture.file().gripperConstants(robot: fixture.robot).followerOpen == 1.3)
    }

    @Test func theRuntimeRefusesAFileThatFailsValidationNamingTheCommand() throws {
        let fixture = try CalibrateFixture()
        func run() -> RunReport {
            RobotRunner(options: RunOptions(robotPath: fixture.configPath, ports: .simulator, policy: .hold,
                                            durationSeconds: 0.2, lockMemory: false), logger: quietLogger()).run()
        }
        let original = try String(contentsOfFile: fixture.calibrationPath, encoding: .utf8)
        // A servo without an entry.
        var lines = original.components(separatedBy: "\n")
        lines.removeAll { $0.contains("{id: 5,") }
        try lines.joined(separator: "\n").write(toFile: fixture.calibrationPath, atomically: true, encoding: .utf8)
        var report = run()
        #expect(report.exitCode == 2)
        #expect(report.exit.contains("servo 5 (elbow) has no calibration; run `tendon calibrate homing"), "\(report.exit)")
        // An empty range.
        try original.replacingOccurrences(of: "{id: 2, homing_offset: 0, direction: 1, range_min: 809, range_max: 2895}",
                                          with: "{id: 2, homing_offset: 0, direction: 1, range_min: 809, range_max: 810}")
            .write(toFile: fixture.calibrationPath, atomically: true, encoding: .utf8)
        report = run()
        #expect(report.exitCode == 2)
        #expect(report.exit.contains("run `tendon calibrate ranges`"), "\(report.exit)")
        // Grippers calibrated for a bus the robot does not have.
        try (original + "grippers:\n  leader_middle: {open: 1.0, closed: 0.0}\n")
            .write(toFile: fixture.calibrationPath, atomically: true, encoding: .utf8)
        report = run()
        #expect(report.exitCode == 2)
        #expect(report.exit.contains("tendon calibrate gripper"), "\(report.exit)")
        // No file at all.
        try FileManager.default.removeItem(atPath: fixture.calibrationPath)
        report = run()
        #expect(report.exit.contains("run `tendon calibrate homing`"), "\(report.exit)")
    }

    @Test func aFileOfAnotherRobotIsNotOverwritten() throws {
        let fixture = try CalibrateFixture(assumeYes: true)
        let original = try String(contentsOfFile: fixture.calibrationPath, encoding: .utf8)
        try original.replacingOccurrences(of: "robot_id: aloha-sim", with: "robot_id: other-robot")
            .write(toFile: fixture.calibrationPath, atomically: true, encoding: .utf8)
        let ports = try fixture.start()
        let error = #expect(throws: CalibrationError.self) {
            try Homing.run(ports: ports, buses: try ports.select(["leader_left"]), console: fixture.console)
        }
        #expect(error?.description.contains("other-robot") == true)
        #expect(try String(contentsOfFile: fixture.calibrationPath, encoding: .utf8).contains("other-robot"))
    }
}
