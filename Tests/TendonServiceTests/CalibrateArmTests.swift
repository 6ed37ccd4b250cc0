import Foundation
import Testing
import TendonHardware
@testable import TendonService

@Suite(.serialized) struct CalibrateArmTests {
    /// Poses every servo of `buses`: primaries at 2048 + d, shadows mirrored, grippers at `gripper` ticks.
    static func pose(_ fixture: CalibrateFixture, buses: [BusConfig], gripper: Int32 = 1500) {
        for bus in buses {
            for servo in bus.servos {
                let d = Int32(servo.id) * 37 - 150
                let ticks: Int32 = servo.joint == "gripper" ? gripper : (servo.shadowOf != nil ? 2048 - (d - 37) : 2048 + d)
                fixture.bus(bus.name)?.moveShaft(id: servo.id, to: ticks)
            }
        }
    }

    @Test func homingMakesTheReferencePoseReadAsItsAnglesAndKeepsOtherEntries() throws {
        let fixture = try CalibrateFixture(script: [""])
        let ports = try fixture.start()
        let before = try fixture.file()
        let followers = try ports.select(["follower_left", "follower_right"])
        fixture.console.onPrompt = { key in
            if key == "homing-pose" { Self.pose(fixture, buses: followers) }
        }
        let entries = try Homing.run(ports: ports, buses: followers, console: fixture.console)
        #expect(entries.count == 18)
        let file = try fixture.file()
        for bus in followers {
            for servo in bus.servos {
                let c = try #require(file.servo(bus: bus.name, id: servo.id))
                let ticks = try #require(fixture.present(bus.name, servo.id))
                let reference = servo.joint == "gripper" ? fixture.robot.grippers.followerClosed : 0
                // Within half a tick of the reference angle.
                #expect(abs(c.radians(ticks: ticks) - reference) <= .pi / 4096, "\(bus.name) \(servo.id)")
                #expect(c.direction == (servo.shadowOf != nil ? -1 : 1))
                // Ranges recorded before are kept (raw ticks do not depend on the offset).
                #expect(c.rangeMin == before.servo(bus: bus.name, id: servo.id)?.rangeMin)
            }
        }
        // The shadow of the shoulder got an offset of its own.
        #expect(file.servo(bus: "follower_left", id: 3)?.homingOffset != file.servo(bus: "follower_left", id: 2)?.homingOffset)
        // Untouched leaders keep their entries; created stays, updated moves.
        #expect(file.buses["leader_left"] == before.buses["leader_left"])
        #expect(file.created == before.created)
        #expect(file.updated != before.updated)
    }

