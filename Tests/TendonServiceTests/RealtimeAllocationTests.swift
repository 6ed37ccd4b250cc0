import CAllocationCounter
import Foundation
import Synchronization
import Testing
import TendonControl
import TendonHardware
@testable import TendonService

/// Forwards to the real Dynamixel IO and samples the real-time thread's own allocation counter from
/// inside the cycle, so the count covers exactly the cycles between the two samples.
final class AllocationProbeIO<Inner: ControlCycleIO>: ControlCycleIO {
    let inner: Inner
    let firstCycle: Int
    let lastCycle: Int
    private var cycle = 0
    private(set) var before: UInt64 = 0
    private(set) var after: UInt64 = 0
    let done = Atomic<Bool>(false)

    init(inner: Inner, firstCycle: Int, lastCycle: Int) {
        self.inner = inner
        self.firstCycle = firstCycle
        self.lastCycle = lastCycle
    }

    var jointCount: Int { inner.jointCount }

    func readState(into positions: UnsafeMutableBufferPointer<Double>, nowNanos: UInt64) throws(CycleFault) {
        cycle += 1
        if cycle == firstCycle { before = tendon_thread_allocation_count() }
        if cycle == lastCycle {
            after = tendon_thread_allocation_count()
            done.store(true, ordering: .releasing)
        }
        try inner.readState(into: positions, nowNanos: nowNanos)
    }

    func writeCommand(_ positions: UnsafeBufferPointer<Double>, nowNanos: UInt64) throws(CycleFault) {
        try inner.writeCommand(positions, nowNanos: nowNanos)
    }

    func directSetpoint(into setpoint: UnsafeMutableBufferPointer<Double>, nowNanos: UInt64) -> Bool {
        inner.directSetpoint(into: setpoint, nowNanos: nowNanos)
    }
}

@Suite(.serialized) struct RealtimeAllocationTests {
    @Test func theRealCycleAllocatesNothingAcrossThousandsOfCyclesAndHandOvers() throws {
        #expect(tendon_allocation_counter_active() == 1)
        let fixture = try SimulatorFixture { $0.pacing = false }
        let robot = fixture.robot
        let ports = try RobotRunner.readPortsFile(fixture.portsJSON)
        var sessions: [ServoBusSession] = []
        defer { sessions.forEach { $0.close() } }
        for bus in robot.followerBuses {
            sessions.append(try ServoBusSession.open(config: bus, path: ports[bus.name]!, robot: robot,
                                                     calibration: fixture.calibration,
                                                     busConfiguration: .init(retries: 2, latencyMarginNanos: 2_000_000),
                                                     logger: quietLogger()))
        }
        let limits = try RobotRunner.jointLimits(robot: robot, sessions: sessions)
        try RobotRunner.enableTorque(robot: robot, sessions: sessions)
        // The miss limit is out of reach: a servo falls silent inside the window, so the late-reply path
        // is measured too, without it becoming a fault.
        let probe = AllocationProbeIO(inner: try DynamixelArmsIO(sessions: sessions, jointsPerArm: 7, missLimit: 1_000_000),
                                      firstCycle: 100, lastCycle: 2100)
        let period: UInt64 = 1_000_000
        let loop = try ControlLoop(io: probe, limits: limits, periodNanos: period, maxWaypoints: 64)
        let thread = RealtimeThread(config: RealtimeConfig(periodNanos: period, priority: 50, cpu: 1, lockMemory: false))
        try thread.start(loop)
        // Hand trajectories over while the window is open, as inference will.
        var published = 0
        let stepNanos: UInt64 = 20_000_000
        var silenced = false
        while !probe.done.load(ordering: .acquiring) {
            if !silenced && published == 10 {
                fixture.sim.bus("follower_left")?.setSilent(id: 5)
                silenced = true
            }
            let now = MonotonicClock.nowNanos()
            let times = (0..<10).map { now + UInt64($0) * stepNanos }
            var positions: [Double] = []
            for k in 0..<10 {
                for j in 0..<14 { positions.append(j % 7 == 0 ? 0.05 * sin(Double(published + k) * 0.3) : (j % 7 == 6 ? 0.4 : 0)) }
            }
            _ = try loop.mailbox.publish(JointTrajectory(jointCount: 14, times: times, positions: positions, mode: .cubic))
            published += 1
            usleep(50_000)
        }
        let report = thread.stop()
        #expect(loop.fault == nil, "\(String(describing: loop.fault))")
        #expect(published >= 10)
        #expect(silenced)
        #expect(probe.inner.missedReplyCount > 100)
        #expect(loop.trajectoriesTaken >= 10)
        #expect(probe.after - probe.before == 0, "\(probe.after - probe.before) allocations on the real-time thread")
        #expect((report?.cycles ?? 0) >= 2100)
    }
}

