import Synchronization
import TendonControl
import TendonHardware

/// The real-time cycle's view of the follower arms: one SYNC READ (present current/load, velocity,
/// position of all 9 servos) and one SYNC WRITE (goal positions of all 9, shadows included) per bus per
/// cycle. Requests go out on every bus before any reply is awaited, so the buses' wire times overlap.
///
/// Joint order: bus 0's 7 logical joints, then bus 1's (left then right, DESIGN §4).
///
/// Missing replies: a servo whose reply is late or corrupt keeps its previous value for that cycle (the
/// next cycle asks again); after `missLimit` consecutive misses it is declared unresponsive and the cycle
/// throws, which makes the loop hold. A hardware-error alert or a lost bus throws at once. Nothing here
/// allocates after `init`: all tables are flat unsafe buffers.
public final class DynamixelArmsIO: ControlCycleIO {
    /// Present Current (126, or Present Load on XL/XC430) + Present Velocity (128) + Present Position (132).
    static let readAddress: UInt16 = 126
    static let readLength = 10
    static let positionOffset = 6
    static let velocityOffset = 2

    public let jointCount: Int
    public let sessions: [ServoBusSession]
    public let missLimit: Int32
    private let reads: [DynamixelSyncReadGroup]
    private let writes: [DynamixelSyncWriteGroup]

    // Flat per-servo tables, indexed by `servoBase[bus] + i`.
    private let servoBase: UnsafeMutablePointer<Int>
    private let servoCount: UnsafeMutablePointer<Int>
    private let servoJoint: UnsafeMutablePointer<Int>
    private let servoID: UnsafeMutablePointer<UInt8>
    private let servoPrimary: UnsafeMutablePointer<Bool>
    private let servoCalibration: UnsafeMutablePointer<ServoCalibration>
    private let servoMinTicks: UnsafeMutablePointer<Int32>
    private let servoMaxTicks: UnsafeMutablePointer<Int32>
    private let servoMisses: UnsafeMutablePointer<Int32>
    private let lastPositions: UnsafeMutablePointer<Double>
    /// Measured joint velocities (rad/s), refreshed with positions; for recorders via `velocity(joint:)`.
    private let lastVelocities: UnsafeMutablePointer<Double>
    /// Effort per joint: Present Current in mA, or Present Load in 0.1 % on models without current
    /// sensing (XL430/XC430 leaders). Signed in the joint's direction.
    private let lastEfforts: UnsafeMutablePointer<Double>
    /// Per servo: mA per current unit, or 1 (load units) without current sensing.
    private let servoEffortScale: UnsafeMutablePointer<Double>
    private let busLost: UnsafeMutablePointer<Bool>
    private let busCount: Int

    /// Counters other threads may read while the loop runs.
    private let missedReplies = Atomic<UInt64>(0)
    private let cyclesRead = Atomic<UInt64>(0)

    public init(sessions: [ServoBusSession], jointsPerArm: Int, missLimit: Int32 = 10) throws(StartupError) {
        self.sessions = sessions
        self.missLimit = missLimit
        busCount = sessions.count
        jointCount = jointsPerArm * sessions.count
        let total = sessions.reduce(0) { $0 + $1.servos.count }
        servoBase = .allocate(capacity: busCount)
        servoCount = .allocate(capacity: busCount)
        servoJoint = .allocate(capacity: total)
        servoID = .allocate(capacity: total)
        servoPrimary = .allocate(capacity: total)
        servoCalibration = .allocate(capacity: total)
        servoMinTicks = .allocate(capacity: total)
        servoMaxTicks = .allocate(capacity: total)
        servoMisses = .allocate(capacity: total)
        servoMisses.initialize(repeating: 0, count: total)
        lastPositions = .allocate(capacity: jointCount)
        lastPositions.initialize(repeating: 0, count: jointCount)
        lastVelocities = .allocate(capacity: jointCount)
        lastVelocities.initialize(repeating: 0, count: jointCount)
        lastEfforts = .allocate(capacity: jointCount)
        lastEfforts.initialize(repeating: 0, count: jointCount)
        servoEffortScale = .allocate(capacity: total)
        busLost = .allocate(capacity: busCount)
        busLost.initialize(repeating: false, count: busCount)

        var readGroups: [DynamixelSyncReadGroup] = []
        var writeGroups: [DynamixelSyncWriteGroup] = []
        var k = 0
        for (b, session) in sessions.enumerated() {
            servoBase[b] = k
            servoCount[b] = session.servos.count
            for servo in session.servos {
                servoJoint[k] = b * jointsPerArm + servo.jointIndex
                servoID[k] = servo.config.id
                servoPrimary[k] = servo.config.shadowOf == nil
                (servoCalibration + k).initialize(to: servo.calibration)
                servoMinTicks[k] = servo.commandTicks.lowerBound
                servoMaxTicks[k] = servo.commandTicks.upperBound
                servoEffortScale[k] = servo.model.currentMilliampsPerUnit ?? 1
                if servo.config.shadowOf == nil {
                    lastPositions[servoJoint[k]] = servo.calibration.radians(ticks: servo.presentTicks)
                }
                k += 1
            }
            let ids = session.servos.map(\.config.id)
            do {
                readGroups.append(try DynamixelSyncReadGroup(address: Self.readAddress, length: Self.readLength, ids: ids))
                writeGroups.append(try DynamixelSyncWriteGroup(
                    address: DynamixelModel.xm430W350.register(.goalPosition)?.address ?? 116, length: 4, ids: ids))
            } catch {
                throw StartupError("bus \(session.config.name): \(error)")
            }
        }
        reads = readGroups
        writes = writeGroups
    }

