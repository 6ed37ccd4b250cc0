import Foundation
import Synchronization
import TendonHardware

/// Leader joint targets over time (14-D, leader joint radians, grippers in leader units): what a person
/// does with the leader arms. With `--sim` one plays on the simulated leaders so episodes carry motion.
public protocol LeaderDemonstration: Sendable {
    /// The episode's instruction (becomes the task text).
    var task: String { get }
    /// Leader pose `seconds` after the start of the episode.
    func leaderTargets(atSeconds seconds: Double) -> [Double]
}

/// A smooth reach-and-squeeze around a start pose: `1 − cos` offsets (zero velocity at the start) on the
/// arm joints and one gripper closing and opening. Used when no task demonstration is available.
public struct ReachDemonstration: LeaderDemonstration {
    public var task: String
    public var start: [Double]
    public var amplitudes: [Double]
    public var periodSeconds: Double
    public var grippers: GripperConstants
    public var gripperJoints: [Int]

    public init(task: String, start: [Double], grippers: GripperConstants, gripperJoints: [Int], seed: UInt64,
                amplitude: Double = 0.25, periodSeconds: Double = 3) {
        self.task = task
        self.start = start
        self.grippers = grippers
        self.gripperJoints = gripperJoints
        self.periodSeconds = periodSeconds
        var state = seed &+ 0x9E37_79B9_7F4A_7C15
        amplitudes = start.indices.map { _ in
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let u = Double(state >> 11) / Double(1 << 53)
            return amplitude * (u * 2 - 1)
        }
    }

    public func leaderTargets(atSeconds seconds: Double) -> [Double] {
        let phase = 1 - cos(2 * .pi * max(seconds, 0) / periodSeconds)
        var q = zip(start, amplitudes).map { $0 + $1 * phase / 2 }
        for j in gripperJoints where j < q.count {
            // Open → closed → open once a period, in leader units.
            q[j] = grippers.leaderOpen + (grippers.leaderClosed - grippers.leaderOpen) * phase / 2
        }
        return q
    }
}

/// Moves the simulated leader servos' shafts along a demonstration, as hands would (torque off).
final class SimulatedLeaderHands: @unchecked Sendable {
    private let simulator: SimulatedRobot
    private let robot: RobotConfig
    private let calibration: CalibrationFile
    private let demonstration = Mutex<(any LeaderDemonstration, UInt64)?>(nil)
    private let stopping = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)

    init(simulator: SimulatedRobot, robot: RobotConfig, calibration: CalibrationFile) {
        self.simulator = simulator
        self.robot = robot
        self.calibration = calibration
    }

    /// Starts playing `demo` now (replacing any previous one); nil lets the leaders rest where they are.
    func play(_ demo: (any LeaderDemonstration)?) {
        demonstration.withLock { $0 = demo.map { ($0, MonotonicClock.nowNanos()) } }
    }

    func start() {
        let thread = Thread { [self] in
            while !stopping.load(ordering: .acquiring) {
                if let (demo, origin) = demonstration.withLock({ $0 }) {
                    let t = Double(MonotonicClock.nowNanos() - origin) / 1e9
                    move(to: demo.leaderTargets(atSeconds: t))
                }
                usleep(5_000)
            }
            finished.store(true, ordering: .releasing)
        }
        thread.name = "tendon-sim-hands"
        thread.start()
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        while !finished.load(ordering: .acquiring) { usleep(1_000) }
    }

    private func move(to q: [Double]) {
        let perArm = robot.joints.count
        for (arm, bus) in robot.leaderBuses.enumerated() {
            guard let simBus = simulator.bus(bus.name) else { continue }
            for servo in bus.servos {
                guard let j = robot.joints.firstIndex(where: { $0.name == servo.joint }),
                      arm * perArm + j < q.count,
                      let c = calibration.servo(bus: bus.name, id: servo.id) else { continue }
                simBus.moveShaft(id: servo.id, to: c.ticks(radians: q[arm * perArm + j]))
            }
        }
    }
}
