// The contract between the real-time cycle and whatever moves the joints (Dynamixel buses, CAN, a
// simulator, a test fake). The loop never knows how values travel; an adapter converts to radians.

/// A failure inside one cycle. Plain data (no strings, no boxes) so it can be thrown and stored from
/// the real-time thread without allocating.
public struct CycleFault: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: UInt8, Sendable {
        case readFailed = 1
        case writeFailed = 2
        /// A reply did not arrive before the cycle's deadline.
        case timeout = 3
        /// The device or bus went away (adapter unplugged, pty closed).
        case deviceLost = 4
        /// The adapter returned values that are not finite numbers.
        case invalidState = 5
        /// The device reported an error of its own (e.g. a servo's hardware error status).
        case deviceError = 6
    }

    public var kind: Kind
    /// errno, a servo error byte or another adapter-specific number; 0 when none.
    public var code: Int32
    /// Logical joint index the fault concerns, or -1 when it concerns the whole bus.
    public var joint: Int16

    public init(kind: Kind, code: Int32 = 0, joint: Int16 = -1) {
        self.kind = kind
        self.code = code
        self.joint = joint
    }

    public var description: String {
        let where_ = joint >= 0 ? " on joint \(joint)" : ""
        return "cycle fault \(kind)\(where_) (code \(code))"
    }

    /// Packs into one word for an atomic (0 is reserved for "no fault").
    var packed: UInt64 {
        UInt64(kind.rawValue) << 48 | UInt64(UInt16(bitPattern: joint)) << 32 | UInt64(UInt32(bitPattern: code))
    }

    init?(packed: UInt64) {
        guard packed != 0, let kind = Kind(rawValue: UInt8(truncatingIfNeeded: packed >> 48)) else { return nil }
        self.init(kind: kind, code: Int32(bitPattern: UInt32(truncatingIfNeeded: packed)),
                  joint: Int16(bitPattern: UInt16(truncatingIfNeeded: packed >> 32)))
    }
}

/// Reads joint positions and writes position commands, both in radians, `jointCount` values in the
/// logical joint order (ALOHA: 14 = left 7 then right 7). Called only from the real-time thread, once
/// each per cycle: implementations must not allocate, lock or log there, and must return within the
/// period (a bus adapter uses `nowNanos` plus its own budget as the deadline of its transfers).
public protocol ControlCycleIO: AnyObject {
    var jointCount: Int { get }
    /// Fills `positions` (count == jointCount) with the measured joint positions.
    func readState(into positions: UnsafeMutableBufferPointer<Double>, nowNanos: UInt64) throws(CycleFault)
    /// Sends the position command (count == jointCount), already filtered by the safety filter.
    func writeCommand(_ positions: UnsafeBufferPointer<Double>, nowNanos: UInt64) throws(CycleFault)
    /// Teleoperation: fills `setpoint` (count == jointCount) from a device read in this cycle's
    /// `readState` (leader arms) and returns true; the loop then filters it instead of evaluating its
    /// trajectory. Called after a good read only. Default: false (trajectories from the mailbox).
    func directSetpoint(into setpoint: UnsafeMutableBufferPointer<Double>, nowNanos: UInt64) -> Bool
}

extension ControlCycleIO {
    public func directSetpoint(into setpoint: UnsafeMutableBufferPointer<Double>, nowNanos: UInt64) -> Bool { false }
}