    deinit {
        let total = sessions.reduce(0) { $0 + $1.servos.count }
        servoBase.deallocate()
        servoCount.deallocate()
        servoJoint.deallocate()
        servoID.deallocate()
        servoPrimary.deallocate()
        servoCalibration.deinitialize(count: total)
        servoCalibration.deallocate()
        servoMinTicks.deallocate()
        servoMaxTicks.deallocate()
        servoMisses.deallocate()
        lastPositions.deallocate()
        lastVelocities.deallocate()
        lastEfforts.deallocate()
        servoEffortScale.deallocate()
        busLost.deallocate()
    }

    /// Fault codes carry the bus index and servo id: `bus << 8 | id` (id 0xFF: the whole bus).
    @inline(__always)
    static func faultCode(bus: Int, id: UInt8) -> Int32 { Int32(bus) << 8 | Int32(id) }

    public static func decode(faultCode: Int32) -> (bus: Int, id: UInt8?) {
        let id = UInt8(truncatingIfNeeded: faultCode)
        return (Int(faultCode >> 8), id == 0xFF ? nil : id)
    }

    public var missedReplyCount: UInt64 { missedReplies.load(ordering: .relaxed) }
    public var readCycles: UInt64 { cyclesRead.load(ordering: .relaxed) }
    public func isLost(bus: Int) -> Bool { busLost[bus] }

    public func readState(into positions: UnsafeMutableBufferPointer<Double>, nowNanos: UInt64) throws(CycleFault) {
        try transmitReads()
        try collectReads(into: positions)
    }

    /// First half of `readState`: sends the SYNC READ on every bus. A caller driving several arm sets
    /// (followers and leaders) transmits on all of them before collecting any, so all wires overlap.
    public func transmitReads() throws(CycleFault) {
        for b in 0..<busCount where !busLost[b] {
            do {
                try reads[b].transmit(on: sessions[b].bus)
            } catch {
                busLost[b] = true
                throw CycleFault(kind: .deviceLost, code: Self.faultCode(bus: b, id: 0xFF))
            }
        }
    }

    /// Second half of `readState`: collects the replies and fills `positions`.
    public func collectReads(into positions: UnsafeMutableBufferPointer<Double>) throws(CycleFault) {
        var fault: CycleFault?
        for b in 0..<busCount {
            if busLost[b] {
                fault = fault ?? CycleFault(kind: .deviceLost, code: Self.faultCode(bus: b, id: 0xFF))
                continue
            }
            let group = reads[b]
            do {
                try group.collect(on: sessions[b].bus)
            } catch {
                busLost[b] = true
                fault = fault ?? CycleFault(kind: .deviceLost, code: Self.faultCode(bus: b, id: 0xFF))
                continue
            }
            let base = servoBase[b]
            for i in 0..<servoCount[b] {
                let k = base + i
                let joint = servoJoint[k]
                let id = servoID[k]
                if group.status(index: i) == .ok {
                    servoMisses[k] = 0
                    if group.errorByte(index: i) & 0x80 != 0 {
                        fault = fault ?? CycleFault(kind: .deviceError, code: Self.faultCode(bus: b, id: id),
                                                    joint: Int16(joint))
                    }
                    if servoPrimary[k] {
                        let calibration = servoCalibration[k]
                        let ticks = group.value(index: i, offset: Self.positionOffset, size: 4)
                        lastPositions[joint] = calibration.radians(ticks: ticks)
                        let velocityUnits = group.value(index: i, offset: Self.velocityOffset, size: 4)
                        lastVelocities[joint] = Double(calibration.direction) * Double(velocityUnits)
                            * DynamixelUnits.rpmPerVelocityUnit * (2 * .pi / 60)
                        let effortUnits = Int16(truncatingIfNeeded: group.value(index: i, offset: 0, size: 2))
                        lastEfforts[joint] = Double(calibration.direction) * Double(effortUnits) * servoEffortScale[k]
                    }
                } else {
                    missedReplies.add(1, ordering: .relaxed)
                    servoMisses[k] += 1
                    if servoMisses[k] >= missLimit {
                        fault = fault ?? CycleFault(kind: .timeout, code: Self.faultCode(bus: b, id: id),
                                                    joint: Int16(joint))
                    }
                }
            }
        }
        for j in 0..<jointCount { positions[j] = lastPositions[j] }
        cyclesRead.add(1, ordering: .relaxed)
        if let fault { throw fault }
    }

    public func writeCommand(_ positions: UnsafeBufferPointer<Double>, nowNanos: UInt64) throws(CycleFault) {
        for b in 0..<busCount where !busLost[b] {
            let base = servoBase[b]
            let group = writes[b]
            for i in 0..<servoCount[b] {
                let k = base + i
                // Last line of defence: whatever the filter produced, a servo never gets a tick outside
                // its limit registers and calibrated range.
                let ticks = servoCalibration[k].ticks(radians: positions[servoJoint[k]])
                group.set(index: i, value: min(max(ticks, servoMinTicks[k]), servoMaxTicks[k]))
            }
            do {
                try group.transmit(on: sessions[b].bus)
            } catch {
                busLost[b] = true
                throw CycleFault(kind: .deviceLost, code: Self.faultCode(bus: b, id: 0xFF))
            }
        }
    }

    /// Joint velocity measured in the last good read (rad/s). Racy by design (a reader may see a value
    /// one cycle old); used only for logs and recordings.
    public func velocity(joint: Int) -> Double { lastVelocities[joint] }

    /// Effort measured in the last good read (mA, or 0.1 % load on models without current sensing).
    /// Same caveat as `velocity(joint:)`; the teleoperation IO reads it on the real-time thread itself.
    public func effort(joint: Int) -> Double { lastEfforts[joint] }
}
