import Foundation
import Logging
import Synchronization
import TendonControl
import TendonHardware

/// Feeds the real-time loop from an ordinary thread, the way inference will: trajectories published
/// ahead of time through the lock-free mailbox, each one superseding the last.
final class PolicyDriver: @unchecked Sendable {
    let kind: MotionPolicyKind
    let replay: ReplayFile?
    let robot: RobotConfig
    let limits: SafetyLimits
    let mailbox: TrajectoryMailbox
    let ring: StateRing
    let mode: InterpolationMode
    let logger: Logger
    private let stopping = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)
    private let failureText = Mutex<String?>(nil)
    private let replayEnd = Atomic<UInt64>(0)

    /// Loop-clock time of the replay's last waypoint once it is published, else nil.
    var replayEndNanos: UInt64? {
        let t = replayEnd.load(ordering: .acquiring)
        return t == 0 ? nil : t
    }

    /// Sine chunks: one second long, a new one every half second (overlapping, like asynchronous inference).
    static let publishIntervalSeconds = 0.5

    init(kind: MotionPolicyKind, replay: ReplayFile?, robot: RobotConfig, limits: SafetyLimits,
         mailbox: TrajectoryMailbox, ring: StateRing, mode: InterpolationMode, logger: Logger) {
        self.kind = kind
        self.replay = replay
        self.robot = robot
        self.limits = limits
        self.mailbox = mailbox
        self.ring = ring
        self.mode = mode
        self.logger = logger
    }

    var failure: String? { failureText.withLock { $0 } }

    func start() {
        guard kind != .hold else { finished.store(true, ordering: .releasing); return }
        let thread = Thread { [self] in
            body()
            finished.store(true, ordering: .releasing)
        }
        thread.name = "tendon-policy"
        thread.start()
    }

    func stop() {
        stopping.store(true, ordering: .releasing)
        while !finished.load(ordering: .acquiring) { usleep(1_000) }
    }

    private var shouldStop: Bool { stopping.load(ordering: .acquiring) }

    private func body() {
        // The policy starts from where the arms are: wait for the loop's first measured state.
        var start: StateSample?
        while start == nil && !shouldStop {
            start = ring.latest()
            if start == nil { usleep(2_000) }
        }
        guard let start, !shouldStop else { return }
        switch kind {
        case .hold:
            return
        case .sine:
            let sine = SinePolicy(start: start.commands,
                                  limits: (0..<limits.jointCount).map { (min: limits.minPosition[$0], max: limits.maxPosition[$0]) },
                                  controlFrequencyHz: robot.controlFrequencyHz)
            let origin = MonotonicClock.nowNanos() + 20_000_000
            let stepNanos = 1_000_000_000 / UInt64(robot.controlFrequencyHz)
            while !shouldStop {
                let now = MonotonicClock.nowNanos()
                let firstStep = now > origin ? Int((now - origin) / stepNanos) : 0
                publish(sine.chunk(originNanos: origin, firstStep: firstStep))
                sleep(seconds: Self.publishIntervalSeconds)
            }
        case .replay:
            guard let replay else { return }
            let block = replay.block(originNanos: MonotonicClock.nowNanos() + 20_000_000, current: start.commands,
                                     maxVelocities: limits.maxVelocity)
            publish(block)
            if let last = block.timesNanos.last { replayEnd.store(last, ordering: .releasing) }
        }
    }

    private func publish(_ block: WaypointBlock) {
        do {
            let trajectory = try JointTrajectory(jointCount: limits.jointCount, times: block.timesNanos,
                                                 positions: block.positions.flatMap { $0 }, mode: mode)
            _ = try mailbox.publish(trajectory)
        } catch {
            failureText.withLock { $0 = "policy \(kind): \(error)" }
            stopping.store(true, ordering: .releasing)
        }
    }

    private func sleep(seconds: Double) {
        let end = MonotonicClock.nowNanos() + UInt64(seconds * 1e9)
        while !shouldStop && MonotonicClock.nowNanos() < end { usleep(5_000) }
    }
}
