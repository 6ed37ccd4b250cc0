import Foundation
import Logging
import Synchronization
import TendonControl
import TendonData
import TendonHardware

/// Where `tendon run` finds its buses.
public enum PortSource: Sendable, Equatable {
    /// Start the simulated robot in this process.
    case simulator
    /// A ports file written by `tendon sim` (`{"buses":{name:path}}`).
    case portsJSON(String)
    /// The device paths in the robot config (a real robot).
    case config
}

public struct RunOptions: Sendable {
    public var robotPath: String
    public var ports: PortSource
    public var policy: MotionPolicyKind
    /// nil: until `shouldStop` says so (a signal).
    public var durationSeconds: Double?
    public var reportPath: String?
    /// After a fault the healthy joints hold this long before the loop stops.
    public var holdSecondsAfterFault: Double
    /// Consecutive missed replies before a servo is declared unresponsive.
    public var missLimit: Int32
    public var interpolation: InterpolationMode
    /// Overrides the config's `realtime.lock_memory` (tests run many loops in one process).
    public var lockMemory: Bool?
    /// Replay policies: stop this long after the last waypoint instead of waiting for the duration.
    public var stopAfterReplaySeconds: Double?

    public init(robotPath: String, ports: PortSource, policy: MotionPolicyKind = .hold,
                durationSeconds: Double? = nil, reportPath: String? = nil, holdSecondsAfterFault: Double = 1.0,
                missLimit: Int32 = 10, interpolation: InterpolationMode = .cubic, lockMemory: Bool? = nil) {
        self.lockMemory = lockMemory
        self.robotPath = robotPath
        self.ports = ports
        self.policy = policy
        self.durationSeconds = durationSeconds
        self.reportPath = reportPath
        self.holdSecondsAfterFault = holdSecondsAfterFault
        self.missLimit = missLimit
        self.interpolation = interpolation
    }
}

/// `tendon run`: opens and verifies the follower buses, enables torque without a jump, runs the real-time
/// loop with a motion policy feeding it trajectories, watches for faults, and writes the report.
///
/// Fault policy: the loop holds every joint at its last safe command as soon as a read fails (a servo
/// stops answering, a bus disappears, a hardware-error alert); the runner logs one line naming the bus
/// and servo, lets the healthy joints hold for `holdSecondsAfterFault`, then stops the loop. Torque is left
/// on, so position-mode servos keep holding their last goal: an ALOHA arm with torque off falls onto the
/// table. The report says what happened; the exit code is non-zero.
public final class RobotRunner {
    public let options: RunOptions
    public let logger: Logger
    private let shouldStop: @Sendable () -> Bool

    /// Reply margin on top of wire time: generous for start-up and diagnostics, tight inside the loop.
    static let startupLatencyMarginNanos: UInt64 = 20_000_000
    static let loopLatencyMarginNanos: UInt64 = 1_500_000

    public init(options: RunOptions, logger: Logger, shouldStop: @escaping @Sendable () -> Bool = { false }) {
        self.options = options
        self.logger = logger
        self.shouldStop = shouldStop
    }

