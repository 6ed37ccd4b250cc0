import Testing
@testable import TendonHardware

/// Homing Offset (20) and the turn count of Present Position, as the X-series e-manual describes them:
/// Present Position = encoder + Homing Offset; Goal Position and the position limits are in that frame;
/// single-turn Position mode ignores offsets outside −1024…1024; torque off reads continuously across
/// turns, torque on in Position mode folds into 0…4095.
@Suite struct SimulatedHomingOffsetTests {
    func servo(at ticks: Int32, mode: UInt8 = 3) throws -> SimulatedServo {
        SimulatedServo(model: try #require(DynamixelModel.named("XM430-W350")),
                       config: SimulatedServoConfig(id: 1, model: "XM430-W350", operatingMode: mode, initialPosition: ticks),
                       timeConstantSeconds: 0.05, nowNanos: 0)
    }

    func write(_ s: SimulatedServo, _ address: Int, _ bytes: [UInt8], at t: UInt64) -> UInt8 {
        bytes.withUnsafeBytes { s.write(address: address, data: $0, nowNanos: t) }
    }

    @Test func offsetShiftsPresentGoalAndLimits() throws {
        let s = try servo(at: 3900)
        #expect(s.value(at: 132) == 3900)
        #expect(write(s, 20, le32(-1024), at: 1) == 0)
        #expect(s.value(at: 20) == -1024)
        #expect(s.value(at: 132) == 2876)
        // A hand moves the joint across the encoder's wrap: Present Position reads on, no jump.
        s.moveShaft(to: 4095, shortWay: true, nowNanos: 2)
        #expect(s.value(at: 132) == 3071)
        s.moveShaft(to: 200, shortWay: true, nowNanos: 3)
        #expect(s.value(at: 132) == 3272)
        // Limits are in the shifted frame: a goal inside them is taken, one outside is refused.
        #expect(write(s, 52, le32(2800), at: 4) == 0)
        #expect(write(s, 48, le32(3300), at: 4) == 0)
        #expect(write(s, 64, [1], at: 5) == 0)
        #expect(s.value(at: 116) == 3272)  // torque on: goal = present, no jump
        #expect(write(s, 116, le32(3400), at: 6) == DynamixelStatusError.Code.dataLimit.rawValue)
        #expect(write(s, 116, le32(3000), at: 6) == 0)
        s.advance(to: 2_000_000_000)
        #expect(s.value(at: 132) == 3000)
        // The shaft itself is at encoder 4024 (continuous), i.e. 3000 − (−1024).
        #expect(abs(s.position - 4024) < 1)
        // EEPROM: no offset writes with torque on.
        #expect(write(s, 20, le32(0), at: 2_000_000_001) == DynamixelStatusError.Code.access.rawValue)
    }

    @Test func singleTurnPositionModeIgnoresLargeOffsets() throws {
        let s = try servo(at: 1000)
        #expect(write(s, 20, le32(2000), at: 1) == 0)
        #expect(s.value(at: 132) == 1000)
        #expect(write(s, 20, le32(1024), at: 2) == 0)
        #expect(s.value(at: 132) == 2024)
        // Extended Position mode applies any offset in the register's range.
        let e = try servo(at: 1000, mode: 4)
        #expect(write(e, 20, le32(5000), at: 1) == 0)
        #expect(e.value(at: 132) == 6000)
    }

    @Test func torqueOnInPositionModeFoldsIntoOneTurn() throws {
        let s = try servo(at: 4000)
        s.moveShaft(to: 4095, shortWay: true, nowNanos: 1)
        s.moveShaft(to: 150, shortWay: true, nowNanos: 2)
        #expect(s.value(at: 132) == 4246)  // torque off: continuous
        #expect(write(s, 64, [1], at: 3) == 0)
        #expect(s.value(at: 132) == 150)
        #expect(s.value(at: 116) == 150)
        s.advance(to: 500_000_000)
        #expect(s.value(at: 132) == 150)  // holds where it is: no turn back
        // Without the short way the shaft is put at the reading given (a servo powered up there).
        s.moveShaft(to: 3000, nowNanos: 600_000_000)
        #expect(s.position == 3000)
        // Switching to Position mode folds too.
        let e = try servo(at: 4000, mode: 4)
        e.moveShaft(to: 4095, shortWay: true, nowNanos: 1)
        e.moveShaft(to: 150, shortWay: true, nowNanos: 2)
        #expect(e.value(at: 132) == 4246)
        #expect(write(e, 11, [3], at: 3) == 0)
        #expect(e.value(at: 132) == 150)
    }
}
