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

/// The sim task's scripted demonstration (SimWorld): reach the target block with the named arm, touch
/// it with the gripper closing, retreat, go home. A new random task per episode.
public struct TaskDemonstration: LeaderDemonstration {
    public var simTask: SimTask
    public var script: ScriptedDemonstration

    public init(grippers: GripperConstants, seed: UInt64, rateHz: Double = 50) {
        simTask = SimTask(world: SimWorld(grippers: grippers), seed: seed)
        script = ScriptedDemonstration.touch(task: simTask, rateHz: rateHz)
    }

    public var task: String { simTask.instruction }
    public func leaderTargets(atSeconds seconds: Double) -> [Double] { script.leaderTargets(at: seconds) }
}

/// Minimum-jerk move of the leaders from one pose to another (between episodes: back to the start).
public struct HomingDemonstration: LeaderDemonstration {
    public var from: [Double]
    public var to: [Double]
    public var seconds: Double
    public var task: String { "return to the start pose" }

    public init(from: [Double], to: [Double], seconds: Double) {
        self.from = from
        self.to = to
        self.seconds = max(seconds, 1e-3)
    }

    public func leaderTargets(atSeconds t: Double) -> [Double] {
        let u = min(max(t / seconds, 0), 1)
        let s = u * u * u * (10 - 15 * u + 6 * u * u)
        return zip(from, to).map { $0 + ($1 - $0) * s }
    }
}

/// Moves the simulated leader servos' shafts along a demonstration, as hands would (torque off).
final class SimulatedLeaderHands: @unchecked Sendable {
    private let puppet: LeaderPuppet
    private let demonstration = Mutex<(any LeaderDemonstration, UInt64)?>(nil)
    private let stopping = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)

    init(puppet: LeaderPuppet) { self.puppet = puppet }

    /// Starts playing `demo` now (replacing any previous one); nil lets the leaders rest where they are.
    func play(_ demo: (any LeaderDemonstration)?) {
        demonstration.withLock { $0 = demo.map { ($0, MonotonicClock.nowNanos()) } }
    }

    func start() {
        let thread = Thread { [self] in
            while !stopping.load(ordering: .acquiring) {
                if let (demo, origin) = demonstration.withLock({ $0 }) {
                    puppet.apply(leader: demo.leaderTargets(atSeconds: Double(MonotonicClock.nowNanos() - origin) / 1e9))
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
}
