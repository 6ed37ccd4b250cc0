import Foundation
import Testing
@testable import TendonHardware

/// Repository root, found from this file so tests run from any working directory.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
let alohaConfigPath = repositoryRoot.appendingPathComponent("Configs/robots/aloha.yaml").path

@Suite struct RobotConfigTests {
    @Test func alohaConfigLoadsAndDescribesTheRobot() throws {
        let config = try RobotConfig.load(path: alohaConfigPath)
        #expect(config.buses.map(\.name) == ["follower_left", "follower_right", "leader_left", "leader_right"])
        #expect(config.followerBuses.map(\.arm) == [.left, .right])
        #expect(config.controlFrequencyHz == 50)
        #expect(config.servoRateHz % config.controlFrequencyHz == 0)
        #expect(config.joints.map(\.name) == ["waist", "shoulder", "elbow", "forearm_roll", "wrist_angle",
                                              "wrist_rotate", "gripper"])
        for bus in config.buses {
            #expect(bus.servos.map(\.id) == Array(1...9))
            #expect(bus.baudRate == 1_000_000)
        }
        let follower = try #require(config.bus(named: "follower_left"))
        #expect(follower.servos.filter { $0.model == "XM540-W270" }.count == 7)
        #expect(follower.servos.filter { $0.model == "XM430-W350" }.count == 2)
        #expect(follower.primaryServo(forJoint: "gripper")?.mode == .currentBasedPosition)
        #expect(follower.servos.filter { $0.shadowOf != nil }.map(\.id) == [3, 5])
        let leader = try #require(config.bus(named: "leader_right"))
        #expect(Set(leader.servos.map(\.model)) == ["XM430-W350", "XL430-W250", "XC430-W150"])
        #expect(config.calibrationPath.hasSuffix("Calibration/aloha-sim.yaml"))
        #expect(config.grippers.normalizeLeader(config.grippers.leaderOpen) == 1)
        #expect(abs(config.grippers.followerJoint(normalized: 0) - config.grippers.followerClosed) < 1e-12)
    }

    /// Replaces one line of the real config and returns the loader's error.
    private func errorFor(replacing old: String, with new: String) throws -> ConfigError? {
        let text = try String(contentsOfFile: alohaConfigPath, encoding: .utf8)
        #expect(text.contains(old), "fixture line not found: \(old)")
        let edited = text.replacingOccurrences(of: old, with: new)
        do {
            _ = try RobotConfig.parse(ConfigNode.parse(edited, file: "aloha.yaml"))
            return nil
        } catch {
            return error
        }
    }

    private func lineNumber(of needle: String) throws -> Int {
        let text = try String(contentsOfFile: alohaConfigPath, encoding: .utf8)
        let lines = text.components(separatedBy: "\n")
        return try #require(lines.firstIndex { $0.contains(needle) }) + 1
    }

    @Test func badValueNamesFileLineAndKey() throws {
        let error = try #require(try errorFor(replacing: "servo_rate_hz: 200", with: "servo_rate_hz: 175"))
        #expect(error.line == (try lineNumber(of: "servo_rate_hz: 200")))
        #expect(error.key == "servo_rate_hz")
        #expect(error.description.hasPrefix("aloha.yaml:\(error.line!): servo_rate_hz:"))
        #expect(error.message.contains("multiple"))
    }

    @Test func unknownModelIsRejectedAtItsLine() throws {
        let old = "{id: 8, joint: wrist_rotate, model: XM430-W350, mode: position}"
        let error = try #require(try errorFor(replacing: old, with: old.replacingOccurrences(of: "XM430-W350", with: "XM999")))
        #expect(error.line == (try lineNumber(of: old)))
        #expect(error.key == "buses.follower_left.servos[7].model")
        #expect(error.message.contains("XM999"))
    }

    @Test func typoInKeyIsNotIgnored() throws {
        let error = try #require(try errorFor(replacing: "  priority: 80", with: "  prority: 80"))
        #expect(error.key == "realtime.prority")
        #expect(error.message.contains("unknown key"))
    }

    @Test func wrongTypesAndRangesAreReported() throws {
        let notNumber = try #require(try errorFor(replacing: "control_frequency_hz: 50", with: "control_frequency_hz: fast"))
        #expect(notNumber.message.contains("integer"))
        let inverted = try #require(try errorFor(
            replacing: "{name: elbow,        min: -1.76, max: 1.60",
            with: "{name: elbow,        min: 1.76, max: 1.60"))
        #expect(inverted.key == "joints[2].max")
        let duplicate = try #require(try errorFor(
            replacing: "{id: 7, joint: wrist_angle,  model: XM540-W270", with: "{id: 6, joint: wrist_angle,  model: XM540-W270"))
        #expect(duplicate.message.contains("used twice"))
        let badMode = try #require(try errorFor(
            replacing: "model: XM430-W350, mode: current_based_position", with: "model: XM430-W350, mode: torque"))
        #expect(badMode.message.contains("current_based_position"))
        let noBaud = try #require(try errorFor(replacing: "    baud_rate: 1000000\n    servos: &follower", with: "    baud_rate: 1234\n    servos: &follower"))
        #expect(noBaud.key == "buses.follower_left.baud_rate")
    }

    @Test func yamlSyntaxErrorHasALine() throws {
        let error = try #require(try errorFor(replacing: "robot_tag: aloha", with: "robot_tag: [aloha"))
        #expect(error.line != nil)
    }

    @Test func missingKeyIsNamed() throws {
        let error = try #require(try errorFor(replacing: "control_frequency_hz: 50 ", with: "# removed "))
        #expect(error.message.contains("control_frequency_hz"))
    }
}