@Suite(.serialized) struct TeleopAllocationTests {
    @Test func theTeleoperationCycleAllocatesNothing() throws {
        #expect(tendon_allocation_counter_active() == 1)
        let fixture = try SimulatorFixture { $0.pacing = false }
        let robot = fixture.robot
        let ports = try RobotRunner.readPortsFile(fixture.portsJSON)
        var followers: [ServoBusSession] = [], leaders: [ServoBusSession] = []
        defer { (followers + leaders).forEach { $0.close() } }
        for (buses, into) in [(robot.followerBuses, 0), (robot.leaderBuses, 1)] {
            for bus in buses {
                let session = try ServoBusSession.open(config: bus, path: ports[bus.name]!, robot: robot, calibration: fixture.calibration,
                                                       busConfiguration: .init(retries: 2, latencyMarginNanos: 2_000_000),
                                                       logger: quietLogger())
                if into == 0 { followers.append(session) } else { leaders.append(session) }
            }
        }
        let limits = try RobotRunner.jointLimits(robot: robot, sessions: followers)
        try RecordRunner.torqueOff(leaders)
        try RobotRunner.enableTorque(robot: robot, sessions: followers)
        // As above, the miss limit is out of reach: a loaded machine's late reply must not turn into a fault.
        let teleop = try TeleopArmsIO(followers: DynamixelArmsIO(sessions: followers, jointsPerArm: 7, missLimit: 1_000_000),
                                      leaders: DynamixelArmsIO(sessions: leaders, jointsPerArm: 7, missLimit: 1_000_000),
                                      gripperJoints: [6, 13], grippers: robot.grippers)
        let probe = AllocationProbeIO(inner: teleop, firstCycle: 100, lastCycle: 1600)
        let period: UInt64 = 2_000_000
        let loop = try ControlLoop(io: probe, limits: limits, periodNanos: period, maxWaypoints: 4)
        // The leader waist starts 0.4 rad away from the follower's: the followers approach it slowly.
        let puppet = try LeaderPuppet(robot: robot, calibration: fixture.calibration, simulator: fixture.sim)
        var start = ScriptedDemonstration.startPose(grippers: robot.grippers)
        start[0] = 0.4
        puppet.apply(leader: start)
        let thread = RealtimeThread(config: RealtimeConfig(periodNanos: period, priority: 50, cpu: 1, lockMemory: false))
        try thread.start(loop)
        usleep(300_000)
        let early = try #require(teleop.samples.latest())
        #expect(teleop.isApproaching)
        #expect(early.values[42] > 0.01 && early.values[42] < 0.25, "approach command \(early.values[42]) after 0.3 s")
        while teleop.isApproaching && loop.fault == nil { usleep(10_000) }
        #expect(abs(try #require(teleop.samples.latest()).values[42] - 0.4) < 1e-3)
        var k = asin(1.0)  // continue from 0.4 = 0.4·sin(k)
        while !probe.done.load(ordering: .acquiring) {
            start[0] = 0.4 * sin(k)
            start[13] = robot.grippers.leaderClosed + 0.3 * (1 + sin(k))
            puppet.apply(leader: start)
            k += 0.05
            usleep(10_000)
        }
        // Frozen: the command stays put whatever the leaders do.
        teleop.freeze()
        usleep(20_000)
        let frozenAction = try #require(teleop.samples.latest()).values[42..<56]
        start[0] = -0.3
        puppet.apply(leader: start)
        usleep(50_000)
        let laterAction = try #require(teleop.samples.latest()).values[42..<56]
        #expect(Array(frozenAction) == Array(laterAction))
        _ = thread.stop()
        #expect(loop.fault == nil, "\(String(describing: loop.fault))")
        #expect(probe.after - probe.before == 0, "\(probe.after - probe.before) allocations on the real-time thread")
        // The followers took the leaders' motion: the published action of joint 0 swept.
        let latest = try #require(teleop.samples.latest())
        #expect(teleop.samples.publishedCount >= 1600)
        #expect(latest.values.count == 56)
    }
}
