import Testing
import Synchronization
import CAllocationCounter
import TendonHardware
#if canImport(Glibc)
import Glibc
#endif
@testable import TendonControl

/// A perfect servo: reads back what was last written. Everything it records lives in preallocated
/// memory, and its hooks run on the real-time thread (that is where allocations are counted).
/// Loop tests run without mlockall (it is process-wide and would lock every later test's memory).
final class FakeServoIO: ControlCycleIO, @unchecked Sendable {
    let jointCount: Int
    let dt: Double
    let maxVelocity: Double
    private let position: UnsafeMutablePointer<Double>
    private let lastWritten: UnsafeMutablePointer<Double>
    let reads = Atomic<Int>(0)
    let writes = Atomic<Int>(0)
    /// Allocation count of the RT thread at the start of read number `measureFrom` and `measureTo`.
    let measureFrom: Int
    let measureTo: Int
    let allocationsAtFrom = Atomic<UInt64>(.max)
    let allocationsAtTo = Atomic<UInt64>(.max)
    /// Sleeps this many ns inside every `sleepEvery`-th write (0 = never).
    let sleepEvery: Int
    let sleepNanos: Int
    let sleeps = Atomic<Int>(0)
    /// Fault injection: the read / write with this number fails (and later ones too for reads).
    let failReadAt: Int
    let failWriteAt: Int
    let nanReadAt: Int
    /// Largest |Δcommand| between consecutive writes, over maxVelocity·dt (≤ 1 means no jump).
    nonisolated(unsafe) var maxStepRatio = 0.0
    nonisolated(unsafe) var writesAfterFault = 0
    nonisolated(unsafe) var commandChangedAfterReadFault = false

    init(jointCount: Int, start: Double, dt: Double, maxVelocity: Double, measureFrom: Int = -1, measureTo: Int = -1,
         sleepEvery: Int = 0, sleepNanos: Int = 0, failReadAt: Int = -1, failWriteAt: Int = -1, nanReadAt: Int = -1) {
        self.jointCount = jointCount
        self.dt = dt
        self.maxVelocity = maxVelocity
        position = .allocate(capacity: jointCount)
        position.initialize(repeating: start, count: jointCount)
        lastWritten = .allocate(capacity: jointCount)
        lastWritten.initialize(repeating: start, count: jointCount)
        self.measureFrom = measureFrom
        self.measureTo = measureTo
        self.sleepEvery = sleepEvery
        self.sleepNanos = sleepNanos
        self.failReadAt = failReadAt
        self.failWriteAt = failWriteAt
        self.nanReadAt = nanReadAt
    }

    deinit {
        position.deallocate()
        lastWritten.deallocate()
    }

    func readState(into positions: UnsafeMutableBufferPointer<Double>, nowNanos: UInt64) throws(CycleFault) {
        let k = reads.add(1, ordering: .relaxed).newValue
        if k == measureFrom { allocationsAtFrom.store(tendon_thread_allocation_count(), ordering: .relaxed) }
        if k == measureTo { allocationsAtTo.store(tendon_thread_allocation_count(), ordering: .relaxed) }
        if failReadAt > 0 && k >= failReadAt { throw CycleFault(kind: .readFailed, code: 5, joint: 3) }
        for j in 0..<jointCount { positions[j] = position[j] }
        if k == nanReadAt { positions[2] = .nan }
    }

    func writeCommand(_ positions: UnsafeBufferPointer<Double>, nowNanos: UInt64) throws(CycleFault) {
        let k = writes.add(1, ordering: .relaxed).newValue
        if failWriteAt > 0 && k == failWriteAt { throw CycleFault(kind: .writeFailed, code: 110) }
        if failWriteAt > 0 && k > failWriteAt { writesAfterFault += 1 }
        let faulted = failReadAt > 0 && reads.load(ordering: .relaxed) >= failReadAt
        for j in 0..<jointCount {
            maxStepRatio = max(maxStepRatio, abs(positions[j] - lastWritten[j]) / (maxVelocity * dt))
            if faulted && positions[j] != lastWritten[j] { commandChangedAfterReadFault = true }
            lastWritten[j] = positions[j]
            position[j] = positions[j]
        }
        if sleepEvery > 0 && k % sleepEvery == 0 {
            sleeps.add(1, ordering: .relaxed)
            var ts = timespec(tv_sec: 0, tv_nsec: sleepNanos)
            nanosleep(&ts, nil)
        }
    }