@Suite struct CalibrationTests {
    @Test func simulatorCalibrationCoversEveryServo() throws {
        let config = try RobotConfig.load(path: alohaConfigPath)
        let calibration = try CalibrationFile.load(path: config.calibrationPath)
        try calibration.validate(against: config)
        let shadow = try #require(calibration.servo(bus: "follower_left", id: 3))
        #expect(shadow.direction == -1)
    }

    @Test func ticksAndRadiansRoundTrip() {
        let servo = ServoCalibration(id: 1, homingOffset: 37, direction: -1, rangeMin: 100, rangeMax: 4000)
        for ticks in stride(from: Int32(0), through: 4095, by: 7) {
            #expect(servo.ticks(radians: servo.radians(ticks: ticks)) == ticks)
        }
        #expect(servo.radians(ticks: 2048 + 37) == 0)
        // One quarter turn against the direction.
        #expect(abs(servo.radians(ticks: 2048 + 37 - 1024) - .pi / 2) < 1e-12)
        #expect(servo.radianRange.lowerBound < servo.radianRange.upperBound)
    }

    @Test func missingCalibrationSaysWhatToRun() {
        #expect {
            _ = try CalibrationFile.load(path: "/nonexistent/robot.yaml")
        } throws: { error in
            (error as? ConfigError)?.message.contains("tendon calibrate homing") == true
        }
    }

    @Test func calibrationForAnotherRobotOrMissingServoIsRefused() throws {
        let config = try RobotConfig.load(path: alohaConfigPath)
        var calibration = try CalibrationFile.load(path: config.calibrationPath)
        calibration.robotID = "other"
        #expect(throws: ConfigError.self) { try calibration.validate(against: config) }
        calibration.robotID = config.robotID
        calibration.buses["leader_left"]?.removeAll { $0.id == 9 }
        #expect { try calibration.validate(against: config) } throws: { error in
            (error as? ConfigError)?.message.contains("servo 9") == true
        }
    }

    @Test func implausibleRangeIsRefused() throws {
        let text = """
        schema_version: 1
        robot_id: r
        created: x
        updated: x
        buses:
          b:
            - {id: 1, homing_offset: 0, direction: 1, range_min: 2000, range_max: 2001}
        """
        #expect { _ = try CalibrationFile.parse(ConfigNode.parse(text, file: "c.yaml")) } throws: { error in
            (error as? ConfigError)?.line == 7
        }
    }

    @Test func writtenYamlReadsBack() throws {
        let config = try RobotConfig.load(path: alohaConfigPath)
        let calibration = try CalibrationFile.load(path: config.calibrationPath)
        let again = try CalibrationFile.parse(ConfigNode.parse(calibration.yaml(), file: "round.yaml"))
        #expect(again.buses == calibration.buses)
    }
}
