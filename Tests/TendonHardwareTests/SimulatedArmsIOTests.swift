import Foundation
import Testing
@testable import TendonHardware

@Suite struct SimulatedArmsIOTests {
    /// The ALOHA config on simulated buses (as TendonService's SimulatedAloha builds it), unpaced.
    private func simulator(_ robot: RobotConfig, _ calibration: CalibrationFile) throws -> SimulatedRobot {
        let buses = robot.buses.map { bus in
            SimulatedBusConfig(name: bus.name, baudRate: bus.baudRate, servos: bus.servos.map { servo in
                let c = calibration.servo(bus: bus.name, id: servo.id)
                return SimulatedServoConfig(id: servo.id, model: servo.model, operatingMode: servo.mode.rawValue,
                                            initialPosition: c?.ticks(radians: 0) ?? 2048,
                                            minPositionLimit: c.map { Int32($0.rangeMin) },
                                            maxPositionLimit: c.map { Int32($0.rangeMax) }, returnDelayTime: 0)
            })
        }
        return try SimulatedRobot(config: SimulatedRobotConfig(buses: buses, pacing: false))
    }

    /// Plays a scripted demonstration into the simulated leader servos by hand (moveShaft), reads the
    /// leaders back through their calibration, and drives the success detector with what teleoperation
    /// would send the followers: the demo reaches success through the real servo/calibration path.
    @Test func scriptedDemoThroughTheLeaderServosSucceeds() throws {
        let robot = try RobotConfig.load(path: alohaConfigPath)
        let calibration = try CalibrationFile.load(path: robot.calibrationPath)
        let sim = try simulator(robot, calibration)
        defer { sim.stop() }
        let puppet = try LeaderPuppet(robot: robot, calibration: calibration, simulator: sim)
        let leaders = try SimulatedJointReader(robot: robot, calibration: calibration, simulator: sim, role: .leader)

        let world = SimWorld(grippers: robot.grippers)
        var task = SimTask(world: world, seed: 11)
        let demo = ScriptedDemonstration.touch(task: task, rateHz: Double(robot.controlFrequencyHz))
        var worst = 0.0
        var success = false
        for sample in demo.samples {
            puppet.apply(leader: sample.leader)
            let read = leaders.read()
            worst = max(worst, zip(read, sample.leader).map { abs($0 - $1) }.max() ?? .infinity)
            success = task.update(jointPositions: ScriptedDemonstration.followerJoints(leader: read, grippers: robot.grippers),
                                  time: sample.time)
        }
        #expect(worst <= 0.5 * 2 * .pi / 4096 + 1e-9, "largest leader read-back error \(worst) rad")
        #expect(success, "\(task.instruction)")

        // Shadow servos follow their primary through their own (reversed) calibration.
        let shoulder = demo.samples[demo.samples.count / 2].leader[task.arm == .left ? 1 : 8]
        puppet.apply(leader: demo.samples[demo.samples.count / 2].leader)
        let busName = task.arm == .left ? "leader_left" : "leader_right"
        let shadowTicks = try #require(sim.bus(busName)?.withServo(id: 3) { $0.position })
        let shadowCal = try #require(calibration.servo(bus: busName, id: 3))
        #expect(abs(shadowCal.radians(ticks: Int32(shadowTicks)) - shoulder) < 0.002)
    }

    @Test func missingCalibrationIsNamed() throws {
        let robot = try RobotConfig.load(path: alohaConfigPath)
        var calibration = try CalibrationFile.load(path: robot.calibrationPath)
        let sim = try simulator(robot, calibration)
        defer { sim.stop() }
        calibration.buses["leader_right"] = calibration.buses["leader_right"]?.filter { $0.id != 9 }
        #expect(throws: SimWorldError.missingCalibration(bus: "leader_right", id: 9)) {
            _ = try LeaderPuppet(robot: robot, calibration: calibration, simulator: sim)
        }
    }
}