    func written(_ joint: Int) -> Double { lastWritten[joint] }
}

private let n = 14
private let periodNanos: UInt64 = 1_000_000
private let maxVelocity = 1.0
private func aloha14Limits() -> SafetyLimits {
    try! SafetyLimits(minPosition: Array(repeating: -2, count: n), maxPosition: Array(repeating: 2, count: n),
                      maxVelocity: Array(repeating: maxVelocity, count: n),
                      maxAcceleration: Array(repeating: 20, count: n))
}

/// A 200 ms ramp per joint starting now, alternating direction by `sign`, linear or cubic.
private func ramp(from now: UInt64, sign: Double, mode: InterpolationMode) -> JointTrajectory {
    let times = (0..<5).map { now + UInt64($0) * 50_000_000 }
    var positions: [Double] = []
    for i in 0..<5 { for j in 0..<n { positions.append(sign * (0.02 * Double(i) + 0.001 * Double(j))) } }
    return try! JointTrajectory(jointCount: n, times: times, positions: positions, mode: mode)
}

private func waitFor(_ condition: () -> Bool, seconds: Double = 20) {
    let deadline = MonotonicClock.nowNanos() + UInt64(seconds * 1e9)
    while !condition() && MonotonicClock.nowNanos() < deadline { usleep(1000) }
}

@Suite(.serialized) struct RealtimeLoopTests {
    @Test func thousandsOfCyclesWithHandOversAllocateNothingOnTheRealtimeThread() throws {
        #expect(tendon_allocation_counter_active() == 1)
        let io = FakeServoIO(jointCount: n, start: 0, dt: 1e-3, maxVelocity: maxVelocity, measureFrom: 300,
                             measureTo: 3300)
        let loop = try ControlLoop(io: io, limits: aloha14Limits(), periodNanos: periodNanos, maxWaypoints: 16)
        let thread = RealtimeThread(config: RealtimeConfig(periodNanos: periodNanos, cpu: 1, lockMemory: false))
        let warnings = try thread.start(loop)
        // Warm-up hand-overs (first use of every path) before the measured window.
        try loop.mailbox.publish(ramp(from: MonotonicClock.nowNanos(), sign: 1, mode: .cubic))
        waitFor { io.reads.load(ordering: .relaxed) >= 100 }
        try loop.mailbox.publish(ramp(from: MonotonicClock.nowNanos(), sign: -1, mode: .linear))
        waitFor { io.reads.load(ordering: .relaxed) >= 300 }
        let takenBefore = loop.trajectoriesTaken
        var published = 0
        while io.reads.load(ordering: .relaxed) < 3300 {
            try loop.mailbox.publish(ramp(from: MonotonicClock.nowNanos() + 5_000_000,
                                          sign: published % 2 == 0 ? 1 : -1,
                                          mode: published % 3 == 0 ? .linear : .cubic))
            published += 1
            usleep(7000)
        }
        let report = try #require(thread.stop())
        let from = io.allocationsAtFrom.load(ordering: .relaxed)
        let to = io.allocationsAtTo.load(ordering: .relaxed)
        #expect(from != .max && to != .max)
        #expect(to == from, "real-time thread allocated \(to &- from) times in 3000 cycles")
        #expect(loop.trajectoriesTaken - takenBefore >= 20)
        #expect(report.cycles >= 3300)
        #expect(report.wakeLatency.count == report.cycles)
        #expect(loop.fault == nil)
        #expect(io.maxStepRatio <= 1 + 1e-9)
        #expect(report.warnings == warnings)
        // The state ring saw the last cycle.
        let last = try #require(loop.stateRing.latest())
        #expect(last.index == loop.stateRing.publishedCount - 1)
        #expect(last.commands == (0..<n).map { io.written($0) })
    }

