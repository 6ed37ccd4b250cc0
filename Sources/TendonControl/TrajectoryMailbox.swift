// Latest-wins hand-over of trajectories to the real-time thread: a triple buffer. The producer fills
// its private back slot and swaps it into the middle with a dirty bit; the consumer swaps its front slot
// with the middle only when the bit is set. The consumer never waits and never allocates, and a slot is
// never written while the consumer reads it, so a trajectory cannot tear.
import Synchronization

/// One preallocated trajectory with its cubic tangents already computed by the producer.
public final class TrajectorySlot: @unchecked Sendable {
    public let jointCount: Int
    public let capacity: Int
    public internal(set) var count = 0
    public internal(set) var mode = InterpolationMode.linear
    /// Increments on every publish; lets readers and tests tell hand-overs apart.
    public internal(set) var generation: UInt64 = 0
    let times: UnsafeMutablePointer<UInt64>
    let positions: UnsafeMutablePointer<Double>
    let tangents: UnsafeMutablePointer<Double>

    init(jointCount: Int, capacity: Int) {
        self.jointCount = jointCount
        self.capacity = capacity
        times = .allocate(capacity: capacity)
        times.initialize(repeating: 0, count: capacity)
        positions = .allocate(capacity: capacity * jointCount)
        positions.initialize(repeating: 0, count: capacity * jointCount)
        tangents = .allocate(capacity: capacity * jointCount)
        tangents.initialize(repeating: 0, count: capacity * jointCount)
    }

    deinit {
        times.deallocate()
        positions.deallocate()
        tangents.deallocate()
    }

    public func time(_ waypoint: Int) -> UInt64 { times[waypoint] }
    public func position(_ waypoint: Int, joint: Int) -> Double { positions[waypoint * jointCount + joint] }

    func fill(from trajectory: JointTrajectory, generation: UInt64) {
        let n = jointCount
        count = trajectory.waypointCount
        mode = trajectory.mode
        self.generation = generation
        for i in 0..<count { times[i] = trajectory.times[i] }
        for k in 0..<(count * n) { positions[k] = trajectory.positions[k] }
        for i in 0..<count {
            for j in 0..<n {
                var m = 0.0
                if i > 0 && i < count - 1 {
                    let dt = Double(times[i + 1] - times[i - 1]) * 1e-9
                    m = (positions[(i + 1) * n + j] - positions[(i - 1) * n + j]) / dt
                }
                tangents[i * n + j] = m  // rad/s
            }
        }
    }
}

public final class TrajectoryMailbox: Sendable {
    public let jointCount: Int
    public let capacity: Int
    private static let dirty = 4
    private let slots: [TrajectorySlot]
    /// Index of the middle slot, plus `dirty` when it holds a trajectory the consumer has not taken.
    private let middle = Atomic<Int>(1)
    /// Producer side only: the back slot index and the generation counter. Producers on several threads
    /// serialize here; the consumer never touches this lock.
    private let producer = Mutex<(back: Int, generation: UInt64)>((back: 2, generation: 0))
    /// Consumer side only (the real-time thread).
    nonisolated(unsafe) private var front = 0

    public init(jointCount: Int, maxWaypoints: Int) throws(TrajectoryError) {
        guard jointCount > 0, maxWaypoints > 0 else {
            throw TrajectoryError("mailbox needs positive joint count and capacity, got \(jointCount) joints, "
                                  + "\(maxWaypoints) waypoints")
        }
        self.jointCount = jointCount
        self.capacity = maxWaypoints
        slots = (0..<3).map { _ in TrajectorySlot(jointCount: jointCount, capacity: maxWaypoints) }
    }

    /// Copies `trajectory` into a free slot and makes it the latest. Any thread. Returns its generation.
    @discardableResult
    public func publish(_ trajectory: JointTrajectory) throws(TrajectoryError) -> UInt64 {
        guard trajectory.jointCount == jointCount else {
            throw TrajectoryError("trajectory has \(trajectory.jointCount) joints, the loop drives \(jointCount)")
        }
        guard trajectory.waypointCount <= capacity else {
            throw TrajectoryError("trajectory has \(trajectory.waypointCount) waypoints, the mailbox slots hold "
                                  + "at most \(capacity)")
        }
        return producer.withLock { state in
            state.generation += 1
            slots[state.back].fill(from: trajectory, generation: state.generation)
            let old = middle.exchange(state.back | Self.dirty, ordering: .acquiringAndReleasing)
            state.back = old & 3
            return state.generation
        }
    }

    /// The newest trajectory published since the last call, or nil. Real-time thread only (single
    /// consumer). The returned slot stays valid and unchanged until the next call that returns non-nil.
    @inline(__always)
    public func takeLatest() -> TrajectorySlot? {
        guard middle.load(ordering: .relaxed) & Self.dirty != 0 else { return nil }
        let old = middle.exchange(front, ordering: .acquiringAndReleasing)
        front = old & 3
        return slots[front]
    }
}
