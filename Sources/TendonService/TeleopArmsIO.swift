import Synchronization
import TendonControl
import TendonHardware

/// Leader → follower teleoperation inside the real-time cycle. Each cycle reads the follower buses and
/// the (torque-off) leader buses, overlapping all four wires, and hands the loop a direct setpoint:
/// follower joint = leader joint, except grippers, which go through ALOHA's normalization constants
/// (follower = followerJoint(normalizeLeader(leader))). The loop's safety filter still limits every
/// command. Each cycle also publishes [qpos, qvel, effort, action] (4 × jointCount) to `samples` for the
/// recorder thread, which never touches the buses or the loop.
///
/// Start: the followers first approach the leaders' pose at `approachRadiansPerSecond` (ALOHA's slow
/// "opening ceremony"), then follow directly; a leader far from its follower never makes it jump.
///
/// `freeze()` (any thread) makes the setpoint the last command taken from the leaders, so the arms hold
/// still while the owner winds down (a full disk, an operator stop).
public final class TeleopArmsIO: ControlCycleIO {
    public let followers: DynamixelArmsIO
    public let leaders: DynamixelArmsIO
    public let jointCount: Int
    public let samples: SampleRing
    private let gripperJoints: [Int]
    private let grippers: GripperConstants
    private let frozen = Atomic<Bool>(false)
    private let leaderPositions: UnsafeMutableBufferPointer<Double>
    private let record: UnsafeMutableBufferPointer<Double>
    private let held: UnsafeMutableBufferPointer<Double>
    private var haveHeld = false
    private var approaching = true
    private let approachingFlag = Atomic<Bool>(true)
    private var lastNanos: UInt64 = 0
    public let approachRadiansPerSecond: Double
    private let followerPositions: UnsafeMutableBufferPointer<Double>
    private let isGripper: UnsafeMutablePointer<Bool>

    public init(followers: DynamixelArmsIO, leaders: DynamixelArmsIO, gripperJoints: [Int],
                grippers: GripperConstants, approachRadiansPerSecond: Double = 0.5,
                ringCapacity: Int = 4096) throws(StartupError) {
        guard followers.jointCount == leaders.jointCount else {
            throw StartupError("teleoperation needs as many leader joints as follower joints: \(leaders.jointCount) leader, \(followers.jointCount) follower")
        }
        self.followers = followers
        self.leaders = leaders
        self.grippers = grippers
        self.gripperJoints = gripperJoints
        jointCount = followers.jointCount
        samples = SampleRing(width: 4 * jointCount, capacity: ringCapacity)
        leaderPositions = .allocate(capacity: jointCount)
        leaderPositions.initialize(repeating: 0)
        record = .allocate(capacity: 4 * jointCount)
        record.initialize(repeating: 0)
        held = .allocate(capacity: jointCount)
        held.initialize(repeating: 0)
        followerPositions = .allocate(capacity: jointCount)
        followerPositions.initialize(repeating: 0)
        self.approachRadiansPerSecond = approachRadiansPerSecond
        isGripper = .allocate(capacity: jointCount)
        isGripper.initialize(repeating: false, count: jointCount)
        for j in gripperJoints where j >= 0 && j < jointCount { isGripper[j] = true }
    }

    deinit {
        leaderPositions.deallocate()
        record.deallocate()
        held.deallocate()
        followerPositions.deallocate()
        isGripper.deallocate()
    }

    public func freeze() { frozen.store(true, ordering: .releasing) }
    /// False once the followers have reached the leaders and follow them directly. Any thread.
    public var isApproaching: Bool { approachingFlag.load(ordering: .acquiring) }
    public var isFrozen: Bool { frozen.load(ordering: .acquiring) }

    /// Leader pose mapped to follower joints (the teleoperation command before the safety filter).
    @inline(__always)
    public static func followerCommand(leader: Double, isGripper: Bool, grippers: GripperConstants) -> Double {
        isGripper ? grippers.followerJoint(normalized: grippers.normalizeLeader(leader)) : leader
    }

    public func readState(into positions: UnsafeMutableBufferPointer<Double>, nowNanos: UInt64) throws(CycleFault) {
        try followers.transmitReads()
        do {
            try leaders.transmitReads()
        } catch {
            throw Self.leaderFault(error)
        }
        try followers.collectReads(into: positions)
        do {
            try leaders.collectReads(into: leaderPositions)
        } catch {
            throw Self.leaderFault(error)
        }
        for j in 0..<jointCount {
            followerPositions[j] = positions[j]
            record[j] = positions[j]
            record[jointCount + j] = followers.velocity(joint: j)
            record[2 * jointCount + j] = followers.effort(joint: j)
        }
    }

    /// Leader faults carry bus indices after the followers' (bus + 16) so the owner can name them.
    static func leaderFault(_ fault: CycleFault) -> CycleFault {
        var f = fault
        f.code += 16 << 8
        return f
    }

    public func writeCommand(_ positions: UnsafeBufferPointer<Double>, nowNanos: UInt64) throws(CycleFault) {
        try followers.writeCommand(positions, nowNanos: nowNanos)
    }

    public func directSetpoint(into setpoint: UnsafeMutableBufferPointer<Double>, nowNanos: UInt64) -> Bool {
        if !haveHeld {
            for j in 0..<jointCount { held[j] = followerPositions[j] }
            haveHeld = true
            lastNanos = nowNanos
        }
        let dt = Double(nowNanos &- lastNanos) * 1e-9
        lastNanos = nowNanos
        if !frozen.load(ordering: .acquiring) {
            if approaching {
                let step = approachRadiansPerSecond * min(max(dt, 0), 0.05)
                var arrived = true
                for j in 0..<jointCount {
                    let target = Self.followerCommand(leader: leaderPositions[j], isGripper: isGripper[j], grippers: grippers)
                    let delta = target - held[j]
                    if abs(delta) > step { arrived = false }
                    held[j] += min(max(delta, -step), step)
                }
                approaching = !arrived
                if arrived { approachingFlag.store(false, ordering: .releasing) }
            } else {
                for j in 0..<jointCount {
                    held[j] = Self.followerCommand(leader: leaderPositions[j], isGripper: isGripper[j], grippers: grippers)
                }
            }
        }
        for j in 0..<jointCount {
            setpoint[j] = held[j]
            record[3 * jointCount + j] = held[j]
        }
        samples.publish(timestampNanos: nowNanos, values: UnsafeBufferPointer(record))
        return true
    }
}
