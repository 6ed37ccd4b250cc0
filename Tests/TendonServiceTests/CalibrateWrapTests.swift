import Foundation
import Testing
import TendonHardware
@testable import TendonService

/// Ranges across the encoder's 0/4095 wrap are moved into one turn with the servo's Homing Offset
/// register; the calibration's offset follows, so joint angles do not change.
@Suite(.serialized) struct CalibrateWrapTests {
    @Test func planCentresWithinTheRegisterLimitOrRefuses() {
        // Wide enough to centre exactly: 2000…4144 (centre 3072) moves by −1024 to 976…3120.
        let wide = WrapShift.plan(min: 2000, max: 4144, homingOffset: 900, register: 0)
        #expect(wide == WrapShift(shift: -1024, oldRegister: 0, newRegister: -1024, range: 976...3120, homingOffset: -124))
        // Narrow: the register's −1024…1024 stops short of the centre, the range still fits.
        let narrow = WrapShift.plan(min: 3900, max: 4296, homingOffset: 1952, register: 0)
        #expect(narrow?.range == 2876...3272 && narrow?.newRegister == -1024 && narrow?.homingOffset == 928)
        // Below zero: shifted up.
        let low = WrapShift.plan(min: -196, max: 200, homingOffset: -1948, register: 0)
        #expect(low?.range == 828...1224 && low?.shift == 1024)
        // An existing register value counts against the limit.
        #expect(WrapShift.plan(min: -196, max: 200, homingOffset: -1948, register: 300)?.newRegister == 1024)
        #expect(WrapShift.plan(min: -196, max: 200, homingOffset: -1948, register: 1024) == nil)
        // Too wide to fit any allowed shift, or already inside one turn.
        #expect(WrapShift.plan(min: 3000, max: 6500, homingOffset: 0, register: 0) == nil)
        #expect(WrapShift.plan(min: 1000, max: 3000, homingOffset: 0, register: 0) == nil)
        // Limits move with the frame, kept in one turn and widened to hold the range.
        #expect(narrow?.limits(oldMin: 0, oldMax: 4095) == 0...3272)
        #expect(narrow?.limits(oldMin: 1700, oldMax: 2400) == 676...3272)
        // Read-back: whole turns and small drift allowed, a missing shift is not.
        #expect(narrow?.confirms(before: 200, after: -824) == true)
        #expect(narrow?.confirms(before: 4296, after: 3272) == true)
        #expect(narrow?.confirms(before: 200, after: 200) == false)
    }

    /// Homes `servo` of `bus` at encoder 4000 and records 3900 → 4095 → 200 for it (the others swept
    /// around their homes); returns the file before recording.
    func recordAcrossTheWrap(_ fixture: CalibrateFixture, ports: CalibrationPorts, bus name: String,
                             id: UInt8, console: CalibrationConsole) throws -> (before: CalibrationFile, result: Result<[String: [ServoCalibration]], CalibrationError>) {
        let bus = try #require(fixture.robot.bus(named: name))
        fixture.bus(name)?.moveShaft(id: id, to: 4000)
        var file = try fixture.file()
        CalibrationStore.set(ServoCalibration(id: id, homingOffset: 4000 - 2048, direction: 1, rangeMin: 0, rangeMax: 4095),
                             bus: name, in: &file)
        try CalibrationStore.save(file)
        let path: [Int32] = [3900, 4095, 200]
        let options = RangeRecording.Options(maxSamples: 3, sampleIntervalSeconds: 0.001) { i in
            CalibrateArmTests.sweep(fixture, bus: bus, file: file, sample: i + 1)
            fixture.bus(name)?.moveShaft(id: id, to: path[i], shortWay: true)
        }
        do {
            return (file, .success(try RangeRecording.run(ports: ports, buses: [bus], console: console, options: options)))
        } catch {
            return (file, .failure(error))
        }
    }

    @Test func aLeaderRangeAcrossTheWrapIsShiftedWithTheHomingOffsetRegister() throws {
        let fixture = try CalibrateFixture()
        let ports = try fixture.start()
        let log = OutputLog()
        let console = CalibrationConsole(assumeYes: true, output: { log.append($0) })
        let (before, result) = try recordAcrossTheWrap(fixture, ports: ports, bus: "leader_left", id: 1, console: console)
        _ = try result.get()
        #expect(log.text.contains("Homing Offset register (0 → -1024, EEPROM)"), "\(log.text)")
        #expect(fixture.bus("leader_left")?.withServo(id: 1) { $0.value(at: 20) } == -1024)
        let old = try #require(before.servo(bus: "leader_left", id: 1))
        let new = try #require(try fixture.file().servo(bus: "leader_left", id: 1))
        #expect(new.rangeMin == 2876 && new.rangeMax == 3272 && new.homingOffset == 928)
        // As near the centre as the register allows: the shift is the register's limit.
        #expect(abs((new.rangeMin + new.rangeMax) / 2 - 2048) == 2050 - 1024)
        // The hand left the joint past the wrap (encoder 200, read on as 4296): now inside the range.
        #expect(fixture.present("leader_left", 1) == 3272)
        // The homing pose (encoder 4000) reads the same joint angle through the new calibration.
        fixture.bus("leader_left")?.moveShaft(id: 1, to: 4000, shortWay: true)
        let present = try #require(fixture.present("leader_left", 1))
        #expect(present == 2976)
        #expect(new.radians(ticks: present) == old.radians(ticks: 4000))
        #expect(abs(new.radians(ticks: present)) < 1e-12)
        // Position limits follow the frame and contain the range.
        let limits = fixture.bus("leader_left")?.withServo(id: 1) { ($0.value(at: 52) ?? -1, $0.value(at: 48) ?? -1) }
        #expect(limits.map { $0.0 <= 2876 && $0.1 >= 3272 && $0.0 >= 0 && $0.1 <= 4095 } == true, "\(String(describing: limits))")
        // Other servos on the bus were stored as usual and their registers left alone.
        #expect(try fixture.file().servo(bus: "leader_left", id: 2)?.rangeMin == 2048 - 300)
        #expect(fixture.bus("leader_left")?.withServo(id: 2) { $0.value(at: 20) } == 0)
    }

