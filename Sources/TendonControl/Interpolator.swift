// Evaluates the active trajectory at the servo rate. Real-time thread only; no allocation after init.
//
// Hold policy: with no trajectory, or once the last waypoint has passed, the output is held (the last
// waypoint, or the position given to `reset`). A new trajectory whose first waypoint lies in the future
// is entered by a straight line from the position passed to `begin` (the current command) to that
// waypoint, so a switch while moving does not jump; a trajectory that starts in the past is evaluated
// where it is now, and the safety filter's velocity and acceleration limits absorb the difference.

public final class Interpolator: @unchecked Sendable {
    public let jointCount: Int
    private var active: TrajectorySlot?
    private var segment = 0
    private var leadInStart: UInt64 = 0
    private let leadIn: UnsafeMutablePointer<Double>
    private let hold: UnsafeMutablePointer<Double>

    public init(jointCount: Int) {
        self.jointCount = jointCount
        leadIn = .allocate(capacity: jointCount)
        leadIn.initialize(repeating: 0, count: jointCount)
        hold = .allocate(capacity: jointCount)
        hold.initialize(repeating: 0, count: jointCount)
    }

    deinit {
        leadIn.deallocate()
        hold.deallocate()
    }

    public var isActive: Bool { active != nil }

    /// Drops any trajectory and holds `positions`.
    public func reset(holding positions: UnsafeBufferPointer<Double>) {
        active = nil
        for j in 0..<jointCount { hold[j] = positions[j] }
    }

    /// Switches to `slot` at `nowNanos`; `current` is where the joints are being commanded now.
    public func begin(_ slot: TrajectorySlot, nowNanos: UInt64, from current: UnsafeBufferPointer<Double>) {
        guard slot.count > 0, slot.jointCount == jointCount else { return }
        active = slot
        segment = 0
        leadInStart = nowNanos
        for j in 0..<jointCount {
            leadIn[j] = current[j]
            hold[j] = current[j]
        }
    }

    public func evaluate(atNanos t: UInt64, into out: UnsafeMutableBufferPointer<Double>) {
        let n = jointCount
        guard let slot = active else {
            for j in 0..<n { out[j] = hold[j] }
            return
        }
        let count = slot.count
        let first = slot.times[0]
        if t < first {
            // Lead-in line from the switch point; leadInStart <= t < first.
            let s = Double(t &- leadInStart) / Double(first - leadInStart)
            for j in 0..<n { out[j] = leadIn[j] + (slot.positions[j] - leadIn[j]) * s }
            return
        }
        if t >= slot.times[count - 1] {
            let base = (count - 1) * n
            for j in 0..<n {
                hold[j] = slot.positions[base + j]
                out[j] = hold[j]
            }
            active = nil
            return
        }
        // Time only moves forward in the loop, so the cursor advances; restart the scan if it did not.
        if segment >= count - 1 || slot.times[segment] > t { segment = 0 }
        while slot.times[segment + 1] <= t { segment += 1 }
        let i = segment
        let t0 = slot.times[i]
        let h = Double(slot.times[i + 1] - t0) * 1e-9
        let s = Double(t - t0) * 1e-9 / h
        let p0 = slot.positions + i * n
        let p1 = p0 + n
        switch slot.mode {
        case .linear:
            for j in 0..<n { out[j] = p0[j] + (p1[j] - p0[j]) * s }
        case .cubic:
            let m0 = slot.tangents + i * n
            let m1 = m0 + n
            let s2 = s * s
            let s3 = s2 * s
            let h00 = 2 * s3 - 3 * s2 + 1
            let h10 = s3 - 2 * s2 + s
            let h01 = -2 * s3 + 3 * s2
            let h11 = s3 - s2
            for j in 0..<n {
                out[j] = h00 * p0[j] + h10 * h * m0[j] + h01 * p1[j] + h11 * h * m1[j]
            }
        }
    }
}
