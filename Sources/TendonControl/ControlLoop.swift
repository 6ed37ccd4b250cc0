// One servo cycle: read → setpoint(now) → safety filter → write → publish. Runs on a RealtimeThread.
//
// Fault policy (the loop never decides to stop; its owner does):
// - the first failed or non-finite read latches a fault: from then on the setpoint is ignored and the
//   last safe command (the last filtered one) is written every cycle, so servos in position mode stay
//   put under control and the bus keeps its cadence; reads continue so the state ring still reports.
// - a failed write latches a fault and stops writing altogether (the write path is suspect; position-
//   mode servos keep their last goal by themselves).
// - before the first good read nothing is written, since no safe command is known yet.
// The first fault is kept in an atomic the owner polls (`fault`); counters say how many followed.
// Only `stop` of the RealtimeThread (or a new ControlLoop) ends the hold: there is no auto-recovery.
import Synchronization

public final class ControlLoop<IO: ControlCycleIO>: RealtimeCycle, @unchecked Sendable {
    public let io: IO
    public let jointCount: Int
    public let mailbox: TrajectoryMailbox
    public let stateRing: StateRing
    public let filter: SafetyFilter
    public let interpolator: Interpolator

    private let faultWord = Atomic<UInt64>(0)
    private let readFaultCount = Atomic<UInt64>(0)
    private let writeFaultCount = Atomic<UInt64>(0)
    private let rejectedCount = Atomic<UInt64>(0)
    private let takenCount = Atomic<UInt64>(0)

    private let state: UnsafeMutableBufferPointer<Double>
    private let setpoint: UnsafeMutableBufferPointer<Double>
    private let command: UnsafeMutableBufferPointer<Double>
    private var started = false
    private var holding = false
    private var writeStopped = false

    public init(io: IO, limits: SafetyLimits, periodNanos: UInt64, maxWaypoints: Int,
                ringCapacity: Int = 4096) throws(ControlConfigError) {
        let n = io.jointCount
        guard limits.jointCount == n else {
            throw ControlConfigError("safety limits are for \(limits.jointCount) joints, the IO has \(n)")
        }
        do {
            mailbox = try TrajectoryMailbox(jointCount: n, maxWaypoints: maxWaypoints)
        } catch {
            throw ControlConfigError(error.description)
        }
        self.io = io
        jointCount = n
        stateRing = StateRing(jointCount: n, capacity: ringCapacity)
        filter = SafetyFilter(limits: limits, periodNanos: periodNanos)
        interpolator = Interpolator(jointCount: n)
        state = .allocate(capacity: n)
        state.initialize(repeating: 0)
        setpoint = .allocate(capacity: n)
        setpoint.initialize(repeating: 0)
        command = .allocate(capacity: n)
        command.initialize(repeating: 0)
    }

    deinit {
        state.deallocate()
        setpoint.deallocate()
        command.deallocate()
    }

    /// The first fault since start, or nil. Any thread.
    public var fault: CycleFault? { CycleFault(packed: faultWord.load(ordering: .acquiring)) }
    public var readFaults: UInt64 { readFaultCount.load(ordering: .relaxed) }
    public var writeFaults: UInt64 { writeFaultCount.load(ordering: .relaxed) }
    /// Cycles whose setpoint held NaN/Inf.
    public var rejectedSetpoints: UInt64 { rejectedCount.load(ordering: .relaxed) }
    /// Trajectories taken from the mailbox by the cycle.
    public var trajectoriesTaken: UInt64 { takenCount.load(ordering: .relaxed) }

    @inline(__always)
    private func latch(_ fault: CycleFault) {
        holding = true
        _ = faultWord.compareExchange(expected: 0, desired: fault.packed, ordering: .acquiringAndReleasing)
    }

    public func runCycle(nowNanos: UInt64) {
        var flags: StateFlags = []
        var readOK = true
        do {
            try io.readState(into: state, nowNanos: nowNanos)
        } catch {
            readOK = false
            readFaultCount.add(1, ordering: .relaxed)
            latch(error)
        }
        if readOK {
            for j in 0..<jointCount where !state[j].isFinite { readOK = false }
            if !readOK {
                readFaultCount.add(1, ordering: .relaxed)
                latch(CycleFault(kind: .invalidState))
            }
        }
        // Two inserts, not an array literal: the literal allocates an Array on the real-time thread.
        if !readOK {
            flags.insert(.readFault)
            flags.insert(.stateInvalid)
        }

        if !started && readOK && !holding {
            let measured = UnsafeBufferPointer(state)
            filter.reset(at: measured)
            interpolator.reset(holding: measured)
            for j in 0..<jointCount { command[j] = state[j] }
            started = true
        }

        if started && !holding {
            if !io.directSetpoint(into: setpoint, nowNanos: nowNanos) {
                if let slot = mailbox.takeLatest() {
                    interpolator.begin(slot, nowNanos: nowNanos, from: UnsafeBufferPointer(command))
                    takenCount.add(1, ordering: .relaxed)
                }
                interpolator.evaluate(atNanos: nowNanos, into: setpoint)
            }
            let rejectedBefore = filter.rejectedRequests
            filter.apply(request: UnsafeBufferPointer(setpoint), into: command)
            if filter.rejectedRequests != rejectedBefore {
                rejectedCount.add(1, ordering: .relaxed)
                flags.insert(.requestRejected)
            }
            if interpolator.isActive { flags.insert(.trajectoryActive) }
        }

        if started && !writeStopped {
            do {
                try io.writeCommand(UnsafeBufferPointer(command), nowNanos: nowNanos)
            } catch {
                writeFaultCount.add(1, ordering: .relaxed)
                writeStopped = true
                latch(error)
            }
        }
        if holding { flags.insert(.holding) }
        if writeStopped { flags.insert(.writeStopped) }
        stateRing.publish(timestampNanos: nowNanos, flags: flags, positions: UnsafeBufferPointer(state),
                          commands: UnsafeBufferPointer(command))
    }
}

public struct ControlConfigError: Error, CustomStringConvertible, Sendable {
    public var description: String
    init(_ description: String) { self.description = description }
}
