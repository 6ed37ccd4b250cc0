import Testing
@testable import TendonControl

private let second: UInt64 = 1_000_000_000

/// Evaluates a trajectory the way the loop does: hand it over, then sample increasing times.
private func evaluate(_ trajectory: JointTrajectory, at times: [UInt64], start: [Double]) throws -> [[Double]] {
    let mailbox = try TrajectoryMailbox(jointCount: trajectory.jointCount, maxWaypoints: 16)
    try mailbox.publish(trajectory)
    let interpolator = Interpolator(jointCount: trajectory.jointCount)
    guard let slot = mailbox.takeLatest() else { throw TrajectoryError("mailbox empty") }
    start.withUnsafeBufferPointer { interpolator.begin(slot, nowNanos: 0, from: $0) }
    var out = [Double](repeating: .nan, count: trajectory.jointCount)
    return times.map { t in
        out.withUnsafeMutableBufferPointer { interpolator.evaluate(atNanos: t, into: $0) }
        return out
    }
}

@Test func linearInterpolationMatchesHandValues() throws {
    // Joint 0: 0 → 1 → 3 at t = 1, 2, 3 s; joint 1: 10 → 8 → 8.
    let trajectory = try JointTrajectory(jointCount: 2, times: [1 * second, 2 * second, 3 * second],
                                         positions: [0, 10, 1, 8, 3, 8], mode: .linear)
    let values = try evaluate(trajectory, at: [1 * second, 1_500_000_000, 2 * second, 2_250_000_000, 3 * second],
                              start: [0, 10])
    #expect(values[0] == [0, 10])
    #expect(values[1] == [0.5, 9])
    #expect(values[2] == [1, 8])
    #expect(values[3] == [1.5, 8])
    #expect(values[4] == [3, 8])
}

@Test func cubicHermiteMatchesHandValuesAndPassesThroughWaypoints() throws {
    // p = 0, 1, 3 at t = 1, 2, 3 s. Tangents: m0 = 0, m1 = (3 − 0)/2 = 1.5, m2 = 0 (rad/s), h = 1 s.
    // s = 0.5: h00 = h01 = 0.5, h10 = 0.125, h11 = −0.125
    //   segment 0: 0.5·0 + 0.125·0 + 0.5·1 − 0.125·1.5 = 0.3125
    //   segment 1: 0.5·1 + 0.125·1.5 + 0.5·3 − 0.125·0 = 2.1875
    // s = 0.25 in segment 0: h01 = −2/64 + 3/16 = 0.15625, h11 = 1/64 − 1/16 = −0.046875
    //   0.15625·1 − 0.046875·1.5 = 0.0859375
    let trajectory = try JointTrajectory(jointCount: 1, times: [1 * second, 2 * second, 3 * second],
                                         positions: [0, 1, 3], mode: .cubic)
    let values = try evaluate(trajectory, at: [1 * second, 1_250_000_000, 1_500_000_000, 2 * second,
                                               2_500_000_000, 3 * second, 4 * second], start: [0])
    #expect(values.map { $0[0] } == [0, 0.0859375, 0.3125, 1, 2.1875, 3, 3])
}

@Test func cubicPassesExactlyThroughIrregularWaypoints() throws {
    let times: [UInt64] = [100, 1_000_100, 1_700_000, 5_000_003, 5_000_004, 9_000_000]
    let n = 3
    var positions: [Double] = []
    for i in 0..<times.count { for j in 0..<n { positions.append(Double(i * 7 % 5) * 0.37 - Double(j) * 1.1) } }
    for mode in [InterpolationMode.linear, .cubic] {
        let trajectory = try JointTrajectory(jointCount: n, times: times, positions: positions, mode: mode)
        let values = try evaluate(trajectory, at: times, start: [0, 0, 0])
        for i in 0..<times.count {
            #expect(values[i] == Array(positions[(i * n)..<((i + 1) * n)]), "mode \(mode) waypoint \(i)")
        }
    }
}

@Test func holdsBeforeAndAfterAndLeadsInWithoutJump() throws {
    // Starting at 2 rad at t = 0 with the first waypoint (4 rad) at 1 s: lead-in line, then hold at the end.
    let trajectory = try JointTrajectory(jointCount: 1, times: [1 * second, 2 * second], positions: [4, 6],
                                         mode: .cubic)
    let values = try evaluate(trajectory, at: [0, 500_000_000, 1 * second, 2 * second, 10 * second], start: [2])
    #expect(values.map { $0[0] } == [2, 3, 4, 6, 6])

    let interpolator = Interpolator(jointCount: 2)
    [0.5, -0.5].withUnsafeBufferPointer { interpolator.reset(holding: $0) }
    var out = [0.0, 0.0]
    out.withUnsafeMutableBufferPointer { interpolator.evaluate(atNanos: 123, into: $0) }
    #expect(out == [0.5, -0.5])
}

@Test func rejectsMalformedTrajectoriesWithClearErrors() throws {
    #expect(throws: TrajectoryError.self) {
        try JointTrajectory(jointCount: 2, times: [1, 2], positions: [0, 0, 0], mode: .linear)
    }
    #expect(throws: TrajectoryError.self) {
        try JointTrajectory(jointCount: 1, times: [2, 2], positions: [0, 0], mode: .linear)
    }
    #expect(throws: TrajectoryError.self) {
        try JointTrajectory(jointCount: 1, times: [1], positions: [.nan], mode: .linear)
    }
    let mailbox = try TrajectoryMailbox(jointCount: 1, maxWaypoints: 2)
    let long = try JointTrajectory(jointCount: 1, times: [1, 2, 3], positions: [0, 0, 0], mode: .linear)
    do {
        try mailbox.publish(long)
        Issue.record("publishing 3 waypoints into 2-waypoint slots should fail")
    } catch {
        #expect(error.description.contains("at most 2"))
    }
}