    @Test func aFollowerShiftedAcrossTheWrapStartsAndHoldsWithoutAJump() throws {
        let fixture = try CalibrateFixture()
        let ports = try fixture.start()
        let console = CalibrationConsole(assumeYes: true, output: { _ in })
        let (before, result) = try recordAcrossTheWrap(fixture, ports: ports, bus: "follower_left", id: 1, console: console)
        _ = try result.get()
        let old = try #require(before.servo(bus: "follower_left", id: 1))
        let new = try #require(try fixture.file().servo(bus: "follower_left", id: 1))
        #expect((0...4095).contains(new.rangeMin) && (0...4095).contains(new.rangeMax))
        #expect(fixture.bus("follower_left")?.withServo(id: 1) { $0.value(at: 20) } == -1024)
        // Back at the homing pose; the hand left it at encoder 200 (continuous 4296).
        fixture.bus("follower_left")?.moveShaft(id: 1, to: 4000, shortWay: true)
        let start = try #require(fixture.present("follower_left", 1))
        #expect(new.radians(ticks: start) == old.radians(ticks: 4000))

        let portsJSON = fixture.directory.appendingPathComponent("ports.json").path
        let data = try JSONSerialization.data(withJSONObject: ["buses": ports.paths])
        try data.write(to: URL(fileURLWithPath: portsJSON))
        let options = RunOptions(robotPath: fixture.configPath, ports: .portsJSON(portsJSON), policy: .hold,
                                 durationSeconds: 0.8, reportPath: fixture.directory.appendingPathComponent("report.json").path,
                                 holdSecondsAfterFault: 0.2, lockMemory: false)
        let report = RobotRunner(options: options, logger: quietLogger()).run()
        #expect(report.exitCode == 0, "\(report.exit)")
        #expect(fixture.bus("follower_left")?.withServo(id: 1) { $0.torqueEnabled } == true)
        let after = try #require(fixture.present("follower_left", 1))
        #expect(abs(after - start) <= 2, "held at \(start), now \(after)")
        let goal = fixture.bus("follower_left")?.withServo(id: 1) { $0.value(at: 116) ?? -1 }
        #expect(goal.map { abs($0 - Int64(start)) <= 2 } == true, "goal \(String(describing: goal))")

        // `calibrate verify` moves the shifted joint and back through the same start-up path.
        let rows = try CalibrationVerifier.run(ports: ports, buses: try ports.select(["follower_left"]), console: console)
        #expect(rows.allSatisfy { $0.pass })
    }

    @Test func aRangeTooWideToShiftKeepsTheRefusal() throws {
        let fixture = try CalibrateFixture()
        let ports = try fixture.start()
        let bus = try #require(fixture.robot.bus(named: "leader_left"))
        fixture.bus("leader_left")?.moveShaft(id: 1, to: 4000)
        var file = try fixture.file()
        CalibrationStore.set(ServoCalibration(id: 1, homingOffset: 4000 - 2048, direction: 1, rangeMin: 0, rangeMax: 4095),
                             bus: "leader_left", in: &file)
        try CalibrationStore.save(file)
        // 2600 → 4000 → 4095 → 2000 the long way round (past the wrap): 2600…6096 does not fit any shift.
        let path: [Int32] = [2600, 3300, 4000, 4095, 800, 1500, 2000]
        let options = RangeRecording.Options(maxSamples: path.count, sampleIntervalSeconds: 0.001) { i in
            CalibrateArmTests.sweep(fixture, bus: bus, file: file, sample: min(i + 1, 3))
            fixture.bus("leader_left")?.moveShaft(id: 1, to: path[i], shortWay: true)
        }
        let console = CalibrationConsole(assumeYes: true, output: { _ in })
        let error = #expect(throws: CalibrationError.self) {
            try RangeRecording.run(ports: ports, buses: [bus], console: console, options: options)
        }
        let message = error?.description ?? ""
        #expect(message.contains("leader_left servo 1 (waist): range 2600…6096 crosses the encoder's 0/4095 wrap, which Position mode cannot drive across: turn the servo horn"), "\(message)")
        #expect(fixture.bus("leader_left")?.withServo(id: 1) { $0.value(at: 20) } == 0)
        #expect(try fixture.file().buses == file.buses)
    }
}