    @Test func homingWithoutAFileCreatesOneAndRefusesAPoseFarOffTheCentre() throws {
        let fixture = try CalibrateFixture(copyCalibration: false, assumeYes: true)
        let ports = try fixture.start()
        let leader = try ports.select(["leader_left"])
        fixture.console.onPrompt = { _ in Self.pose(fixture, buses: leader) }
        try Homing.run(ports: ports, buses: leader, console: fixture.console)
        let file = try fixture.file()
        #expect(file.created == file.updated)
        #expect(file.buses.keys.sorted() == ["leader_left"])
        #expect(file.servo(bus: "leader_left", id: 5)?.direction == -1)
        // The gripper posed at 4000 ticks would need an offset of more than half a turn.
        fixture.console.onPrompt = { _ in Self.pose(fixture, buses: leader, gripper: 4000) }
        let error = #expect(throws: CalibrationError.self) {
            try Homing.run(ports: ports, buses: leader, console: fixture.console)
        }
        #expect(error?.description.contains("leader_left servo 9 (gripper)") == true)
    }

    @Test func rangeTrackerUnwrapsTheEncoderWrap() {
        var up = RangeTracker()
        for t: Int32 in [3900, 4000, 4095, 50, 200] { up.add(t) }
        #expect(up.min == 3900 && up.max == 4296 && up.span == 396)
        var down = RangeTracker()
        for t: Int32 in [200, 0, 4095, 3900, 4095, 100] { down.add(t) }
        #expect(down.min == -196 && down.max == 200)
        // Naive min/max of the raw ticks would claim nearly a whole turn.
        #expect(down.span == 396)
        // Expressed in the single-turn frame: a range away from the wrap keeps its ticks; one across the
        // wrap is refused (Position mode cannot drive across it); one missing the home pose is refused.
        var plain = RangeTracker()
        for t: Int32 in [2000, 1500, 2600, 2100] { plain.add(t) }
        #expect(RangeCheck.express(plain, homeTick: 2048) == .success(1500...2600))
        #expect(RangeCheck.express(plain, homeTick: 3000) == .failure(.missesHome(min: 1500, max: 2600, home: 3000)))
        #expect(RangeCheck.express(up, homeTick: 4000) == .failure(.crossesWrap(min: 3900, max: 4296)))
        #expect(RangeCheck.express(down, homeTick: 10) == .failure(.crossesWrap(min: -196, max: 200)))
        var still = RangeTracker()
        for t: Int32 in [2048, 2050, 2047] { still.add(t) }
        #expect(RangeCheck.express(still, homeTick: 2048) == .failure(.empty(span: 3, minimum: RangeCheck.minimumSpanTicks)))
        var spun = RangeTracker()
        for t: Int32 in stride(from: 0, through: 8000, by: 1000).map({ Int32($0 % 4096) }) { spun.add(t) }
        #expect(RangeCheck.express(spun, homeTick: 2048) == .failure(.moreThanOneTurn(span: 8000)))
    }

    /// Moves every servo of `bus` through home−a … home+a over the samples (the technician's sweep).
    static func sweep(_ fixture: CalibrateFixture, bus: BusConfig, file: CalibrationFile, sample: Int,
                      amplitude: Int32 = 300, skip: UInt8? = nil) {
        let phase: [Int32] = [0, -1, 1, 0]
        guard sample < phase.count else { return }
        for servo in bus.servos where servo.id != skip {
            guard let c = file.servo(bus: bus.name, id: servo.id) else { continue }
            let reference = ReferencePose.angle(joint: servo.joint, role: bus.role, robot: fixture.robot)
            let home = c.ticks(radians: reference)
            // Grippers rest at closed: sweep them to one side only.
            let offset = servo.joint == "gripper" ? abs(phase[sample]) * amplitude : phase[sample] * amplitude
            fixture.bus(bus.name)?.moveShaft(id: servo.id, to: home + offset)
        }
    }

    @Test func rangesAreRecordedStoredAndCheckedAgainstHoming() throws {
        let fixture = try CalibrateFixture()
        let ports = try fixture.start()
        let file = try fixture.file()
        let bus = try #require(fixture.robot.bus(named: "leader_right"))
        let options = RangeRecording.Options(maxSamples: 4, sampleIntervalSeconds: 0.001) { i in
            Self.sweep(fixture, bus: bus, file: file, sample: i)
        }
        let log = OutputLog()
        let console = CalibrationConsole(output: { log.append($0) })
        let recorded = try RangeRecording.run(ports: ports, buses: [bus], console: console, options: options)
        // Not a terminal: the final table as plain lines, no cursor movement.
        #expect(log.text.contains("leader_right  2   shoulder      2048  1748  2348  600"), "\(log.text)")
        #expect(!log.text.contains("\u{1B}["))
        #expect(recorded["leader_right"]?.count == 9)
        let after = try fixture.file()
        let shoulder = try #require(after.servo(bus: "leader_right", id: 2))
        #expect(shoulder.rangeMin == 2048 - 300 && shoulder.rangeMax == 2048 + 300)
        let gripper = try #require(after.servo(bus: "leader_right", id: 9))
        let closed = gripper.ticks(radians: fixture.robot.grippers.leaderClosed)
        #expect(gripper.rangeMin == Int(closed) && gripper.rangeMax == Int(closed) + 300)
        #expect(after.buses["follower_left"] == file.buses["follower_left"])
    }

    @Test func onATerminalTheLiveTableIsRedrawnInPlace() throws {
        let fixture = try CalibrateFixture()
        let ports = try fixture.start()
        let file = try fixture.file()
        let bus = try #require(fixture.robot.bus(named: "leader_left"))
        let log = OutputLog()
        let console = CalibrationConsole(interactiveOutput: true, output: { log.append($0) })
        let options = RangeRecording.Options(maxSamples: 4, sampleIntervalSeconds: 0.12) { i in
            Self.sweep(fixture, bus: bus, file: file, sample: i)
        }
        try RangeRecording.run(ports: ports, buses: [bus], console: console, options: options)
        // Header + 9 servos: later frames move the cursor up over the previous one and clear each line.
        #expect(log.text.contains("\u{1B}[10A"))
        #expect(log.text.contains("\u{1B}[2K"))
        #expect(log.text.components(separatedBy: "\u{1B}[2Kbus ").count >= 3)
    }

    @Test func anEmptyRangeIsRefusedNamingTheJointAndNothingIsWritten() throws {
        let fixture = try CalibrateFixture()
        let ports = try fixture.start()
        let file = try fixture.file()
        let bus = try #require(fixture.robot.bus(named: "follower_left"))
        let options = RangeRecording.Options(maxSamples: 4, sampleIntervalSeconds: 0.001) { i in
            Self.sweep(fixture, bus: bus, file: file, sample: i, skip: 7)
        }
        let error = #expect(throws: CalibrationError.self) {
            try RangeRecording.run(ports: ports, buses: [bus], console: fixture.console, options: options)
        }
        #expect(error?.description.contains("follower_left servo 7 (wrist_angle): moved only") == true)
        #expect(error?.description.contains("servo 6") == false)
        #expect(try fixture.file().buses == file.buses)
    }

    @Test func aRangeAcrossTheWrapIsUnwrappedOnTheSimulator() throws {
        // The technician declines the Homing Offset shift: refused as before, nothing changed.
        let fixture = try CalibrateFixture(script: ["n"])
        let ports = try fixture.start()
        // Home the waist of leader_left at 4000 ticks, then sweep 3900 → 4095 → 200.
        let bus = try #require(fixture.robot.bus(named: "leader_left"))
        fixture.bus("leader_left")?.moveShaft(id: 1, to: 4000)
        var file = try fixture.file()
        CalibrationStore.set(ServoCalibration(id: 1, homingOffset: 4000 - 2048, direction: 1, rangeMin: 0, rangeMax: 4095),
                             bus: "leader_left", in: &file)
        try CalibrationStore.save(file)
        let path: [Int32] = [3900, 4095, 200]
        let options = RangeRecording.Options(maxSamples: 3, sampleIntervalSeconds: 0.001) { i in
            Self.sweep(fixture, bus: bus, file: file, sample: i + 1)
            fixture.bus("leader_left")?.moveShaft(id: 1, to: path[i])
        }
        let error = #expect(throws: CalibrationError.self) {
            try RangeRecording.run(ports: ports, buses: [bus], console: fixture.console, options: options)
        }
        let message = error?.description ?? ""
        #expect(message.contains("leader_left servo 1 (waist): range 3900…4296 crosses the encoder's 0/4095 wrap"), "\(message)")
        #expect(message.contains("not confirmed"), "\(message)")
        #expect(!message.contains("servo 2 "), "\(message)")
        #expect(fixture.bus("leader_left")?.withServo(id: 1) { $0.value(at: 20) } == 0)
        #expect(try fixture.file().buses == file.buses)
    }

    @Test func gripperEndpointsAreStoredAndUsedByTheRuntime() throws {
        let fixture = try CalibrateFixture(script: ["", ""])
        let ports = try fixture.start()
        let file = try fixture.file()
        let buses = try ports.select(["leader_left", "follower_left"])
        fixture.console.onPrompt = { key in
            for bus in buses {
                guard let c = file.servo(bus: bus.name, id: 9) else { continue }
                let target = bus.role == .leader ? (key == "gripper-open" ? -0.75 : -1.6) : (key == "gripper-open" ? 1.5 : -0.6)
                fixture.bus(bus.name)?.moveShaft(id: 9, to: c.ticks(radians: target))
            }
        }
        let result = try GripperEndpoints.run(ports: ports, buses: buses, console: fixture.console)
        #expect(abs((result["leader_left"]?.open ?? 0) - -0.75) < 0.002)
        #expect(abs((result["follower_left"]?.closed ?? 0) - -0.6) < 0.002)
        let stored = try fixture.file()
        #expect(stored.grippers["leader_left"] == result["leader_left"])
        let constants = stored.gripperConstants(robot: fixture.robot)
        #expect(constants.leaderOpen == result["leader_left"]?.open)
        #expect(constants.followerClosed == result["follower_left"]?.closed)
        // Every robot-config value without a calibration stays the default.
        #expect(constants.followerCurrentLimitMilliamps == fixture.robot.grippers.followerCurrentLimitMilliamps)
        // A gripper that was not moved is refused, naming it.
        let lazy = CalibrationConsole(assumeYes: true, output: { _ in })
        let error = #expect(throws: CalibrationError.self) {
            try GripperEndpoints.run(ports: ports, buses: buses, console: lazy)
        }
        #expect(error?.description.contains("leader_left servo 9 (gripper)") == true)
    }
}
