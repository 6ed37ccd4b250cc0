import Foundation
import Logging
import TendonControl
import TendonHardware

/// `tendon calibrate verify`: followers go through the normal start-up path (verify, limits, start pose,
/// torque on without a jump) and each joint makes a small slow move and back, present compared with
/// commanded; leaders are read and checked against their calibrated ranges. Primary and shadow servos
/// must agree on the joint angle (a wrong offset makes them fight). Followers keep torque on afterwards
/// (an ALOHA arm without torque falls).
public enum CalibrationVerifier {
    public struct Row: Sendable, Equatable {
        public var bus: String
        public var item: String
        public var detail: String
        public var pass: Bool
    }

    public struct Options: Sendable {
        /// Size of the test move (rad).
        public var step: Double = 0.05
        /// Largest accepted |present − commanded| and primary/shadow disagreement (rad).
        public var tolerance: Double = 0.03
        /// Profile Velocity during the moves (0.229 rev/min units; 20 ≈ 0.48 rad/s).
        public var profileVelocity: Int64 = 20
        public var settleTimeoutSeconds: Double = 3
        public init() {}
    }

    public static func run(ports: CalibrationPorts, buses: [BusConfig], console: CalibrationConsole,
                           options: Options = Options(), logger: Logger = Logger(label: "tendon.calibrate")) throws(CalibrationError) -> [Row] {
        var robot = ports.robot
        let calibration: CalibrationFile
        do {
            calibration = try CalibrationFile.load(path: robot.calibrationPath)
            try calibration.validate(against: robot)
        } catch {
            throw CalibrationError(error.description)
        }
        robot.grippers = calibration.gripperConstants(robot: robot)
        var rows: [Row] = []
        for config in buses where config.role == .follower {
            rows += verifyFollower(config, robot: robot, calibration: calibration, ports: ports, options: options, logger: logger)
        }
        for config in buses where config.role == .leader {
            rows += verifyLeader(config, calibration: calibration, ports: ports, options: options)
        }
        var table = [["bus", "check", "result", "detail"]]
        for r in rows { table.append([r.bus, r.item, r.pass ? "pass" : "FAIL", r.detail]) }
        console.write(formatTable(table))
        let failed = rows.filter { !$0.pass }
        if !failed.isEmpty {
            throw CalibrationError("verify failed: " + failed.map { "bus \($0.bus) \($0.item): \($0.detail)" }.joined(separator: "; "))
        }
        return rows
    }

    static func rad(_ x: Double) -> String { String(format: "%.3f", x) }

    /// Each shadow against its primary, at rest.
    static func shadowRows(bus: String, servos: [(config: ServoConfig, calibration: ServoCalibration, ticks: Int32)],
                           tolerance: Double) -> [Row] {
        var rows: [Row] = []
        for shadow in servos {
            guard let primaryID = shadow.config.shadowOf,
                  let primary = servos.first(where: { $0.config.id == primaryID }) else { continue }
            let a = primary.calibration.radians(ticks: primary.ticks), b = shadow.calibration.radians(ticks: shadow.ticks)
            let ok = abs(a - b) <= tolerance
            rows.append(Row(bus: bus, item: "\(shadow.config.joint) shadow \(shadow.config.id)",
                            detail: ok ? "agrees with servo \(primaryID) (\(rad(b)) vs \(rad(a)) rad)"
                                : "reads \(rad(b)) rad, servo \(primaryID) reads \(rad(a)) rad: offset wrong; run `tendon calibrate homing`",
                            pass: ok))
        }
        return rows
    }