    /// Runs to the end and returns the report (also written to `reportPath`). Start-up refusals come back
    /// as a report with exit code 2 and the reason in `exit`.
    public func run() -> RunReport {
        var report = RunReport(robot: options.robotPath, policy: options.policy.description, durationSeconds: 0,
                               controlFrequencyHz: 0, servoRateHz: 0, loop: nil, buses: [:], faults: [],
                               exit: "ok", exitCode: 0)
        var simulator: SimulatedRobot?
        var sessions: [ServoBusSession] = []
        defer {
            sessions.forEach { $0.close() }
            simulator?.stop()
        }
        do {
            var robot = try loadRobot()
            report.robot = robot.robotID
            report.controlFrequencyHz = robot.controlFrequencyHz
            report.servoRateHz = robot.servoRateHz
            let calibration = try loadCalibration(robot)
            // Measured gripper endpoints (`tendon calibrate gripper`) replace the config's defaults.
            robot.grippers = calibration.gripperConstants(robot: robot)
            let ports: [String: String]
            switch options.ports {
            case .simulator:
                let sim = try startSimulator(robot: robot, calibration: calibration)
                simulator = sim
                ports = sim.ports
            case .portsJSON(let path):
                ports = try Self.readPortsFile(path)
            case .config:
                ports = Dictionary(uniqueKeysWithValues: robot.buses.map { ($0.name, $0.device) })
            }
            for bus in robot.followerBuses {
                guard let path = ports[bus.name] else {
                    throw StartupError("bus \(bus.name): no device path (ports: \(ports.keys.sorted().joined(separator: ", ")))")
                }
                // Start-up transactions are not time-critical: a generous margin, so a busy host never
                // turns a slow reply into a refused start. The loop tightens it (see runLoop).
                let configuration = DynamixelBus.Configuration(retries: 3, latencyMarginNanos: Self.startupLatencyMarginNanos)
                sessions.append(try ServoBusSession.open(config: bus, path: path, robot: robot,
                                                         calibration: calibration,
                                                         busConfiguration: configuration, logger: logger))
            }
            guard !sessions.isEmpty else { throw StartupError("\(robot.file): no follower buses to drive") }
            let limits = try Self.jointLimits(robot: robot, sessions: sessions)
            try Self.checkStartPose(robot: robot, sessions: sessions, limits: limits)
            try Self.enableTorque(robot: robot, sessions: sessions)
            try runLoop(robot: robot, sessions: sessions, limits: limits, report: &report)
        } catch let error as StartupError {
            report.exit = error.description
            report.exitCode = 2
            logger.error("\(error.description)")
        } catch {
            report.exit = "\(error)"
            report.exitCode = 2
            logger.error("\(error)")
        }
        for session in sessions {
            let s = session.bus.statistics
            var entry = RunReport.Bus(device: session.path, reads: UInt64(s.transactions), writes: 0,
                                      timeouts: UInt64(s.timeouts), corruptPackets: UInt64(s.corruptPackets),
                                      retries: UInt64(s.retries), servoErrors: UInt64(s.servoErrors),
                                      unresponsiveServos: [])
            if let old = report.buses[session.config.name] { entry.unresponsiveServos = old.unresponsiveServos }
            report.buses[session.config.name] = entry
        }
        if let path = options.reportPath {
            do { try report.write(to: path) } catch {
                logger.error("cannot write report \(path): \(error)")
                if report.exitCode == 0 { report.exitCode = 1 }
            }
        }
        return report
    }

    // MARK: - Start-up

    private func loadRobot() throws(StartupError) -> RobotConfig {
        do { return try RobotConfig.load(path: options.robotPath) } catch { throw StartupError(error.description) }
    }

    private func loadCalibration(_ robot: RobotConfig) throws(StartupError) -> CalibrationFile {
        do {
            let calibration = try CalibrationFile.load(path: robot.calibrationPath)
            try calibration.validate(against: robot)
            return calibration
        } catch {
            throw StartupError(error.description)
        }
    }

    private func startSimulator(robot: RobotConfig, calibration: CalibrationFile) throws(StartupError) -> SimulatedRobot {
        do {
            let sim = try SimulatedRobot(config: SimulatedAloha.configuration(robot: robot, calibration: calibration))
            try sim.start()
            logger.info("simulated robot started: \(sim.ports.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))")
            return sim
        } catch {
            throw StartupError("simulator: \(error)")
        }
    }