    @Test func overrunsAreCountedAndSkippedWithoutCommandJumps() throws {
        // Every 50th write sleeps 2.5 periods: each such cycle ends ≥ 1.5 periods after the next deadline.
        let io = FakeServoIO(jointCount: n, start: 0, dt: 1e-3, maxVelocity: maxVelocity, sleepEvery: 50,
                             sleepNanos: 2_500_000)
        let loop = try ControlLoop(io: io, limits: aloha14Limits(), periodNanos: periodNanos, maxWaypoints: 16)
        let thread = RealtimeThread(config: RealtimeConfig(periodNanos: periodNanos, cpu: 1, lockMemory: false))
        try thread.start(loop)
        waitFor { io.reads.load(ordering: .relaxed) >= 10 }
        // A fast ramp (0.8 rad/s, near the 1 rad/s limit) so skipped periods leave the command behind.
        let now = MonotonicClock.nowNanos()
        let positions = (0..<2).flatMap { i in (0..<n).map { _ in Double(i) * 0.8 } }
        try loop.mailbox.publish(JointTrajectory(jointCount: n, times: [now, now + 1_000_000_000],
                                                 positions: positions, mode: .linear))
        waitFor { io.reads.load(ordering: .relaxed) >= 1200 }
        let report = try #require(thread.stop())
        let sleeps = UInt64(io.sleeps.load(ordering: .relaxed))
        #expect(sleeps >= 20)
        #expect(report.overruns >= sleeps)
        #expect(report.missedPeriods >= 2 * sleeps)
        #expect(report.cycleDuration.maxMicros >= 2500)
        #expect(io.maxStepRatio <= 1 + 1e-9, "a command step exceeded maxVelocity·dt")
        #expect(io.maxStepRatio > 0.5)  // the test did move
    }

    @Test func readFaultHoldsTheLastSafeCommandAndIsReported() throws {
        let io = FakeServoIO(jointCount: n, start: 0.1, dt: 1e-3, maxVelocity: maxVelocity, failReadAt: 300)
        let loop = try ControlLoop(io: io, limits: aloha14Limits(), periodNanos: periodNanos, maxWaypoints: 16)
        let thread = RealtimeThread(config: RealtimeConfig(periodNanos: periodNanos, cpu: 1, lockMemory: false))
        try thread.start(loop)
        waitFor { io.reads.load(ordering: .relaxed) >= 5 }
        try loop.mailbox.publish(ramp(from: MonotonicClock.nowNanos(), sign: 1, mode: .cubic))
        waitFor { loop.fault != nil }
        waitFor { io.reads.load(ordering: .relaxed) >= 400 }
        let writesMidway = io.writes.load(ordering: .relaxed)
        waitFor { io.writes.load(ordering: .relaxed) >= writesMidway + 20 }
        _ = thread.stop()
        #expect(loop.fault == CycleFault(kind: .readFailed, code: 5, joint: 3))
        #expect(loop.readFaults >= 100)
        #expect(io.writes.load(ordering: .relaxed) >= writesMidway + 20)  // still writing...
        #expect(!io.commandChangedAfterReadFault)                         // ...the same held command
        let last = try #require(loop.stateRing.latest())
        #expect(last.flags.contains([.holding, .readFault]))
    }