    static func verifyFollower(_ config: BusConfig, robot: RobotConfig, calibration: CalibrationFile,
                               ports: CalibrationPorts, options: Options, logger: Logger) -> [Row] {
        let session: ServoBusSession
        do {
            session = try ServoBusSession.open(config: config, path: try ports.path(of: config), robot: robot,
                                               calibration: calibration,
                                               busConfiguration: DynamixelBus.Configuration(retries: 3, latencyMarginNanos: 20_000_000),
                                               logger: logger)
        } catch {
            return [Row(bus: config.name, item: "start-up", detail: "\(error)", pass: false)]
        }
        defer { session.close() }
        var rows: [Row] = [Row(bus: config.name, item: "start-up", detail: "\(session.servos.count) servos verified", pass: true)]
        let shadows = shadowRows(bus: config.name,
                                 servos: session.servos.map { ($0.config, $0.calibration, $0.presentTicks) },
                                 tolerance: options.tolerance)
        rows += shadows
        // Fighting servos must not get torque.
        guard shadows.allSatisfy(\.pass) else { return rows }
        let limits: SafetyLimits
        do throws(StartupError) {
            limits = try RobotRunner.jointLimits(robot: robot, sessions: [session])
            try RobotRunner.checkStartPose(robot: robot, sessions: [session], limits: limits)
            try RobotRunner.enableTorque(robot: robot, sessions: [session])
        } catch {
            rows.append(Row(bus: config.name, item: "torque on", detail: error.description, pass: false))
            return rows
        }
        let bus = session.bus
        for servo in session.servos {
            _ = try? bus.write(servo.config.id, address: 112, value: options.profileVelocity, size: 4)
        }
        for (j, joint) in robot.joints.enumerated() {
            let members = session.servos.filter { $0.jointIndex == j }
            guard let primary = members.first(where: { $0.config.shadowOf == nil }) else { continue }
            let start = primary.calibration.radians(ticks: primary.presentTicks)
            // Towards the middle of the joint's limits, so the move stays inside them.
            let middle = (limits.minPosition[j] + limits.maxPosition[j]) / 2
            let target = min(max(start + (start <= middle ? options.step : -options.step), limits.minPosition[j]), limits.maxPosition[j])
            let result = move(members, to: target, bus: bus, options: options)
            _ = move(members, to: start, bus: bus, options: options)
            switch result {
            case .success(let worst):
                let ok = worst.error <= options.tolerance
                rows.append(Row(bus: config.name, item: "\(joint.name) move",
                                detail: "commanded \(rad(target)) rad, servo \(worst.id) at \(rad(worst.present)) rad (error \(rad(worst.error)))",
                                pass: ok))
            case .failure(let message):
                rows.append(Row(bus: config.name, item: "\(joint.name) move", detail: message.description, pass: false))
            }
        }
        for servo in session.servos {
            _ = try? bus.write(servo.config.id, address: 112, value: 0, size: 4)
        }
        return rows
    }

    /// Commands every servo of one joint to `target` and waits for them; the worst servo's error.
    static func move(_ members: [ServoBusSession.Servo], to target: Double, bus: DynamixelBus,
                     options: Options) -> Result<(id: UInt8, present: Double, error: Double), CalibrationError> {
        for servo in members {
            let ticks = min(max(servo.calibration.ticks(radians: target), servo.commandTicks.lowerBound), servo.commandTicks.upperBound)
            do {
                try bus.write(servo.config.id, address: 116, value: Int64(ticks), size: 4)
            } catch {
                return .failure(CalibrationError("servo \(servo.config.id): writing Goal Position failed: \(error)"))
            }
        }
        let deadline = MonotonicClock.nowNanos() + UInt64(options.settleTimeoutSeconds * 1e9)
        while true {
            var worst: (id: UInt8, present: Double, error: Double) = (0, 0, -1)
            for servo in members {
                let ticks: Int32
                do {
                    ticks = try bus.presentTicks(servo.config.id)
                } catch {
                    return .failure(CalibrationError("servo \(servo.config.id): reading Present Position failed: \(error)"))
                }
                let q = servo.calibration.radians(ticks: ticks)
                if abs(q - target) > worst.error { worst = (servo.config.id, q, abs(q - target)) }
            }
            if worst.error <= options.tolerance / 3 || MonotonicClock.nowNanos() >= deadline { return .success(worst) }
            usleep(20_000)
        }
    }

    static func verifyLeader(_ config: BusConfig, calibration: CalibrationFile, ports: CalibrationPorts,
                             options: Options) -> [Row] {
        let bus: DynamixelBus
        do {
            bus = try ports.openBus(config)
        } catch {
            return [Row(bus: config.name, item: "open", detail: error.description, pass: false)]
        }
        defer { bus.transport.close() }
        var rows: [Row] = []
        var read: [(config: ServoConfig, calibration: ServoCalibration, ticks: Int32)] = []
        let tolerance = Int32(RangeCheck.homeToleranceTicks)
        for servo in config.servos {
            guard let c = calibration.servo(bus: config.name, id: servo.id) else { continue }
            let ticks: Int32
            do {
                ticks = try bus.presentTicks(servo.id)
            } catch {
                rows.append(Row(bus: config.name, item: "\(servo.joint) servo \(servo.id)", detail: "does not answer: \(error)", pass: false))
                continue
            }
            read.append((servo, c, ticks))
            let inside = ticks >= Int32(c.rangeMin) - tolerance && ticks <= Int32(c.rangeMax) + tolerance
            rows.append(Row(bus: config.name, item: "\(servo.joint) servo \(servo.id)",
                            detail: inside ? "at \(ticks) ticks (\(rad(c.radians(ticks: ticks))) rad), inside \(c.rangeMin)…\(c.rangeMax)"
                                : "at \(ticks) ticks, outside the calibrated range \(c.rangeMin)…\(c.rangeMax); run `tendon calibrate ranges`",
                            pass: inside))
        }
        return rows + shadowRows(bus: config.name, servos: read, tolerance: options.tolerance)
    }
}