    public static func readPortsFile(_ path: String) throws(StartupError) -> [String: String] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw StartupError("\(path): cannot read the ports file (is `tendon sim` running?)")
        }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
              let buses = object["buses"] as? [String: String] else {
            throw StartupError("\(path): expected {\"buses\":{name:path}}")
        }
        return buses
    }

    /// Per logical joint: config limits ∩ every servo's calibrated range and limit registers (primary and
    /// shadows), velocity limited by the servos' Velocity Limit registers too.
    static func jointLimits(robot: RobotConfig, sessions: [ServoBusSession]) throws(StartupError) -> SafetyLimits {
        var lo: [Double] = [], hi: [Double] = [], v: [Double] = [], a: [Double] = []
        for session in sessions {
            for (j, joint) in robot.joints.enumerated() {
                var low = joint.min, high = joint.max, velocity = joint.maxVelocity
                for servo in session.servos where servo.jointIndex == j {
                    let c = servo.calibration
                    let e1 = c.radians(ticks: servo.commandTicks.lowerBound)
                    let e2 = c.radians(ticks: servo.commandTicks.upperBound)
                    low = max(low, min(e1, e2))
                    high = min(high, max(e1, e2))
                    if let rv = servo.registerMaxVelocity { velocity = min(velocity, rv) }
                }
                guard low < high else {
                    throw StartupError("bus \(session.config.name) joint \(joint.name): config limits, calibrated ranges and limit registers leave no range of motion")
                }
                lo.append(low); hi.append(high); v.append(velocity); a.append(joint.maxAcceleration)
            }
        }
        do {
            return try SafetyLimits(minPosition: lo, maxPosition: hi, maxVelocity: v, maxAcceleration: a)
        } catch {
            throw StartupError(error.description)
        }
    }

    /// A joint found well outside its limits is not moved: the technician must bring it back by hand.
    static func checkStartPose(robot: RobotConfig, sessions: [ServoBusSession], limits: SafetyLimits,
                               tolerance: Double = 0.05) throws(StartupError) {
        for (b, session) in sessions.enumerated() {
            for servo in session.servos where servo.config.shadowOf == nil {
                let j = b * robot.joints.count + servo.jointIndex
                let q = servo.calibration.radians(ticks: servo.presentTicks)
                if q < limits.minPosition[j] - tolerance || q > limits.maxPosition[j] + tolerance {
                    throw StartupError(String(format: "bus %@ servo %d (%@) is at %.3f rad, outside its limits %.3f…%.3f; move it into range with torque off",
                                              session.config.name, Int(servo.config.id), servo.config.joint, q,
                                              limits.minPosition[j], limits.maxPosition[j]))
                }
            }
        }
    }

    /// Goal = present position first, no profile (the loop interpolates), gripper current capped, then
    /// torque on: the arms do not move when torque comes on.
    static func enableTorque(robot: RobotConfig, sessions: [ServoBusSession]) throws(StartupError) {
        for session in sessions {
            for servo in session.servos {
                let name = "bus \(session.config.name) servo \(servo.config.id) (\(servo.config.joint))"
                func write(_ r: DynamixelRegisterName, _ value: Int64) throws(StartupError) {
                    guard let reg = servo.model.register(r) else { return }
                    do {
                        try session.bus.write(servo.config.id, address: reg.address, value: value, size: reg.size)
                    } catch {
                        throw StartupError("\(name): writing \(r.rawValue) = \(value) failed: \(error)")
                    }
                }
                try write(.profileAcceleration, 0)
                try write(.profileVelocity, 0)
                if servo.config.mode == .currentBasedPosition || servo.config.mode == .current {
                    guard let unit = servo.model.currentMilliampsPerUnit else {
                        throw StartupError("\(name): \(servo.model.name) has no current control for \(servo.config.mode.configName) mode")
                    }
                    let limit = min(robot.grippers.followerCurrentLimitMilliamps,
                                    servo.registerCurrentLimitMilliamps ?? .infinity)
                    try write(.goalCurrent, Int64((limit / unit).rounded(.down)))
                }
                let goal = min(max(servo.presentTicks, servo.commandTicks.lowerBound), servo.commandTicks.upperBound)
                try write(.goalPosition, Int64(goal))
                try write(.torqueEnable, 1)
            }
        }
    }

    // MARK: - The loop

    private func runLoop(robot: RobotConfig, sessions: [ServoBusSession], limits: SafetyLimits,
                         report: inout RunReport) throws {
        // In the loop a reply later than wire time + 1.5 ms is counted missing (the next cycle asks again);
        // the cycle must fit its 5 ms period.
        for session in sessions { session.bus.configuration.latencyMarginNanos = Self.loopLatencyMarginNanos }
        let io = try DynamixelArmsIO(sessions: sessions, jointsPerArm: robot.joints.count, missLimit: options.missLimit)
        let period = UInt64(1_000_000_000 / robot.servoRateHz)
        var replay: ReplayFile?
        if case .replay(let path) = options.policy {
            if path.hasSuffix(".hdf5") {
                replay = try ReplayFile.episode(path: path, joints: io.jointCount)
            } else {
                do { replay = try ReplayFile.load(path: path, joints: io.jointCount) } catch { throw StartupError(error.description) }
            }
        }
        let maxWaypoints = max(256, (replay?.seconds.count ?? 0) + 2)
        let loop: ControlLoop<DynamixelArmsIO>
        do {
            loop = try ControlLoop(io: io, limits: limits, periodNanos: period, maxWaypoints: maxWaypoints)
        } catch { throw StartupError(error.description) }
        let thread = RealtimeThread(config: RealtimeConfig(periodNanos: period, priority: Int32(robot.realtime.priority),
                                                           cpu: robot.realtime.cpu,
                                                           lockMemory: options.lockMemory ?? robot.realtime.lockMemory))
        let warnings: [String]
        do { warnings = try thread.start(loop) } catch { throw StartupError(error.description) }
        for warning in warnings { logger.warning("\(warning)") }
        let started = MonotonicClock.nowNanos()
        logger.info("real-time loop running at \(robot.servoRateHz) Hz on \(sessions.count) follower buses, policy \(options.policy)")

        let driver = PolicyDriver(kind: options.policy, replay: replay, robot: robot, limits: limits,
                                  mailbox: loop.mailbox, ring: loop.stateRing, mode: options.interpolation,
                                  logger: logger)
        driver.start()

        var fault: CycleFault?
        while true {
            if let f = loop.fault { fault = f; break }
            let elapsed = Double(MonotonicClock.nowNanos() - started) / 1e9
            if let d = options.durationSeconds, elapsed >= d { break }
            if shouldStop() { break }
            if let settle = options.stopAfterReplaySeconds, let end = driver.replayEndNanos,
               MonotonicClock.nowNanos() > end + UInt64(settle * 1e9) { break }
            if let message = driver.failure {
                report.faults.append(message)
                report.exit = message
                report.exitCode = 1
                break
            }
            usleep(5_000)
        }
        var faultMessage: String?
        if let fault {
            let message = describe(fault, sessions: sessions, robot: robot, report: &report)
            faultMessage = message
            logger.error("\(message)")
            report.faults.append(message)
            // The loop is already holding every joint at its last safe command; give the healthy ones a
            // moment of steady hold before stopping, unless the whole bus set is gone.
            let allLost = (0..<sessions.count).allSatisfy { io.isLost(bus: $0) }
            if !allLost { usleep(UInt32(options.holdSecondsAfterFault * 1e6)) }
        }
        driver.stop()
        let realtime = thread.stop()
        report.durationSeconds = Double(MonotonicClock.nowNanos() - started) / 1e9
        if let realtime { report.loop = RunReport.Loop(realtime) }
        if let faultMessage {
            if case .deviceError = fault?.kind { report.faults.append(contentsOf: hardwareErrorDetails(fault!, sessions: sessions)) }
            report.exit = faultMessage
            report.exitCode = 1
        }
        logger.info("loop stopped after \(realtime?.cycles ?? 0) cycles, \(realtime?.overruns ?? 0) overruns; \(report.exit)")
    }

    private func describe(_ fault: CycleFault, sessions: [ServoBusSession], robot: RobotConfig,
                          report: inout RunReport) -> String {
        let (b, id) = DynamixelArmsIO.decode(faultCode: fault.code)
        guard b >= 0, b < sessions.count else { return "control loop fault: \(fault)" }
        let session = sessions[b]
        let servo = id.flatMap { id in session.servos.first { $0.config.id == id } }
        let servoName = servo.map { "servo \($0.config.id) (\($0.config.joint))" } ?? "servo \(id.map(String.init) ?? "?")"
        switch fault.kind {
        case .deviceLost:
            return "bus \(session.config.name) (\(session.path)) disappeared: the serial device is gone; stopping"
        case .timeout:
            if let id {
                report.buses[session.config.name, default: RunReport.Bus(device: session.path, reads: 0, writes: 0, timeouts: 0, corruptPackets: 0, retries: 0, servoErrors: 0, unresponsiveServos: [])]
                    .unresponsiveServos.append(Int(id))
            }
            return "bus \(session.config.name) \(servoName) stopped answering (\(options.missLimit) missed replies); holding the other joints, then stopping"
        case .deviceError:
            return "bus \(session.config.name) \(servoName) raised a hardware error alert; holding, then stopping"
        default:
            return "bus \(session.config.name): control loop fault \(fault)"
        }
    }

    /// After the loop stopped the bus is ours again: name the hardware error bits.
    private func hardwareErrorDetails(_ fault: CycleFault, sessions: [ServoBusSession]) -> [String] {
        let (b, id) = DynamixelArmsIO.decode(faultCode: fault.code)
        guard b < sessions.count, let id, let servo = sessions[b].servos.first(where: { $0.config.id == id }),
              let reg = servo.model.register(.hardwareErrorStatus) else { return [] }
        // Not time-critical any more: the generous start-up margin again.
        sessions[b].bus.configuration.latencyMarginNanos = Self.startupLatencyMarginNanos
        do {
            let bits = try sessions[b].bus.read1(id, address: reg.address)
            return ["bus \(sessions[b].config.name) servo \(id) Hardware Error Status: \(DynamixelHardwareErrorStatus(rawValue: bits))"]
        } catch {
            return []
        }
    }
}

extension RunReport.Loop {
    init(_ r: RealtimeReport) {
        self.init(periodMicros: Int(r.periodMicros.rounded()),
                  wakeLatencyMicros: .init(p50: r.wakeLatency.p50Micros, p99: r.wakeLatency.p99Micros, max: r.wakeLatency.maxMicros),
                  cycleMicros: .init(p50: r.cycleDuration.p50Micros, p99: r.cycleDuration.p99Micros, max: r.cycleDuration.maxMicros),
                  overruns: r.overruns, missedPeriods: r.missedPeriods, cycles: r.cycles,
                  schedulingPolicy: r.policy.rawValue, priority: Int(r.priority), cpu: r.cpu,
                  memoryLocked: r.memoryLocked, wakeLatencyHistogram: r.wakeHistogram, warnings: r.warnings)
    }
}