    @Test func writeFaultStopsWritingAndNonFiniteStateIsAFault() throws {
        let io = FakeServoIO(jointCount: n, start: 0, dt: 1e-3, maxVelocity: maxVelocity, failWriteAt: 200)
        let loop = try ControlLoop(io: io, limits: aloha14Limits(), periodNanos: periodNanos, maxWaypoints: 16)
        let thread = RealtimeThread(config: RealtimeConfig(periodNanos: periodNanos, cpu: 1, lockMemory: false))
        try thread.start(loop)
        waitFor { io.reads.load(ordering: .relaxed) >= 400 }
        _ = thread.stop()
        #expect(loop.fault == CycleFault(kind: .writeFailed, code: 110))
        #expect(io.writesAfterFault == 0)
        #expect(io.writes.load(ordering: .relaxed) == 200)
        #expect(loop.stateRing.latest()?.flags.contains([.holding, .writeStopped]) == true)

        let nanIO = FakeServoIO(jointCount: n, start: 0, dt: 1e-3, maxVelocity: maxVelocity, nanReadAt: 50)
        let nanLoop = try ControlLoop(io: nanIO, limits: aloha14Limits(), periodNanos: periodNanos, maxWaypoints: 4)
        let nanThread = RealtimeThread(config: RealtimeConfig(periodNanos: periodNanos, cpu: 1, lockMemory: false))
        try nanThread.start(nanLoop)
        waitFor { nanIO.reads.load(ordering: .relaxed) >= 100 }
        _ = nanThread.stop()
        #expect(nanLoop.fault?.kind == .invalidState)
        #expect(nanLoop.readFaults == 1)  // only read 50 was bad, but the hold stays latched
        #expect(nanLoop.stateRing.latest()?.flags.contains(.holding) == true)
    }

    @Test func nothingIsWrittenWhenTheFirstReadFails() throws {
        let io = FakeServoIO(jointCount: n, start: 0, dt: 1e-3, maxVelocity: maxVelocity, failReadAt: 1)
        let loop = try ControlLoop(io: io, limits: aloha14Limits(), periodNanos: periodNanos, maxWaypoints: 4)
        let thread = RealtimeThread(config: RealtimeConfig(periodNanos: periodNanos, cpu: 1, lockMemory: false))
        try thread.start(loop)
        waitFor { io.reads.load(ordering: .relaxed) >= 50 }
        _ = thread.stop()
        #expect(loop.fault?.kind == .readFailed)
        #expect(io.writes.load(ordering: .relaxed) == 0)  // no safe command was ever known
    }

    @Test func reportedSchedulingPolicyFollowsTheCapabilities() throws {
        final class Idle: RealtimeCycle { func runCycle(nowNanos: UInt64) {} }
        let caps = ProcessCapabilities.current()
        let thread = RealtimeThread(config: RealtimeConfig(periodNanos: 2_000_000, priority: 40, cpu: 0,
                                                           lockMemory: true))
        let warnings = try thread.start(Idle())
        usleep(20_000)
        let report = try #require(thread.stop())
        // mlockall is process-wide: undo it so the rest of the test process is not locked in memory.
        munlockall()
        #expect(report.memoryLocked == caps.ipcLock)
        let fellBack = warnings.contains { $0.contains("falling back") }
        #expect(report.policy == (caps.sysNice && !fellBack ? .fifo : .other))
        if report.policy == .fifo { #expect(report.priority == 40) }
        #expect(report.cpu == 0)
        #expect(caps.sysNice || warnings.contains { $0.contains("CAP_SYS_NICE") })

        // Without the capabilities (injected) the thread must not even try SCHED_FIFO or mlockall, and say so.
        let plain = RealtimeThread(config: RealtimeConfig(periodNanos: 2_000_000, cpu: nil))
        let plainWarnings = try plain.start(Idle(), capabilities: .none)
        usleep(20_000)
        let plainReport = try #require(plain.stop())
        #expect(plainReport.policy == .other)
        #expect(!plainReport.memoryLocked)
        #expect(plainWarnings.contains { $0.contains("CAP_SYS_NICE") && $0.contains("SCHED_OTHER") })
        #expect(plainWarnings.contains { $0.contains("CAP_IPC_LOCK") })
        #expect(plainReport.warnings == plainWarnings)
    }
}
