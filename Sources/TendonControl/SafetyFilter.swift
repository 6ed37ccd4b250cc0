// Last stage before the bus: keeps every command inside position, velocity and acceleration limits.
//
// Per joint and per cycle (dt = the nominal servo period, so a missed period never becomes a bigger
// step): the request is clamped to [min, max]; the velocity that would follow it (the request's own
// velocity plus a braking-limited catch-up of the previous tracking error) is clamped to ±maxVelocity;
// then to the braking envelope of both position limits, v ≤ −a·dt/2 + √((a·dt/2)² + 2·a·(d − a·dt²/8)),
// the largest speed from which steps decelerating by a·dt each stop within distance d (the a·dt²/8
// margin covers the fractional last step; within a·dt² the rest is one step), so a limit is approached
// at a deceleration the joint can do instead of demanding an infinite one at the clamp; finally to
// ±a·dt around the previous velocity.
// The position is clamped last as a backstop. A joint found outside its limits at reset is never pushed
// further out and is brought back under the same limits (no jump to the limit).
// A request containing NaN or ±Inf is replaced as a whole by the previous command (its other values
// are not trusted either) and counted; the joints then brake to it within the acceleration limit.

public struct SafetyLimits: Sendable, Equatable {
    public var minPosition: [Double]
    public var maxPosition: [Double]
    public var maxVelocity: [Double]
    public var maxAcceleration: [Double]

    public init(minPosition: [Double], maxPosition: [Double], maxVelocity: [Double],
                maxAcceleration: [Double]) throws(SafetyConfigError) {
        let n = minPosition.count
        guard n > 0, maxPosition.count == n, maxVelocity.count == n, maxAcceleration.count == n else {
            throw SafetyConfigError("limit arrays must all have the joint count; got min \(minPosition.count), "
                                    + "max \(maxPosition.count), velocity \(maxVelocity.count), "
                                    + "acceleration \(maxAcceleration.count)")
        }
        for j in 0..<n {
            guard minPosition[j].isFinite, maxPosition[j].isFinite, minPosition[j] <= maxPosition[j] else {
                throw SafetyConfigError("joint \(j): expected finite min ≤ max position, got "
                                        + "[\(minPosition[j]), \(maxPosition[j])]")
            }
            guard maxVelocity[j].isFinite, maxVelocity[j] > 0, maxAcceleration[j].isFinite,
                  maxAcceleration[j] > 0 else {
                throw SafetyConfigError("joint \(j): expected positive finite velocity and acceleration limits, "
                                        + "got \(maxVelocity[j]) rad/s, \(maxAcceleration[j]) rad/s²")
            }
        }
        self.minPosition = minPosition
        self.maxPosition = maxPosition
        self.maxVelocity = maxVelocity
        self.maxAcceleration = maxAcceleration
    }

    public var jointCount: Int { minPosition.count }
}

public struct SafetyConfigError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    init(_ description: String) { self.description = description }
}

public final class SafetyFilter: @unchecked Sendable {
    public let jointCount: Int
    public let dt: Double
    private let lo, hi, vmax, amax: UnsafeMutablePointer<Double>
    private let command, velocity, target: UnsafeMutablePointer<Double>
    /// Cycles whose request held a NaN/Inf (replaced by the previous command).
    public private(set) var rejectedRequests: UInt64 = 0

    public init(limits: SafetyLimits, periodNanos: UInt64) {
        let n = limits.jointCount
        jointCount = n
        dt = Double(periodNanos) * 1e-9
        func buffer(_ values: [Double]) -> UnsafeMutablePointer<Double> {
            let p = UnsafeMutablePointer<Double>.allocate(capacity: n)
            p.initialize(from: values, count: n)
            return p
        }
        lo = buffer(limits.minPosition)
        hi = buffer(limits.maxPosition)
        vmax = buffer(limits.maxVelocity)
        amax = buffer(limits.maxAcceleration)
        command = buffer(Array(repeating: 0, count: n))
        velocity = buffer(Array(repeating: 0, count: n))
        target = buffer(Array(repeating: 0, count: n))
    }

    deinit {
        for p in [lo, hi, vmax, amax, command, velocity, target] { p.deallocate() }
    }

    /// Starts from rest at `positions` (the measured joints).
    public func reset(at positions: UnsafeBufferPointer<Double>) {
        for j in 0..<jointCount {
            command[j] = positions[j]
            target[j] = min(max(positions[j], lo[j]), hi[j])
            velocity[j] = 0
        }
    }

    public func previousCommand(_ joint: Int) -> Double { command[joint] }
    public func previousVelocity(_ joint: Int) -> Double { velocity[joint] }

    /// The largest speed from which the joint still stops within `d` decelerating at `a` per step of dt.
    /// Below a·dt² the last step is taken whole (d/dt, then one step of at most a·dt to rest), so a
    /// target or limit is reached exactly rather than approached forever inside the margin.
    @inline(__always)
    static func stoppingSpeed(distance d: Double, acceleration a: Double, dt: Double) -> Double {
        guard d > 0 else { return 0 }
        if d <= a * dt * dt { return d / dt }
        let usable = d - a * dt * dt / 8
        let half = a * dt / 2
        return min(d / dt, -half + (half * half + 2 * a * usable).squareRoot())
    }

    /// Filters `request` into `out` (both jointCount long) and remembers `out` as the previous command.
    public func apply(request: UnsafeBufferPointer<Double>, into out: UnsafeMutableBufferPointer<Double>) {
        let n = jointCount
        var valid = true
        for j in 0..<n where !request[j].isFinite { valid = false }
        if !valid { rejectedRequests &+= 1 }
        let dt = self.dt
        for j in 0..<n {
            let prev = command[j]
            let a = amax[j]
            // A joint outside its range may only move back in.
            let low = min(lo[j], prev)
            let high = max(hi[j], prev)
            let goal = valid ? min(max(request[j], lo[j]), hi[j]) : prev
            let goalVelocity = (goal - target[j]) / dt
            let lag = target[j] - prev
            let catchUp = Self.stoppingSpeed(distance: abs(lag), acceleration: a, dt: dt)
            var v = goalVelocity + (lag < 0 ? -catchUp : catchUp)
            v = min(max(v, -vmax[j]), vmax[j])
            v = min(v, Self.stoppingSpeed(distance: high - prev, acceleration: a, dt: dt))
            v = max(v, -Self.stoppingSpeed(distance: prev - low, acceleration: a, dt: dt))
            v = min(max(v, velocity[j] - a * dt), velocity[j] + a * dt)
            let next = min(max(prev + v * dt, low), high)
            out[j] = next
            velocity[j] = (next - prev) / dt
            command[j] = next
            target[j] = goal
        }
    }
}
