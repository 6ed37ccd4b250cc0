// Timestamped joint waypoints as the producer (policy, replay, API) builds them. Only the copy in a
// mailbox slot reaches the real-time thread.

public enum InterpolationMode: UInt8, Sendable {
    case linear
    /// C1 cubic Hermite through every waypoint. Interior tangents are the non-uniform Catmull-Rom
    /// estimate (p[i+1] − p[i−1]) / (t[i+1] − t[i−1]); the first and last tangents are zero so the joint
    /// starts from and ends at rest. Chosen over a natural spline because each segment depends only on
    /// its neighbours (a late waypoint cannot make earlier segments ring) and needs no solve.
    case cubic
}

public struct JointTrajectory: Sendable, Equatable {
    public var jointCount: Int
    /// CLOCK_MONOTONIC nanoseconds, strictly increasing.
    public var times: [UInt64]
    /// Row-major: waypoint i occupies positions[i*jointCount ..< (i+1)*jointCount]. Radians.
    public var positions: [Double]
    public var mode: InterpolationMode

    public init(jointCount: Int, times: [UInt64], positions: [Double],
                mode: InterpolationMode) throws(TrajectoryError) {
        guard jointCount > 0 else { throw TrajectoryError("joint count must be positive, got \(jointCount)") }
        guard !times.isEmpty else { throw TrajectoryError("a trajectory needs at least one waypoint, got none") }
        guard positions.count == times.count * jointCount else {
            throw TrajectoryError("expected \(times.count) waypoints × \(jointCount) joints = "
                                  + "\(times.count * jointCount) positions, got \(positions.count)")
        }
        for i in 1..<times.count where times[i] <= times[i - 1] {
            throw TrajectoryError("waypoint times must increase strictly; waypoint \(i) at \(times[i]) ns "
                                  + "follows \(times[i - 1]) ns")
        }
        if let bad = positions.firstIndex(where: { !$0.isFinite }) {
            throw TrajectoryError("position of waypoint \(bad / jointCount) joint \(bad % jointCount) is "
                                  + "\(positions[bad]), expected a finite number")
        }
        self.jointCount = jointCount
        self.times = times
        self.positions = positions
        self.mode = mode
    }

    public var waypointCount: Int { times.count }
}

public struct TrajectoryError: Error, CustomStringConvertible, Sendable, Equatable {
    public var description: String
    init(_ description: String) { self.description = description }
}
