// Simulated world API (issue #5), glue between joint vectors and the simulated servos:
//   LeaderPuppet(robot:calibration:simulator:)   apply(leader:) moves every LEADER servo's shaft
//       (primary and shadow, torque off) to the 14-D leader joint vector, as a hand on the leader arm
//   SimulatedJointReader(robot:calibration:simulator:role:)   read() -> 14-D joints of that role,
//       straight from the simulated servos (what a camera of the simulated world looks at)
// Joint ↔ tick conversion is the calibration file's (Calibration/README).
import Foundation

public enum SimWorldError: Error, Sendable, Equatable, CustomStringConvertible {
    case missingBus(role: BusRole, arm: ArmSide)
    case missingCalibration(bus: String, id: UInt8)
    case missingSimulatedBus(String)

    public var description: String {
        switch self {
        case let .missingBus(role, arm): "the robot config has no \(role.rawValue) bus for the \(arm.rawValue) arm"
        case let .missingCalibration(bus, id): "the calibration file has no entry for servo \(id) on bus \(bus)"
        case let .missingSimulatedBus(name): "the simulator has no bus named \(name)"
        }
    }
}

/// Servo ids and calibrations of one role's two buses in 14-D order.
struct ArmServoMap: Sendable {
    struct Entry: Sendable {
        var bus: SimulatedBus
        var id: UInt8
        var calibration: ServoCalibration
        /// Index into the 14-D vector.
        var joint: Int
        var primary: Bool
    }
    var entries: [Entry]

    init(robot: RobotConfig, calibration: CalibrationFile, simulator: SimulatedRobot,
         role: BusRole) throws(SimWorldError) {
        var entries: [Entry] = []
        for (armIndex, arm) in ArmSide.allCases.enumerated() {
            guard let bus = robot.buses.first(where: { $0.role == role && $0.arm == arm }) else {
                throw .missingBus(role: role, arm: arm)
            }
            guard let sim = simulator.bus(bus.name) else { throw .missingSimulatedBus(bus.name) }
            for servo in bus.servos {
                guard let jointIndex = robot.joints.firstIndex(where: { $0.name == servo.joint }) else { continue }
                guard let calib = calibration.servo(bus: bus.name, id: servo.id) else {
                    throw .missingCalibration(bus: bus.name, id: servo.id)
                }
                entries.append(Entry(bus: sim, id: servo.id, calibration: calib,
                                     joint: armIndex * robot.joints.count + jointIndex,
                                     primary: servo.shadowOf == nil))
            }
        }
        self.entries = entries
    }
}

public final class LeaderPuppet: Sendable {
    private let map: ArmServoMap

    public init(robot: RobotConfig, calibration: CalibrationFile, simulator: SimulatedRobot) throws(SimWorldError) {
        map = try ArmServoMap(robot: robot, calibration: calibration, simulator: simulator, role: .leader)
    }

    /// Sets every leader shaft (shadows too, each through its own calibration) to the joint vector.
    public func apply(leader joints: [Double]) {
        for e in map.entries where e.joint < joints.count {
            e.bus.moveShaft(id: e.id, to: e.calibration.ticks(radians: joints[e.joint]))
        }
    }
}

public final class SimulatedJointReader: Sendable {
    private let map: ArmServoMap
    private let count: Int

    public init(robot: RobotConfig, calibration: CalibrationFile, simulator: SimulatedRobot,
                role: BusRole = .follower) throws(SimWorldError) {
        map = try ArmServoMap(robot: robot, calibration: calibration, simulator: simulator, role: role)
        count = 2 * robot.joints.count
    }

    /// Present positions of the primary servos in radians, 14-D order.
    public func read() -> [Double] {
        var out = [Double](repeating: 0, count: count)
        for e in map.entries where e.primary && e.joint < count {
            if let ticks = e.bus.withServo(id: e.id, { $0.position }) {
                out[e.joint] = e.calibration.radians(ticks: Int32(ticks.rounded()))
            }
        }
        return out
    }
}
