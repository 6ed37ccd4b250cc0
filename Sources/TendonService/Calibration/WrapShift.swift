import TendonHardware

/// Moves a range that crosses the encoder's 0/4095 wrap into one turn by shifting the servo's own frame:
/// the X-series firmware adds Homing Offset (20) to Present Position, and Goal Position and the Min/Max
/// Position Limits live in that shifted frame (ROBOTIS e-manual, Homing Offset and Present Position).
/// The calibration's software `homing_offset` moves by the same shift, so every pose keeps its joint
/// angle; only the tick numbers change.
public struct WrapShift: Sendable, Equatable {
    /// Single-turn Position mode ignores Homing Offset values outside this (e-manual note on Homing
    /// Offset); every mode accepts them, so the register is kept inside it whatever the mode.
    public static let registerLimit = 1024

    /// Ticks added to every Present Position reading.
    public var shift: Int
    /// Homing Offset register before and after.
    public var oldRegister: Int
    public var newRegister: Int
    /// The recorded range in the new frame (inside 0…4095).
    public var range: ClosedRange<Int>
    /// The calibration's `homing_offset` in the new frame.
    public var homingOffset: Int

    /// The shift that centres `min…max` (the unwrapped range in the calibration's frame, crossing 0 or
    /// 4095) on the encoder centre 2048 as nearly as the register's −1024…1024 allows; nil when no
    /// allowed shift brings the whole range into 0…4095 (wider than about half a turn, or the register
    /// already far off) or the calibration offset would leave the file's −2048…2048.
    public static func plan(min a: Int, max b: Int, homingOffset: Int, register: Int) -> WrapShift? {
        guard a < 0 || b > 4095 else { return nil }
        let lowest = -registerLimit - register, highest = registerLimit - register
        guard lowest <= highest else { return nil }
        let ideal = 2048 - Int((Double(a + b) / 2).rounded())
        let shift = Swift.min(Swift.max(ideal, lowest), highest)
        let lo = a + shift, hi = b + shift
        guard lo >= 0, hi <= 4095, shift != 0 else { return nil }
        let offset = homingOffset + shift
        guard (-2048...2048).contains(offset) else { return nil }
        return WrapShift(shift: shift, oldRegister: register, newRegister: register + shift, range: lo...hi,
                         homingOffset: offset)
    }

    /// Min/Max Position Limit for the new frame: the old limits moved with the frame (same physical
    /// stops), kept inside one turn and widened to hold the recorded range (the joint went there).
    public func limits(oldMin: Int, oldMax: Int) -> ClosedRange<Int> {
        let lo = Swift.max(0, Swift.min(oldMin + shift, range.lowerBound))
        let hi = Swift.min(4095, Swift.max(oldMax + shift, range.upperBound))
        return lo...hi
    }

    /// True when `after` is `before` moved by the shift, up to whole turns (torque off, Present Position
    /// may read on across turns or be folded into one) and a little drift of a hand-held joint.
    public func confirms(before: Int32, after: Int32, tolerance: Int = 16) -> Bool {
        let difference = (Int(after) - Int(before) - shift) % 4096
        let distance = Swift.min((difference + 4096) % 4096, (4096 - difference) % 4096)
        return distance <= tolerance
    }
}
